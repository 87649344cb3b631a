//! Service binding bodies: bind request, binding and async bind responses, endpoints.

use super::JsonObject;
use crate::ids::{BindingId, OperationId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
