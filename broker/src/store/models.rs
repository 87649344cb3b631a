//! Rows of the state database and the partial updates written to them.

use super::columns::OperationStateColumn;
use super::schema::{operations, service_bindings, service_instances};
use crate::domain::binding::BindingState;
use crate::domain::instance::InstanceState;
use common::osb::OperationState;
use diesel::prelude::*;

/// A `service_instances` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = service_instances, treat_none_as_null = true)]
pub struct InstanceRow {
    /// Instance id.
    pub id: String,
    /// Offering id.
    pub service_id: String,
    /// Current plan id.
    pub plan_id: String,
    /// Current parameters (JSON object).
    pub parameters: String,
    /// Last context (JSON object).
    pub context: Option<String>,
    /// The organization the instance was placed in: the context's (`organization_guid`,
    /// `clusterid`), else the deprecated top-level field. Organization quotas count by it.
    pub organization_guid: Option<String>,
    /// The space the instance was placed in: the context's (`space_guid`, `namespace`), else
    /// the deprecated top-level field. Space quotas count by it.
    pub space_guid: Option<String>,
    /// Maintenance version it runs.
    pub maintenance_version: Option<String>,
    /// Dashboard URL.
    pub dashboard_url: Option<String>,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Deployer deployment name.
    pub deployment_name: Option<String>,
    /// The SPI's deployment spec, encrypted.
    pub deployment_spec_enc: Option<String>,
    /// Deployment endpoints (JSON array).
    pub endpoints: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
}

impl InstanceRow {
    /// A row with `{}` parameters and nothing optional set (no context, deployment, endpoints).
    pub fn bare(
        id: &str,
        service_id: &str,
        plan_id: &str,
        state: InstanceState,
        now_ms: i64,
    ) -> Self {
        Self {
            id: id.to_string(),
            service_id: service_id.to_string(),
            plan_id: plan_id.to_string(),
            parameters: "{}".into(),
            context: None,
            organization_guid: None,
            space_guid: None,
            maintenance_version: None,
            dashboard_url: None,
            state,
            deployment_name: None,
            deployment_spec_enc: None,
            endpoints: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// A `service_bindings` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = service_bindings, treat_none_as_null = true)]
pub struct BindingRow {
    /// Binding id.
    pub id: String,
    /// Instance id.
    pub instance_id: String,
    /// Offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Parameters (JSON object).
    pub parameters: String,
    /// Context (JSON object).
    pub context: Option<String>,
    /// bind_resource (JSON object).
    pub bind_resource: Option<String>,
    /// Deprecated app guid.
    pub app_guid: Option<String>,
    /// Lifecycle state.
    pub state: BindingState,
    /// Credentials (JSON object), encrypted.
    pub credentials_enc: Option<String>,
    /// OSB endpoints (JSON array).
    pub endpoints: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
}

impl BindingRow {
    /// A row with `{}` parameters and nothing optional set (no context, bind resource,
    /// credentials or endpoints).
    pub fn bare(
        id: &str,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        state: BindingState,
        now_ms: i64,
    ) -> Self {
        Self {
            id: id.to_string(),
            instance_id: instance_id.to_string(),
            service_id: service_id.to_string(),
            plan_id: plan_id.to_string(),
            parameters: "{}".into(),
            context: None,
            bind_resource: None,
            app_guid: None,
            state,
            credentials_enc: None,
            endpoints: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// An `operations` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = operations)]
pub struct OperationRow {
    /// The OSB `operation` string.
    pub id: String,
    /// Instance id.
    pub instance_id: String,
    /// Binding id (bind, unbind).
    pub binding_id: Option<String>,
    /// `OperationKind` spelling.
    pub kind: String,
    /// In progress, succeeded or failed.
    #[diesel(
        deserialize_as = OperationStateColumn,
        serialize_as = OperationStateColumn
    )]
    pub state: OperationState,
    /// What a person sees.
    pub description: String,
    /// `Step` spelling.
    pub step: String,
    /// `OperationPayload` JSON.
    pub payload: String,
    /// Request id of the request that started it.
    pub request_id: Option<String>,
    /// Originating identity of that request.
    pub originating_identity: Option<String>,
    /// Owner id of the broker process running it.
    pub lease_owner: Option<String>,
    /// Unix ms the lease ends.
    pub lease_expires_ms: Option<i64>,
    /// How many times it was claimed.
    pub attempts: i64,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
    /// Unix ms it ended.
    pub finished_at_ms: Option<i64>,
}

/// A partial update of an instance (`None` leaves a column as it is).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = service_instances)]
pub struct InstanceChanges {
    /// New plan.
    pub plan_id: Option<String>,
    /// New parameters.
    pub parameters: Option<String>,
    /// New context.
    pub context: Option<Option<String>>,
    /// New maintenance version.
    pub maintenance_version: Option<Option<String>>,
    /// New state.
    pub state: Option<InstanceState>,
    /// New deployment name.
    pub deployment_name: Option<Option<String>>,
    /// New encrypted spec.
    pub deployment_spec_enc: Option<Option<String>>,
    /// New endpoints.
    pub endpoints: Option<Option<String>>,
    /// Set by the store.
    pub updated_at_ms: i64,
}

/// A partial update of a binding.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = service_bindings)]
pub struct BindingChanges {
    /// New state.
    pub state: Option<BindingState>,
    /// New encrypted credentials.
    pub credentials_enc: Option<Option<String>>,
    /// New endpoints.
    pub endpoints: Option<Option<String>>,
    /// Set by the store.
    pub updated_at_ms: i64,
}

/// A partial update of an operation.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = operations)]
pub struct OperationChanges {
    /// New state.
    pub state: Option<OperationStateColumn>,
    /// New description.
    pub description: Option<String>,
    /// New step.
    pub step: Option<String>,
    /// New payload.
    pub payload: Option<String>,
    /// Lease owner (`Some(None)` releases it).
    pub lease_owner: Option<Option<String>>,
    /// Lease end.
    pub lease_expires_ms: Option<Option<i64>>,
    /// End time.
    pub finished_at_ms: Option<Option<i64>>,
    /// Set by the store.
    pub updated_at_ms: i64,
}
