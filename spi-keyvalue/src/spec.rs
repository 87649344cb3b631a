//! Deployment specs: (instance, plan, parameters, previous spec) → what the deployer runs.
//! Names are deterministic and safe for paths, DNS and container names.

use crate::offering::{
    Offering, PlanDef, Refusal, DEFAULT_MAXMEMORY_POLICY, PARAM_MAXMEMORY_POLICY,
};
use common::deployer::{AdminCredentials, DeploymentSpec, Engine};
use common::osb::JsonObject;
use common::spi::{DeploymentSpecRequest, DeploymentSpecResponse};
use std::collections::BTreeMap;

/// Major Redis version every plan runs.
pub const REDIS_VERSION: &str = "7";
/// Name of the admin ACL user created with each server.
pub const ADMIN_USERNAME: &str = "osb_admin";
/// Length of generated admin passwords.
pub const ADMIN_PASSWORD_LEN: usize = 32;
/// Prefix of deployment names.
pub const NAME_PREFIX: &str = "kv-";
/// Longest deployment name this SPI produces.
pub const MAX_NAME_LEN: usize = 40;
/// Label carrying the instance id.
pub const LABEL_INSTANCE_ID: &str = "instance_id";
/// Label carrying the plan name.
pub const LABEL_PLAN: &str = "plan";

/// Whether `id` can be used verbatim after a prefix: lowercase `[a-z0-9-]`, not ending in `-`,
/// at most `max_len` bytes.
fn usable_verbatim(id: &str, max_len: usize) -> bool {
    !id.is_empty()
        && id.len() <= max_len
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `prefix` + `id` when the id is usable verbatim within `max_len`, otherwise `prefix` + a hash.
pub fn prefixed_name(prefix: &str, id: &str, max_len: usize) -> String {
    if usable_verbatim(id, max_len.saturating_sub(prefix.len())) {
        format!("{prefix}{id}")
    } else {
        format!("{prefix}{}", short_hash(id))
    }
}

/// The deployment name of an instance: `kv-<id>` when the id is already lowercase
/// `[a-z0-9-]` and short enough, otherwise `kv-<first 128 bits of SHA-256(id), hex>`.
pub fn deployment_name(instance_id: &str) -> String {
    prefixed_name(NAME_PREFIX, instance_id, MAX_NAME_LEN)
}

/// First 16 bytes of SHA-256, as 32 lowercase hex digits.
pub fn short_hash(s: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Server settings: the plan's sizing and the (validated) eviction policy.
pub fn server_settings(plan: &PlanDef, parameters: &JsonObject) -> BTreeMap<String, String> {
    let policy = parameters
        .get(PARAM_MAXMEMORY_POLICY)
        .and_then(serde_json::Value::as_str)
        .unwrap_or(DEFAULT_MAXMEMORY_POLICY);
    BTreeMap::from([
        ("maxmemory".to_string(), format!("{}mb", plan.maxmemory_mb)),
        ("maxclients".to_string(), plan.maxclients.to_string()),
        ("maxmemory-policy".to_string(), policy.to_string()),
    ])
}

impl Offering {
    /// The deployment spec for a provision (no `previous`) or an update (keeps the previous
    /// spec's name and admin account, so the deployer changes the same server in place).
    pub fn deployment_spec(
        &self,
        req: &DeploymentSpecRequest,
    ) -> Result<DeploymentSpecResponse, Refusal> {
        let plan = self.plan(&req.service_id, &req.plan_id)?;
        self.check_instance_parameters(plan, &req.parameters)?;
        let (name, admin) = match &req.previous {
            Some(previous) => (previous.name.clone(), previous.admin.clone()),
            None => (
                deployment_name(&req.instance_id),
                AdminCredentials {
                    username: ADMIN_USERNAME.to_string(),
                    password: common::secret::random_password(ADMIN_PASSWORD_LEN),
                },
            ),
        };
        let labels = BTreeMap::from([
            (LABEL_INSTANCE_ID.to_string(), req.instance_id.clone()),
            (LABEL_PLAN.to_string(), plan.name.to_string()),
        ]);
        let description = match req.previous {
            Some(_) => format!(
                "updating Redis {REDIS_VERSION} server to plan {}",
                plan.name
            ),
            None => format!("creating Redis {REDIS_VERSION} server"),
        };
        Ok(DeploymentSpecResponse {
            spec: DeploymentSpec {
                name,
                engine: Engine::Redis,
                version: REDIS_VERSION.to_string(),
                settings: server_settings(plan, &req.parameters),
                admin,
                labels,
            },
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offering::{PLANS, PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};
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
        let s = server_settings(&PLANS[0], &JsonObject::new());
        assert_eq!(s["maxmemory"], "64mb");
        assert_eq!(s["maxclients"], "100");
        assert_eq!(s["maxmemory-policy"], "noeviction");
    }

    #[test]
    fn the_policy_parameter_is_applied() {
        let p = json!({"maxmemory-policy": "allkeys-lru"});
        let s = server_settings(&PLANS[1], p.as_object().unwrap());
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
