//! Deployment specs of PostgreSQL servers: the engine and its naming, and the server settings
//! of a plan with the instance parameters applied. `spi-kit` makes the spec from them.

use crate::offering::{
    PlanDef, PARAM_MAX_CONNECTIONS, PARAM_STATEMENT_TIMEOUT_MS, PARAM_WORK_MEM_MB,
};
use crate::Postgres;
use common::deployer::Engine;
use common::osb::JsonObject;
use spi_kit::spec::EngineInfo;
use spi_kit::Deployment;
use std::collections::BTreeMap;

pub use spi_kit::spec::{
    short_hash, ADMIN_PASSWORD_LEN, ADMIN_USERNAME, LABEL_INSTANCE_ID, LABEL_PLAN, MAX_NAME_LEN,
};

/// Major PostgreSQL version every plan runs.
pub const POSTGRES_VERSION: &str = "15";
/// Prefix of deployment names.
pub const NAME_PREFIX: &str = "pg-";

/// The deployment name of an instance: `pg-<id>` when the id is already lowercase
/// `[a-z0-9-]` and short enough, otherwise `pg-<first 128 bits of SHA-256(id), hex>`.
pub fn deployment_name(instance_id: &str) -> String {
    spi_kit::spec::deployment_name::<Postgres>(instance_id)
}

impl Deployment for Postgres {
    const ENGINE: EngineInfo = EngineInfo {
        engine: Engine::Postgresql,
        version: POSTGRES_VERSION,
        product: "PostgreSQL",
        kind: "cluster",
        name_prefix: NAME_PREFIX,
    };

    /// The plan's settings, overridden by the (validated) parameters.
    fn server_settings(plan: &PlanDef, parameters: &JsonObject) -> BTreeMap<String, String> {
        let int = |name: &str| parameters.get(name).and_then(serde_json::Value::as_i64);
        let sizing = &plan.sizing;
        let mut settings = BTreeMap::new();
        let max_connections =
            int(PARAM_MAX_CONNECTIONS).unwrap_or(i64::from(sizing.max_connections));
        settings.insert("max_connections".into(), max_connections.to_string());
        settings.insert(
            "shared_buffers".into(),
            format!("{}MB", sizing.shared_buffers_mb),
        );
        let work_mem = int(PARAM_WORK_MEM_MB).unwrap_or(i64::from(sizing.work_mem_mb));
        settings.insert("work_mem".into(), format!("{work_mem}MB"));
        if let Some(ms) = int(PARAM_STATEMENT_TIMEOUT_MS) {
            settings.insert("statement_timeout".into(), format!("{ms}ms"));
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offering::{Offering, Refusal, PLANS, PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};
    use common::spi::DeploymentSpecRequest;
    use serde_json::json;

    fn request(plan_id: &str, parameters: serde_json::Value) -> DeploymentSpecRequest {
        DeploymentSpecRequest {
            instance_id: "5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b".into(),
            service_id: SERVICE_ID.into(),
            plan_id: plan_id.into(),
            parameters: parameters.as_object().cloned().unwrap(),
            previous: None,
        }
    }

    fn is_safe_name(name: &str) -> bool {
        name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    #[test]
    fn a_lowercase_uuid_is_kept_readable() {
        assert_eq!(
            deployment_name("5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b"),
            "pg-5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b"
        );
    }

    #[test]
    fn other_ids_become_a_stable_hash() {
        for id in [
            "5E1F6C2A-0D7B-4A8E-9C3F-1B2D3E4F5A6B",
            "with space",
            "../../etc",
            "",
            "ends-",
            &"a".repeat(100),
        ] {
            let name = deployment_name(id);
            assert!(is_safe_name(&name), "{id:?} → {name}");
            assert_eq!(name.len(), 3 + 32);
            assert_eq!(name, deployment_name(id), "not deterministic");
        }
        assert_ne!(deployment_name("A"), deployment_name("B"));
    }

    #[test]
    fn plan_settings_apply_without_parameters() {
        let small = Postgres::server_settings(&PLANS[0], &JsonObject::new());
        assert_eq!(small["max_connections"], "50");
        assert_eq!(small["shared_buffers"], "32MB");
        assert!(!small.contains_key("statement_timeout"));
        let medium = Postgres::server_settings(&PLANS[1], &JsonObject::new());
        assert_eq!(medium["max_connections"], "200");
        assert_eq!(medium["shared_buffers"], "128MB");
    }

    #[test]
    fn parameters_override_the_plan_settings() {
        let params =
            json!({"max_connections": 75, "work_mem_mb": 16, "statement_timeout_ms": 5000});
        let s = Postgres::server_settings(&PLANS[0], params.as_object().unwrap());
        assert_eq!(s["max_connections"], "75");
        assert_eq!(s["work_mem"], "16MB");
        assert_eq!(s["statement_timeout"], "5000ms");
    }

    #[test]
    fn a_new_spec_has_a_fresh_admin_and_labels() {
        let o = Offering::new("http://d").unwrap();
        let a = o
            .deployment_spec(&request(PLAN_SMALL_ID, json!({})))
            .unwrap();
        let b = o
            .deployment_spec(&request(PLAN_SMALL_ID, json!({})))
            .unwrap();
        assert_eq!(a.description, "creating PostgreSQL 15 cluster");
        assert_eq!(a.spec.engine, Engine::Postgresql);
        assert_eq!(a.spec.version, "15");
        assert_eq!(a.spec.admin.username, "osb_admin");
        assert_eq!(a.spec.admin.password.expose().len(), 32);
        assert_ne!(a.spec.admin.password, b.spec.admin.password);
        assert_eq!(a.spec.name, b.spec.name);
        assert_eq!(a.spec.labels["plan"], "small");
        assert_eq!(
            a.spec.labels["instance_id"],
            "5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b"
        );
    }

    #[test]
    fn an_update_keeps_name_and_admin_and_takes_the_new_plan() {
        let o = Offering::new("http://d").unwrap();
        let first = o
            .deployment_spec(&request(PLAN_SMALL_ID, json!({})))
            .unwrap();
        let mut req = request(PLAN_MEDIUM_ID, json!({"work_mem_mb": 32}));
        req.previous = Some(first.spec.clone());
        let next = o.deployment_spec(&req).unwrap();
        assert_eq!(next.spec.name, first.spec.name);
        assert_eq!(next.spec.admin, first.spec.admin);
        assert_eq!(next.spec.settings["max_connections"], "200");
        assert_eq!(next.spec.settings["work_mem"], "32MB");
        assert_eq!(
            next.description,
            "updating PostgreSQL 15 cluster to plan medium"
        );
    }

    #[test]
    fn invalid_parameters_make_no_spec() {
        let o = Offering::new("http://d").unwrap();
        let err = o
            .deployment_spec(&request(PLAN_SMALL_ID, json!({"max_connections": "many"})))
            .unwrap_err();
        assert!(matches!(err, Refusal::InvalidParameters(_)));
    }
}
