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
    use crate::offering::{Offering, Refusal, PLANS, PLAN_MEDIUM_ID, PLAN_SMALL_ID};
    use serde_json::json;
    use testkit::spi::instance::spec_request;
    use testkit::spi::spec::UUID;

    testkit::spec_tests!(Postgres);

    #[test]
    fn a_lowercase_uuid_is_kept_readable_after_pg() {
        assert_eq!(deployment_name(UUID), format!("pg-{UUID}"));
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
    fn a_new_spec_describes_a_postgresql_cluster_and_an_update_the_new_plan() {
        let o = Offering::new("http://d").unwrap();
        let request = spec_request::<Postgres>(UUID, PLAN_SMALL_ID, json!({}), None);
        let a = o.deployment_spec(&request).unwrap();
        assert_eq!(a.description, "creating PostgreSQL 15 cluster");
        assert_eq!(a.spec.engine, Engine::Postgresql);
        assert_eq!(a.spec.version, "15");
        assert_eq!(a.spec.admin.username, "osb_admin");
        assert_eq!(a.spec.admin.password.expose().len(), 32);
        assert_eq!(a.spec.labels["plan"], "small");
        let previous = Some(a.spec.clone());
        let parameters = json!({"work_mem_mb": 32});
        let request = spec_request::<Postgres>(UUID, PLAN_MEDIUM_ID, parameters, previous);
        let next = o.deployment_spec(&request).unwrap();
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
        let parameters = json!({"max_connections": "many"});
        let request = spec_request::<Postgres>(UUID, PLAN_SMALL_ID, parameters, None);
        let err = o.deployment_spec(&request).unwrap_err();
        assert!(matches!(err, Refusal::InvalidParameters(_)));
    }
}
