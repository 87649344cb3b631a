//! The OSB API v2.17 wire model: catalog objects, every request and response body, the context
//! object, last_operation and the error body. Plain serde types; unknown fields are ignored on
//! input (vendor extensions, rule 7) and absent optional fields are left out on output.

mod lenient;

use crate::ids::{BindingId, OperationId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object, as used for free-form parameters, context and credentials.
pub type JsonObject = Map<String, Value>;

/// `GET /v2/catalog` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The offerings; may be empty.
    pub services: Vec<Service>,
}

/// A service offering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Globally unique, stable id.
    pub id: String,
    /// CLI-friendly, unique name.
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Default bindability of the plans.
    pub bindable: bool,
    /// Plans, at least one.
    pub plans: Vec<Plan>,
    /// Tags for the platform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `syslog_drain`, `route_forwarding`, `volume_mount`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Whether `GET /v2/service_instances/:id` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_retrievable: Option<bool>,
    /// Whether `GET …/service_bindings/:id` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindings_retrievable: Option<bool>,
    /// Whether context-only updates are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_context_updates: Option<bool>,
    /// Opaque metadata (profile conventions: displayName, imageUrl, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Cloud Foundry dashboard client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_client: Option<DashboardClient>,
    /// Whether plan changes are supported (offering default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_updateable: Option<bool>,
}

/// Cloud Foundry dashboard SSO client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardClient {
    /// OAuth client id.
    pub id: String,
    /// OAuth client secret.
    pub secret: String,
    /// Redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// A service plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Globally unique, stable id.
    pub id: String,
    /// Name, unique within the offering.
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Opaque metadata (bullets, costs, displayName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Whether the plan is free (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    /// Overrides the offering's `bindable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindable: Option<bool>,
    /// Whether bindings of this plan may be rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_rotatable: Option<bool>,
    /// Overrides the offering's `plan_updateable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_updateable: Option<bool>,
    /// JSON schemas of the accepted parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Schemas>,
    /// Seconds after which the platform considers an operation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_polling_duration: Option<u64>,
    /// The plan's maintenance version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// `schemas` of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schemas {
    /// Instance create/update schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_instance: Option<ServiceInstanceSchema>,
    /// Binding create schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_binding: Option<ServiceBindingSchema>,
}

/// Instance schemas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceInstanceSchema {
    /// Schema of provision parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<InputParametersSchema>,
    /// Schema of update parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<InputParametersSchema>,
}

/// Binding schemas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceBindingSchema {
    /// Schema of bind parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<InputParametersSchema>,
}

/// Wrapper holding one JSON schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputParametersSchema {
    /// The JSON schema (draft-04 or later, with `$schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `maintenance_info` of a plan or request; only `version` is compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceInfo {
    /// SemVer 2.0 version.
    pub version: String,
    /// Human-readable description of the maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /v2/service_instances/:id` request body. Required fields are `Option` so that a missing
/// one is reported as a 400 naming the field rather than a generic parse error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProvisionRequest {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Platform context (`cloudfoundry`, `kubernetes`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<JsonObject>,
    /// Deprecated in favour of context, still sent by platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_guid: Option<String>,
    /// Deprecated in favour of context, still sent by platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_guid: Option<String>,
    /// Configuration parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Requested maintenance version; an object without `version` (such as `{}`) is absent.
    #[serde(
        default,
        deserialize_with = "lenient::maintenance_info",
        skip_serializing_if = "Option::is_none"
    )]
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// Provision response body (200/201/202).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProvisionResponse {
    /// Dashboard of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Operation handle for last_operation (async only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
    /// Instance labels and attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<InstanceMetadata>,
}

/// Instance metadata: labels and attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceMetadata {
    /// Labels for the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<JsonObject>,
    /// Broker-generated attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<JsonObject>,
}

/// `GET /v2/service_instances/:id` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FetchInstanceResponse {
    /// Offering id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Dashboard of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Current parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Current maintenance version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
    /// Labels and attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<InstanceMetadata>,
}

/// `PATCH /v2/service_instances/:id` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// Offering id (required).
    #[serde(default)]
    pub service_id: Option<String>,
    /// New plan id; absent means unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Platform context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<JsonObject>,
    /// New parameters; absent means unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Requested maintenance version; an object without `version` (such as `{}`) is absent.
    #[serde(
        default,
        deserialize_with = "lenient::maintenance_info",
        skip_serializing_if = "Option::is_none"
    )]
    pub maintenance_info: Option<MaintenanceInfo>,
    /// What the platform believes the instance currently has (informational: members that
    /// are empty, of another type or unknown are ignored).
    #[serde(
        default,
        deserialize_with = "lenient::previous_values",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_values: Option<PreviousValues>,
}

/// `previous_values` of an update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreviousValues {
    /// Previous plan.
    #[serde(
        default,
        deserialize_with = "lenient::informational_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub plan_id: Option<String>,
    /// Deprecated.
    #[serde(
        default,
        deserialize_with = "lenient::informational_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_id: Option<String>,
    /// Deprecated.
    #[serde(
        default,
        deserialize_with = "lenient::informational_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub organization_id: Option<String>,
    /// Deprecated.
    #[serde(
        default,
        deserialize_with = "lenient::informational_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub space_id: Option<String>,
    /// Previous maintenance version.
    #[serde(
        default,
        deserialize_with = "lenient::informational_maintenance_info",
        skip_serializing_if = "Option::is_none"
    )]
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// Update response body (200/202).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateResponse {
    /// Changed dashboard URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Operation handle (async only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
    /// Labels and attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<InstanceMetadata>,
}

/// Deprovision, unbind response body (200 `{}` or 202 with operation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncOperationResponse {
    /// Operation handle (async only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
}

/// State of an operation, spelled as the spec does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationState {
    /// Still running.
    #[serde(rename = "in progress")]
    InProgress,
    /// Finished successfully.
    #[serde(rename = "succeeded")]
    Succeeded,
    /// Finished with an error.
    #[serde(rename = "failed")]
    Failed,
}

impl OperationState {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the spec's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in progress" => Some(Self::InProgress),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// last_operation response body (instances and bindings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastOperationResponse {
    /// `in progress`, `succeeded` or `failed`.
    pub state: OperationState,
    /// Progress or error text a person can follow; non-empty if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Failed update or deprovision only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_usable: Option<bool>,
    /// Failed update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_repeatable: Option<bool>,
}

/// `PUT …/service_bindings/:id` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindRequest {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Platform context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<JsonObject>,
    /// Deprecated app guid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_guid: Option<String>,
    /// What the binding is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_resource: Option<JsonObject>,
    /// Binding parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Binding being rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predecessor_binding_id: Option<BindingId>,
}

/// Binding response body (200/201, and GET binding).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindingResponse {
    /// Binding metadata (`expires_at`, `renew_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BindingMetadata>,
    /// Credentials for the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<JsonObject>,
    /// Syslog drain (log-drain services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog_drain_url: Option<String>,
    /// Route service URL (route services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
    /// Volume mounts (volume services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<Value>>,
    /// Network endpoints of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
    /// Binding parameters (GET binding only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
}

/// Async bind response body (202).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncBindResponse {
    /// Operation handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
}

/// Binding metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindingMetadata {
    /// `yyyy-mm-ddThh:mm:ss.sZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `yyyy-mm-ddThh:mm:ss.sZ`, not after `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
}

/// A network endpoint of a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or IP.
    pub host: String,
    /// Ports as `"N"` or `"N-M"`.
    pub ports: Vec<String>,
    /// `tcp`, `udp` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (`AsyncRequired`, `ConcurrencyError`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a person should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Failed update or deprovision only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_usable: Option<bool>,
    /// Failed update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_repeatable: Option<bool>,
}

/// The fixed error codes of the spec.
pub mod codes {
    /// Async-only operation without `accepts_incomplete=true`.
    pub const ASYNC_REQUIRED: &str = "AsyncRequired";
    /// Another operation is in progress.
    pub const CONCURRENCY_ERROR: &str = "ConcurrencyError";
    /// Bind without the required app guid.
    pub const REQUIRES_APP: &str = "RequiresApp";
    /// Requested maintenance version differs from the plan's.
    pub const MAINTENANCE_INFO_CONFLICT: &str = "MaintenanceInfoConflict";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_operation_states_use_the_specs_spelling() {
        let body = LastOperationResponse {
            state: OperationState::InProgress,
            description: Some("starting server".into()),
            instance_usable: None,
            update_repeatable: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"state": "in progress", "description": "starting server"})
        );
    }

    #[test]
    fn provision_request_ignores_vendor_extension_fields() {
        let req: ProvisionRequest = serde_json::from_value(json!({
            "service_id": "s", "plan_id": "p", "organization_guid": "o", "space_guid": "x",
            "x-vendor-field": {"anything": true}
        }))
        .unwrap();
        assert_eq!(req.plan_id.as_deref(), Some("p"));
    }

    #[test]
    fn catalog_plan_snapshot_is_stable() {
        let plan = Plan {
            id: "p1".into(),
            name: "small".into(),
            description: "d".into(),
            maximum_polling_duration: Some(600),
            maintenance_info: Some(MaintenanceInfo {
                version: "15.0.0".into(),
                description: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"id":"p1","name":"small","description":"d","maximum_polling_duration":600,"maintenance_info":{"version":"15.0.0"}}"#
        );
    }
}
