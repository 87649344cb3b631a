//! The broker's use cases, one function per OSB request: validate against the catalog, decide
//! with the domain rules, ask the SPI to validate, record the operation, and hand it to the
//! journal. Route handlers call exactly one of these.

mod bindings;
mod health;
mod instances;
mod observed;
mod quota;
mod start;
mod unbind;

pub use bindings::BindOutcome;
pub use instances::{ProvisionOutcome, UpdateOutcome};
pub use unbind::UnbindOutcome;

use crate::catalog::{CatalogCache, CatalogSnapshot};
use crate::config::{BindingSettings, WorkerSettings};
use crate::crypto::Cipher;
use crate::domain::binding::BindingView;
use crate::domain::identity::{BindingTarget, Placement};
use crate::domain::instance::{InstanceState, InstanceView};
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::domain::request::Refusal;
use crate::domain::{Attributes, RunningOperation};
use crate::error::{BrokerError, RefusalStatus};
use crate::flows::FlowDispatcher;
use crate::journal::Journal;
use crate::store::models::{BindingRow, InstanceRow, OperationRow};
use crate::store::Store;
use common::client::CallContext;
use common::osb::JsonObject;
use std::sync::Arc;

/// Who asked: the request id and the platform's originating identity, passed on to every
/// internal call and stored on the operations the request starts.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `X-Broker-API-Request-Identity` (or a generated one).
    pub request_id: String,
    /// `X-Broker-API-Originating-Identity`, verbatim.
    pub originating_identity: Option<String>,
    /// The `tracing_id` parameter of the request's body, taken out of its parameters (stored
    /// on the operation it starts, for its webhook events).
    pub tracing_id: Option<String>,
}

impl RequestContext {
    /// The headers for internal calls.
    pub fn call(&self) -> CallContext {
        CallContext {
            request_id: Some(self.request_id.clone()),
            originating_identity: self.originating_identity.clone(),
        }
    }
}

/// Everything the use cases need; shared by all HTTP workers.
#[derive(Debug)]
pub struct Broker {
    pub(crate) store: Store,
    pub(crate) catalog: Arc<CatalogCache>,
    pub(crate) journal: Arc<Journal>,
    /// The event flows (`crate::flows`).
    pub(crate) flows: Arc<FlowDispatcher>,
    pub(crate) cipher: Arc<Cipher>,
    pub(crate) worker: WorkerSettings,
    pub(crate) bindings: BindingSettings,
    /// The broker's external base URL, without a trailing `/` (dashboard URLs start with it).
    pub(crate) external_url: String,
}

/// An instance row with its running operation, decoded parameters and placement.
struct LoadedInstance {
    row: InstanceRow,
    running: Option<OperationRow>,
    parameters: JsonObject,
    placement: Placement,
}

impl LoadedInstance {
    fn state(&self) -> InstanceState {
        self.row.state
    }

    /// The payload of the running operation when it is an update.
    fn running_update_payload(&self) -> Option<OperationPayload> {
        self.running
            .as_ref()
            .filter(|op| op.kind == OperationKind::Update.as_str())
            .map(|op| OperationPayload::decode(&op.payload))
    }

    fn view(&self) -> InstanceView<'_> {
        InstanceView {
            state: self.state(),
            attributes: Attributes {
                service_id: &self.row.service_id,
                plan_id: &self.row.plan_id,
                parameters: &self.parameters,
            },
            placement: self.placement.clone(),
            maintenance_version: self.row.maintenance_version.as_deref(),
            running: self.running.as_ref().and_then(running_operation),
        }
    }
}

/// A binding row with its running operation, decoded parameters and target.
struct LoadedBinding {
    row: BindingRow,
    running: Option<OperationRow>,
    parameters: JsonObject,
    target: BindingTarget,
}

impl LoadedBinding {
    fn view(&self) -> BindingView<'_> {
        BindingView {
            instance_id: &self.row.instance_id,
            state: self.row.state,
            attributes: Attributes {
                service_id: &self.row.service_id,
                plan_id: &self.row.plan_id,
                parameters: &self.parameters,
            },
            target: self.target.clone(),
            running: self.running.as_ref().and_then(running_operation),
        }
    }
}

fn running_operation(op: &OperationRow) -> Option<RunningOperation> {
    Some(RunningOperation {
        id: op.id.clone(),
        kind: OperationKind::parse(&op.kind)?,
    })
}

fn encode_object(value: &JsonObject) -> String {
    serde_json::Value::Object(value.clone()).to_string()
}

impl From<Refusal> for BrokerError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::BadRequest(d) => Self::BadRequest(d),
            Refusal::NotFound(d) => Self::NotFound(d),
            Refusal::Conflict(d) => Self::Conflict(d),
            Refusal::Concurrency(d) => Self::Concurrency(d),
            Refusal::MaintenanceInfoConflict(d) => Self::MaintenanceInfoConflict(d),
            Refusal::Unprocessable(description) => Self::Refused {
                status: RefusalStatus::Unprocessable,
                error: None,
                description,
            },
        }
    }
}

impl Broker {
    async fn load_instance(&self, id: &str) -> Result<Option<LoadedInstance>, BrokerError> {
        let Some((row, running)) = self.store.instance(id).await? else {
            return Ok(None);
        };
        let parameters = row.parameters_object().map_err(BrokerError::internal)?;
        let context = row.context_object().map_err(BrokerError::internal)?;
        let placement = Placement::of(
            context.as_ref(),
            row.organization_guid.as_deref(),
            row.space_guid.as_deref(),
        );
        Ok(Some(LoadedInstance {
            row,
            running,
            parameters,
            placement,
        }))
    }

    async fn load_binding(&self, id: &str) -> Result<Option<LoadedBinding>, BrokerError> {
        let Some((row, running)) = self.store.binding(id).await? else {
            return Ok(None);
        };
        let parameters = row.parameters_object().map_err(BrokerError::internal)?;
        let bind_resource = row.bind_resource_object().map_err(BrokerError::internal)?;
        let target = BindingTarget::new(row.app_guid.clone(), bind_resource.as_ref());
        Ok(Some(LoadedBinding {
            row,
            running,
            parameters,
            target,
        }))
    }

    /// The catalog snapshot in which `service_id` is known: when it is not and an SPI is
    /// missing from the catalog (down at start), the catalog is fetched again first.
    async fn catalog_for(&self, service_id: &str) -> Arc<CatalogSnapshot> {
        let snapshot = self.catalog.snapshot();
        if snapshot.service(service_id).is_some() || !self.catalog.incomplete() {
            return snapshot;
        }
        self.catalog.refresh().await;
        self.catalog.snapshot()
    }

    /// The dashboard of instance `instance_id`, under the broker's external URL.
    pub fn dashboard_url(&self, instance_id: &str) -> String {
        format!(
            "{}/dashboard/instances/{}",
            self.external_url,
            common::percent_encode(instance_id)
        )
    }

    /// The `Retry-After` seconds sent while an operation is in progress.
    pub fn retry_after_secs(&self) -> u64 {
        self.worker.retry_after_secs
    }

    /// The serialised catalog.
    pub fn catalog_json(&self) -> actix_web::web::Bytes {
        self.catalog.snapshot().json.clone()
    }

    /// Whether the state database answers.
    pub async fn healthy(&self) -> bool {
        self.store.ping().await.is_ok()
    }
}
