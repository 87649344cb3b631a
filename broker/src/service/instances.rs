//! Use cases of service instances: provision, update, deprovision, fetch, last_operation.

use super::health::unhealthy_description;
use super::start::{NewOperation, Started};
use super::{encode_object, Broker, LoadedInstance, RequestContext};
use crate::catalog::NamedSpi;
use crate::domain::instance::{
    decide_deprovision, decide_fetch, decide_provision, decide_update, running_update,
    DeprovisionDecision, FetchDecision, InstanceState, ProvisionAsk, ProvisionDecision, UpdateAsk,
    UpdateDecision,
};
use crate::domain::operation::{last_operation_view, OperationKind};
use crate::domain::plan::{check_context_update, check_maintenance, instance_metadata};
use crate::domain::quota::Limit;
use crate::domain::request::required;
use crate::error::{BrokerError, RefusalStatus};
use crate::flows::{FlowKind, FlowRequest};
use crate::store::models::InstanceRow;
use crate::store::now_ms;
use common::client::{CallContext, ClientError};
use common::osb::{
    FetchInstanceResponse, InstanceMetadata, JsonObject, LastOperationResponse, MaintenanceInfo,
    OperationState, Plan, ProvisionRequest, Service, UpdateRequest,
};
use common::spi::{InstanceOperation, ValidateInstanceRequest};

/// How a provision request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionOutcome {
    /// Provisioning runs (new, or the same request repeated): 202.
    Accepted {
        /// The OSB operation.
        operation: String,
        /// Dashboard of the instance.
        dashboard_url: Option<String>,
        /// Labels and attributes of the instance.
        metadata: InstanceMetadata,
    },
    /// The same instance exists and is ready: 200.
    AlreadyReady {
        /// Dashboard of the instance.
        dashboard_url: Option<String>,
        /// Labels and attributes of the instance.
        metadata: InstanceMetadata,
    },
}

/// How an update request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing to do (a context was stored): 200 `{}`.
    Applied,
    /// The update runs: 202.
    Accepted {
        /// The OSB operation.
        operation: String,
    },
}

/// The SPI's code for a plan change it does not allow.
const PLAN_CHANGE_NOT_ALLOWED: &str = "PlanChangeNotAllowed";

/// Maps an SPI refusal of an update: a plan change that is not supported is the spec's 422
/// ("the requested change is not supported"); everything else as any SPI call.
fn update_refusal(spi: &str, e: ClientError) -> BrokerError {
    match e {
        ClientError::Status {
            status: 400,
            envelope,
            ..
        } if envelope.error == PLAN_CHANGE_NOT_ALLOWED => BrokerError::Refused {
            status: RefusalStatus::Unprocessable,
            error: None,
            description: envelope.description,
        },
        other => BrokerError::from_call(spi, other),
    }
}

fn not_found(instance_id: &str) -> BrokerError {
    BrokerError::NotFound(format!("service instance {instance_id} not found"))
}

/// The answer when another operation took the instance between our read and our write.
fn instance_busy() -> BrokerError {
    BrokerError::Concurrency(
        "another operation is in progress on this service instance; retry after it ends".into(),
    )
}

/// The row of a new instance.
fn instance_row(
    instance_id: &str,
    ask: &ProvisionAsk,
    plan: &Plan,
    dashboard_url: Option<String>,
) -> InstanceRow {
    let now = now_ms();
    InstanceRow {
        id: instance_id.to_string(),
        service_id: ask.service_id.clone(),
        plan_id: ask.plan_id.clone(),
        parameters: encode_object(&ask.parameters),
        context: ask.context.as_ref().map(encode_object),
        // Where the instance was placed (the context's organization and space, else the
        // top-level fields): what organization and space quotas count by.
        organization_guid: ask.placement.organization.clone(),
        space_guid: ask.placement.space.clone(),
        maintenance_version: plan.maintenance_info.as_ref().map(|m| m.version.clone()),
        dashboard_url,
        state: InstanceState::Provisioning,
        deployment_name: None,
        deployment_spec_enc: None,
        endpoints: None,
        created_at_ms: now,
        updated_at_ms: now,
    }
}

impl Broker {
    /// `PUT /v2/service_instances/{id}`.
    pub async fn provision(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        body: ProvisionRequest,
        accepts_incomplete: bool,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let ask = ProvisionAsk::from_request(body)?;
        let snapshot = self.catalog_for(&ask.service_id).await;
        let (routed, plan) = snapshot
            .plan(&ask.service_id, &ask.plan_id)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        check_maintenance(ask.maintenance_info.as_ref(), plan)?;
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let limits = self.provision_limits(&routed.service, plan, &ask.placement);
        // Two rounds: a concurrent identical PUT may insert between our read and our insert,
        // and the second round then answers as for a repeat.
        for _ in 0..2 {
            let existing = self.load_instance(instance_id).await?;
            let dashboard_url = existing
                .as_ref()
                .and_then(|e| e.row.dashboard_url.as_ref())
                .map(|_| self.dashboard_url(instance_id));
            let view = existing.as_ref().map(LoadedInstance::view);
            match decide_provision(view.as_ref(), &ask.attributes(), &ask.placement) {
                ProvisionDecision::Create => {}
                ProvisionDecision::AlreadyReady => {
                    return Ok(ProvisionOutcome::AlreadyReady {
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    })
                }
                ProvisionDecision::InProgress(operation) => {
                    return Ok(ProvisionOutcome::Accepted {
                        operation,
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    })
                }
                ProvisionDecision::Conflict(d) => return Err(BrokerError::Conflict(d)),
                ProvisionDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            }
            let (started, dashboard_url) = self
                .create_instance(ctx, instance_id, &ask, &routed.spi, plan, &limits)
                .await?;
            match started {
                Started::Running(operation) => {
                    return Ok(ProvisionOutcome::Accepted {
                        operation,
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    })
                }
                Started::Exists => continue,
                Started::Busy(d) => return Err(BrokerError::Concurrency(d)),
            }
        }
        Err(BrokerError::Concurrency(
            "the service instance is being created by a concurrent request; retry".into(),
        ))
    }

    /// Has the SPI validate a new instance, then stores it with its provision operation (if
    /// it stays within `limits`) and starts that; also the instance's dashboard URL.
    async fn create_instance(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        ask: &ProvisionAsk,
        spi: &NamedSpi,
        plan: &Plan,
        limits: &[Limit],
    ) -> Result<(Started, Option<String>), BrokerError> {
        let validated = spi
            .client
            .validate_instance(
                &ValidateInstanceRequest {
                    operation: InstanceOperation::Provision,
                    instance_id: instance_id.into(),
                    service_id: ask.service_id.clone().into(),
                    plan_id: ask.plan_id.clone().into(),
                    previous_plan_id: None,
                    parameters: Some(ask.parameters.clone()),
                    previous_parameters: None,
                },
                &ctx.call(),
            )
            .await
            .map_err(|e| BrokerError::from_call(&spi.name, e))?;
        // The SPI says whether the offering has a dashboard; the broker serves it, at its
        // own external URL.
        let dashboard_url = validated
            .dashboard_url
            .as_ref()
            .map(|_| self.dashboard_url(instance_id));
        let row = instance_row(instance_id, ask, plan, dashboard_url.clone());
        let flow = FlowRequest::new(FlowKind::Provision, ctx, instance_id, None)
            .offering(Some(&ask.service_id), Some(&ask.plan_id))
            .sent(ask.context.as_ref());
        let new = NewOperation {
            flow: Some(flow),
            ..NewOperation::new(OperationKind::Provision, instance_id, "provision accepted")
        };
        let limits = limits.to_vec();
        let started = self
            .start_operation(ctx, new, |op| {
                self.store.create_instance_within(row, op, limits)
            })
            .await?;
        Ok((started, dashboard_url))
    }

    /// `PATCH /v2/service_instances/{id}`.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        body: UpdateRequest,
        accepts_incomplete: bool,
    ) -> Result<UpdateOutcome, BrokerError> {
        let ask = UpdateAsk::from_request(body)?;
        let existing = self
            .load_instance(instance_id)
            .await?
            .filter(|e| e.state() != InstanceState::Deleted)
            .ok_or_else(|| not_found(instance_id))?;
        ask.check_service(instance_id, &existing.row.service_id)?;
        let target_plan = ask.target_plan(&existing.row.plan_id);
        let snapshot = self.catalog_for(&ask.service_id).await;
        let (routed, plan) = snapshot
            .plan(&ask.service_id, &target_plan)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        check_maintenance(ask.maintenance_info.as_ref(), plan)?;
        let running_payload = existing.running_update_payload();
        let running_request = running_payload
            .as_ref()
            .map(|p| running_update(p, &existing.row.plan_id));
        let requested = ask.view(&target_plan);
        match decide_update(&existing.view(), &requested, running_request.as_ref()) {
            UpdateDecision::InProgress(operation) => {
                return if accepts_incomplete {
                    Ok(UpdateOutcome::Accepted { operation })
                } else {
                    Err(BrokerError::AsyncRequired)
                };
            }
            UpdateDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            UpdateDecision::NothingToChange => {
                return self
                    .store_context(instance_id, &existing, &ask, &routed.service)
                    .await;
            }
            UpdateDecision::Change => {}
        }
        let spi = &routed.spi;
        spi.client
            .validate_instance(
                &ValidateInstanceRequest {
                    operation: InstanceOperation::Update,
                    instance_id: instance_id.into(),
                    service_id: ask.service_id.clone().into(),
                    plan_id: target_plan.clone().into(),
                    previous_plan_id: Some(existing.row.plan_id.clone().into()),
                    parameters: ask.parameters.clone(),
                    previous_parameters: Some(existing.parameters.clone()),
                },
                &ctx.call(),
            )
            .await
            .map_err(|e| update_refusal(&spi.name, e))?;
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let limits = self.plan_change_limits(&routed.service, plan, &existing.row.plan_id);
        let flow = FlowRequest::new(FlowKind::Update, ctx, instance_id, None)
            .offering(Some(&ask.service_id), Some(&target_plan))
            .sent(ask.context.as_ref());
        let new = NewOperation {
            payload: ask.into_payload(target_plan),
            flow: Some(flow),
            ..NewOperation::new(OperationKind::Update, instance_id, "update accepted")
        };
        match self
            .start_operation(ctx, new, |op| self.store.begin_update_within(op, limits))
            .await?
        {
            Started::Running(operation) => Ok(UpdateOutcome::Accepted { operation }),
            Started::Exists | Started::Busy(_) => Err(instance_busy()),
        }
    }

    /// An update that changes nothing but may send a context: the context is stored when the
    /// offering allows it (or it is the stored one), else 422.
    async fn store_context(
        &self,
        instance_id: &str,
        existing: &LoadedInstance,
        ask: &UpdateAsk,
        service: &Service,
    ) -> Result<UpdateOutcome, BrokerError> {
        let Some(context) = &ask.context else {
            return Ok(UpdateOutcome::Applied);
        };
        let stored = existing
            .row
            .context
            .as_deref()
            .and_then(|c| serde_json::from_str::<JsonObject>(c).ok());
        check_context_update(service, stored.as_ref(), context)?;
        self.store
            .store_context(instance_id, encode_object(context))
            .await?;
        Ok(UpdateOutcome::Applied)
    }

    /// `DELETE /v2/service_instances/{id}`; the OSB operation of the deprovision.
    pub async fn deprovision(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        service_id: Option<String>,
        plan_id: Option<String>,
        accepts_incomplete: bool,
    ) -> Result<String, BrokerError> {
        let service_id = required(service_id, "service_id")?;
        let plan_id = required(plan_id, "plan_id")?;
        let existing = self.load_instance(instance_id).await?;
        let decision = decide_deprovision(existing.as_ref().map(|e| e.view()).as_ref());
        if decision == DeprovisionDecision::Gone {
            return Err(BrokerError::Gone);
        }
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let cancel = match decision {
            DeprovisionDecision::Gone => return Err(BrokerError::Gone),
            DeprovisionDecision::InProgress(operation) => return Ok(operation),
            DeprovisionDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            DeprovisionDecision::Begin { cancel } => cancel,
        };
        let flow = FlowRequest::new(FlowKind::Deprovision, ctx, instance_id, None)
            .offering(Some(&service_id), Some(&plan_id));
        let new = NewOperation {
            cancels: cancel.as_deref(),
            flow: Some(flow),
            ..NewOperation::new(
                OperationKind::Deprovision,
                instance_id,
                "deprovision accepted",
            )
        };
        let store = |op| self.store.begin_deprovision(op, cancel.clone());
        match self.start_operation(ctx, new, store).await? {
            Started::Running(operation) => Ok(operation),
            Started::Exists | Started::Busy(_) => Err(instance_busy()),
        }
    }

    /// `GET /v2/service_instances/{id}`.
    pub async fn fetch_instance(
        &self,
        instance_id: &str,
    ) -> Result<FetchInstanceResponse, BrokerError> {
        let existing = self.load_instance(instance_id).await?;
        match decide_fetch(existing.as_ref().map(|e| e.view()).as_ref()) {
            FetchDecision::NotFound => Err(not_found(instance_id)),
            FetchDecision::Concurrency => Err(BrokerError::Concurrency(
                "the service instance is being updated; retry after the update ends".into(),
            )),
            FetchDecision::Found => {
                let Some(existing) = existing else {
                    return Err(not_found(instance_id));
                };
                let snapshot = self.catalog.snapshot();
                let mut metadata = snapshot
                    .plan(&existing.row.service_id, &existing.row.plan_id)
                    .ok()
                    .map(|(routed, plan)| instance_metadata(&routed.service, plan));
                // The server's health, as a broker-generated attribute (OSB allows those).
                if let (Some(health), Some(metadata)) = (
                    self.server_health(&CallContext::default(), &existing.row)
                        .await,
                    metadata.as_mut(),
                ) {
                    let attributes = metadata.attributes.get_or_insert_with(JsonObject::new);
                    attributes.insert("server_health".into(), health.status.as_str().into());
                    if !health.is_healthy() {
                        attributes.insert(
                            "server_health_description".into(),
                            unhealthy_description(&health).into(),
                        );
                    }
                }
                Ok(FetchInstanceResponse {
                    service_id: Some(existing.row.service_id),
                    plan_id: Some(existing.row.plan_id),
                    dashboard_url: existing
                        .row
                        .dashboard_url
                        .as_ref()
                        .map(|_| self.dashboard_url(instance_id)),
                    parameters: Some(existing.parameters),
                    maintenance_info: existing.row.maintenance_version.map(|version| {
                        MaintenanceInfo {
                            version,
                            description: None,
                        }
                    }),
                    metadata,
                })
            }
        }
    }

    /// `GET /v2/service_instances/{id}/last_operation`; `operation` is only a hint.
    pub async fn instance_last_operation(
        &self,
        instance_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperationResponse, BrokerError> {
        if self.store.instance(instance_id).await?.is_none() {
            return Err(not_found(instance_id));
        }
        let op = self
            .store
            .latest_operation(instance_id, None, operation)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        let mut response = last_operation(&op.kind, op.state, &op.description)?;
        // A provision or update that succeeded says so, and also whether the server it
        // brought up is still up.
        let done = matches!(op.kind.as_str(), "provision" | "update")
            && op.state == OperationState::Succeeded;
        if done {
            if let Some((row, _)) = self.store.instance(instance_id).await? {
                if let Some(health) = self
                    .server_health(&CallContext::default(), &row)
                    .await
                    .filter(|h| !h.is_healthy())
                {
                    let note = unhealthy_description(&health);
                    response.description = Some(match response.description {
                        Some(d) if !d.is_empty() => format!("{d}; now {note}"),
                        _ => note,
                    });
                }
            }
        }
        Ok(response)
    }
}

/// The last_operation body of a stored operation.
pub(super) fn last_operation(
    kind: &str,
    state: OperationState,
    description: &str,
) -> Result<LastOperationResponse, BrokerError> {
    let kind = OperationKind::parse(kind)
        .ok_or_else(|| BrokerError::internal(anyhow::anyhow!("stored operation kind {kind:?}")))?;
    Ok(last_operation_view(kind, state, Some(description)))
}
