//! Service instance bodies: provision, fetch and update requests and responses.

use super::{lenient, JsonObject, MaintenanceInfo};
use crate::ids::OperationId;
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provision_request_ignores_vendor_extension_fields() {
        let req: ProvisionRequest = serde_json::from_value(json!({
            "service_id": "s", "plan_id": "p", "organization_guid": "o", "space_guid": "x",
            "x-vendor-field": {"anything": true}
        }))
        .unwrap();
        assert_eq!(req.plan_id.as_deref(), Some("p"));
    }
}
