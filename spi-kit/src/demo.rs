//! A small data service for this crate's own tests: two plans, two parameters, and bindings
//! that need no server (an instance without endpoints is unavailable, as for every service).

use crate::binding::{BindingCredentials, Unavailable};
use crate::error::ErrorKind;
use crate::offering::{PlanDef, ServiceInfo};
use crate::service::{Bindings, Catalog, Deployment};
use crate::spec::EngineInfo;
use common::deployer::{AdminCredentials, DeploymentEndpoint, Engine};
use common::osb::JsonObject;
use common::secret::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The demo data service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demo;

/// How a demo plan sizes its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSizing {
    /// Default `size`.
    pub size: i64,
}

/// `small` may grow to `large`, not back.
pub const PLANS: &[PlanDef<DemoSizing>] = &[
    PlanDef {
        id: "demo-small-id",
        name: "small",
        display_name: "Small",
        description: "Demo, size 1",
        may_change_to: &["large"],
        sizing: DemoSizing { size: 1 },
    },
    PlanDef {
        id: "demo-large-id",
        name: "large",
        display_name: "Large",
        description: "Demo, size 4",
        may_change_to: &[],
        sizing: DemoSizing { size: 4 },
    },
];

/// Failure of a demo bind or unbind.
#[derive(Debug, thiserror::Error)]
pub enum DemoBindingError {
    /// No endpoint to talk to.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<DemoBindingError> for ErrorKind {
    fn from(e: DemoBindingError) -> Self {
        match e {
            DemoBindingError::Unavailable(u) => u.into(),
        }
    }
}

impl Catalog for Demo {
    type Sizing = DemoSizing;

    const SERVICE: ServiceInfo = ServiceInfo {
        id: "demo-service-id",
        name: "demo",
        description: "A demo service",
        display_name: "Demo",
        long_description: "A service for tests.",
        tags: &["demo", "test"],
        product: "Demo 1",
        noun: "demo",
        maintenance_version: "1.0.0",
        maximum_polling_duration_s: 60,
        spi_name: "spi-demo",
        spi_version: "0.0.1",
    };
    const PLANS: &'static [PlanDef<DemoSizing>] = PLANS;

    fn instance_properties(plan: &PlanDef<DemoSizing>) -> Value {
        json!({
            "size": {
                "description": format!("Size (plan default {}).", plan.sizing.size),
                "type": "integer", "minimum": 1, "maximum": 10
            },
            "mode": {"type": "string", "enum": ["fast", "safe"]}
        })
    }

    fn sizing_bullets(plan: &PlanDef<DemoSizing>) -> Vec<String> {
        vec![format!("size {}", plan.sizing.size)]
    }
}

impl Deployment for Demo {
    const ENGINE: EngineInfo = EngineInfo {
        engine: Engine::Redis,
        version: "1",
        product: "Demo",
        kind: "box",
        name_prefix: "dm-",
    };

    fn server_settings(
        plan: &PlanDef<DemoSizing>,
        parameters: &JsonObject,
    ) -> BTreeMap<String, String> {
        let size = parameters.get("size").and_then(Value::as_i64);
        BTreeMap::from([(
            "size".to_string(),
            size.unwrap_or(plan.sizing.size).to_string(),
        )])
    }
}

impl Bindings for Demo {
    type BindingError = DemoBindingError;

    const BINDING_KIND: &'static str = "token";

    fn account_name(binding_id: &str) -> String {
        binding_id.to_string()
    }

    async fn create_account(
        _endpoint: &DeploymentEndpoint,
        _admin: &AdminCredentials,
        _account: &str,
        _password: &SecretString,
    ) -> Result<(), DemoBindingError> {
        Ok(())
    }

    async fn delete_account(
        _endpoint: &DeploymentEndpoint,
        _admin: &AdminCredentials,
        _account: &str,
    ) -> Result<(), DemoBindingError> {
        Ok(())
    }

    fn credentials(
        endpoint: &DeploymentEndpoint,
        account: &str,
        _password: &SecretString,
    ) -> BindingCredentials {
        BindingCredentials::tcp(endpoint, json!({"username": account}))
    }
}
