//! The catalog: offerings, plans, their parameter schemas and maintenance_info.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

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
