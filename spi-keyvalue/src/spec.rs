//! Deployment specs of Redis servers: the engine and its naming, and the server settings of a
//! plan with the instance parameters applied. `spi-kit` makes the spec from them.

use crate::offering::{PlanDef, DEFAULT_MAXMEMORY_POLICY, PARAM_MAXMEMORY_POLICY};
use crate::KeyValue;
use common::deployer::Engine;
use common::osb::JsonObject;
use spi_kit::spec::EngineInfo;
use spi_kit::Deployment;
use std::collections::BTreeMap;

pub use spi_kit::spec::{
    prefixed_name, short_hash, ADMIN_PASSWORD_LEN, ADMIN_USERNAME, LABEL_INSTANCE_ID, LABEL_PLAN,
    MAX_NAME_LEN,
};

/// Major Redis version every plan runs.
pub const REDIS_VERSION: &str = "7";
/// Prefix of deployment names.
pub const NAME_PREFIX: &str = "kv-";

/// The deployment name of an instance: `kv-<id>` when the id is already lowercase
/// `[a-z0-9-]` and short enough, otherwise `kv-<first 128 bits of SHA-256(id), hex>`.
pub fn deployment_name(instance_id: &str) -> String {
    spi_kit::spec::deployment_name::<KeyValue>(instance_id)
}

impl Deployment for KeyValue {
    const ENGINE: EngineInfo = EngineInfo {
        engine: Engine::Redis,
        version: REDIS_VERSION,
        product: "Redis",
        kind: "server",
        name_prefix: NAME_PREFIX,
    };

    /// The plan's sizing and the (validated) eviction policy.
    fn server_settings(plan: &PlanDef, parameters: &JsonObject) -> BTreeMap<String, String> {
        let policy = parameters
            .get(PARAM_MAXMEMORY_POLICY)
            .and_then(serde_json::Value::as_str)
            .unwrap_or(DEFAULT_MAXMEMORY_POLICY);
        BTreeMap::from([
            (
                "maxmemory".to_string(),
                format!("{}mb", plan.sizing.maxmemory_mb),
            ),
            ("maxclients".to_string(), plan.sizing.maxclients.to_string()),
            ("maxmemory-policy".to_string(), policy.to_string()),
        ])
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

    #[test]
    fn a_lowercase_uuid_is_kept_readable() {
        assert_eq!(
            deployment_name("5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b"),
            "kv-5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b"
        );
    }

    #[test]
    fn other_ids_become_a_stable_safe_hash() {
        for id in ["UPPER", "a b", "../x", "", "x-", &"a".repeat(50)] {
            let name = deployment_name(id);
            assert_eq!(name.len(), 3 + 32, "{id:?} → {name}");
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert_eq!(name, deployment_name(id));
        }
    }

    #[test]
    fn plan_sizing_and_the_default_policy_apply_without_parameters() {
        let s = KeyValue::server_settings(&PLANS[0], &JsonObject::new());
        assert_eq!(s["maxmemory"], "64mb");
        assert_eq!(s["maxclients"], "100");
        assert_eq!(s["maxmemory-policy"], "noeviction");
    }

    #[test]
    fn the_policy_parameter_is_applied() {
        let p = json!({"maxmemory-policy": "allkeys-lru"});
        let s = KeyValue::server_settings(&PLANS[1], p.as_object().unwrap());
        assert_eq!(s["maxmemory"], "256mb");
        assert_eq!(s["maxmemory-policy"], "allkeys-lru");
    }

    #[test]
    fn a_new_spec_has_a_fresh_admin_and_an_update_keeps_it() {
        let o = Offering::new("http://d").unwrap();
        let first = o
            .deployment_spec(&request(PLAN_SMALL_ID, json!({})))
            .unwrap();
        assert_eq!(first.description, "creating Redis 7 server");
        assert_eq!(first.spec.engine, Engine::Redis);
        assert_eq!(first.spec.version, "7");
        assert_eq!(first.spec.admin.username, "osb_admin");
        assert_eq!(first.spec.labels["plan"], "small");
        let mut req = request(PLAN_MEDIUM_ID, json!({"maxmemory-policy": "volatile-ttl"}));
        req.previous = Some(first.spec.clone());
        let next = o.deployment_spec(&req).unwrap();
        assert_eq!(next.spec.name, first.spec.name);
        assert_eq!(next.spec.admin, first.spec.admin);
        assert_eq!(next.spec.settings["maxmemory"], "256mb");
        assert_eq!(next.description, "updating Redis 7 server to plan medium");
    }

    #[test]
    fn invalid_parameters_make_no_spec() {
        let o = Offering::new("http://d").unwrap();
        assert!(matches!(
            o.deployment_spec(&request(PLAN_SMALL_ID, json!({"maxmemory-policy": "x"}))),
            Err(Refusal::InvalidParameters(_))
        ));
    }
}
