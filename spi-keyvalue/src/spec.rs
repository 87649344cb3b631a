//! Deployment specs of Redis servers: the engine and its naming, and the server settings of a
//! plan with the instance parameters applied. `spi-kit` makes the spec from them.

use crate::offering::{PlanDef, DEFAULT_MAXMEMORY_POLICY, PARAM_MAXMEMORY_POLICY};
use crate::KeyValue;
use common::deployer::Engine;
use common::osb::JsonObject;
use spi_kit::spec::EngineInfo;
use spi_kit::Deployment;
use std::collections::BTreeMap;

/// Shared with every SPI; still reachable under this crate's path.
pub use spi_kit::spec::short_hash;

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
    use crate::offering::{Offering, Refusal, PLANS, PLAN_MEDIUM_ID, PLAN_SMALL_ID};
    use serde_json::json;
    use testkit::spi::instance::spec_request;
    use testkit::spi::spec::UUID;

    testkit::spec_tests!(KeyValue);

    #[test]
    fn a_lowercase_uuid_is_kept_readable_after_kv() {
        assert_eq!(deployment_name(UUID), format!("kv-{UUID}"));
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
    fn a_new_spec_describes_a_redis_server_and_an_update_the_new_plan() {
        let o = Offering::new("http://d").unwrap();
        let request = spec_request::<KeyValue>(UUID, PLAN_SMALL_ID, json!({}), None);
        let first = o.deployment_spec(&request).unwrap();
        assert_eq!(first.description, "creating Redis 7 server");
        assert_eq!(first.spec.engine, Engine::Redis);
        assert_eq!(first.spec.version, "7");
        assert_eq!(first.spec.admin.username, "osb_admin");
        assert_eq!(first.spec.labels["plan"], "small");
        let previous = Some(first.spec.clone());
        let parameters = json!({"maxmemory-policy": "volatile-ttl"});
        let request = spec_request::<KeyValue>(UUID, PLAN_MEDIUM_ID, parameters, previous);
        let next = o.deployment_spec(&request).unwrap();
        assert_eq!(next.spec.name, first.spec.name);
        assert_eq!(next.spec.admin, first.spec.admin);
        assert_eq!(next.spec.settings["maxmemory"], "256mb");
        assert_eq!(next.description, "updating Redis 7 server to plan medium");
    }

    #[test]
    fn invalid_parameters_make_no_spec() {
        let o = Offering::new("http://d").unwrap();
        let parameters = json!({"maxmemory-policy": "x"});
        let request = spec_request::<KeyValue>(UUID, PLAN_SMALL_ID, parameters, None);
        assert!(matches!(
            o.deployment_spec(&request),
            Err(Refusal::InvalidParameters(_))
        ));
    }
}
