//! Deployment specs: (instance, plan, parameters, previous spec) → what the deployer runs.
//! Names are deterministic and safe for paths, DNS and container names.

use crate::offering::{
    Offering, PlanDef, Refusal, PARAM_MAX_CONNECTIONS, PARAM_STATEMENT_TIMEOUT_MS,
    PARAM_WORK_MEM_MB,
};
use common::deployer::{AdminCredentials, DeploymentSpec, Engine};
use common::osb::JsonObject;
use common::spi::{DeploymentSpecRequest, DeploymentSpecResponse};
use std::collections::BTreeMap;

/// Major PostgreSQL version every plan runs.
pub const POSTGRES_VERSION: &str = "15";
/// Name of the admin account created with each server.
pub const ADMIN_USERNAME: &str = "osb_admin";
/// Length of generated admin passwords.
pub const ADMIN_PASSWORD_LEN: usize = 32;
/// Prefix of deployment names.
pub const NAME_PREFIX: &str = "pg-";
/// Longest deployment name this SPI produces.
pub const MAX_NAME_LEN: usize = 40;
/// Label carrying the instance id.
pub const LABEL_INSTANCE_ID: &str = "instance_id";
/// Label carrying the plan name.
pub const LABEL_PLAN: &str = "plan";

/// The deployment name of an instance: `pg-<id>` when the id is already lowercase
/// `[a-z0-9-]` and short enough, otherwise `pg-<first 128 bits of SHA-256(id), hex>`.
pub fn deployment_name(instance_id: &str) -> String {
    let fits = !instance_id.is_empty()
        && NAME_PREFIX.len() + instance_id.len() <= MAX_NAME_LEN
        && !instance_id.ends_with('-')
        && instance_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        format!("{NAME_PREFIX}{instance_id}")
    } else {
        format!("{NAME_PREFIX}{}", short_hash(instance_id))
    }
}

/// First 16 bytes of SHA-256, as 32 lowercase hex digits.
pub fn short_hash(s: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Server settings: the plan's, overridden by the (validated) parameters.
pub fn server_settings(plan: &PlanDef, parameters: &JsonObject) -> BTreeMap<String, String> {
    let int = |name: &str| parameters.get(name).and_then(serde_json::Value::as_i64);
    let mut settings = BTreeMap::new();
    let max_connections = int(PARAM_MAX_CONNECTIONS).unwrap_or(i64::from(plan.max_connections));
    settings.insert("max_connections".into(), max_connections.to_string());
    settings.insert(
        "shared_buffers".into(),
        format!("{}MB", plan.shared_buffers_mb),
    );
    let work_mem = int(PARAM_WORK_MEM_MB).unwrap_or(i64::from(plan.work_mem_mb));
    settings.insert("work_mem".into(), format!("{work_mem}MB"));
    if let Some(ms) = int(PARAM_STATEMENT_TIMEOUT_MS) {
        settings.insert("statement_timeout".into(), format!("{ms}ms"));
    }
    settings
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
                "updating PostgreSQL {POSTGRES_VERSION} cluster to plan {}",
                plan.name
            ),
            None => format!("creating PostgreSQL {POSTGRES_VERSION} cluster"),
        };
        Ok(DeploymentSpecResponse {
            spec: DeploymentSpec {
                name,
                engine: Engine::Postgresql,
                version: POSTGRES_VERSION.to_string(),
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
        let small = server_settings(&PLANS[0], &JsonObject::new());
        assert_eq!(small["max_connections"], "50");
        assert_eq!(small["shared_buffers"], "32MB");
        assert!(!small.contains_key("statement_timeout"));
        let medium = server_settings(&PLANS[1], &JsonObject::new());
        assert_eq!(medium["max_connections"], "200");
        assert_eq!(medium["shared_buffers"], "128MB");
    }

    #[test]
    fn parameters_override_the_plan_settings() {
        let params =
            json!({"max_connections": 75, "work_mem_mb": 16, "statement_timeout_ms": 5000});
        let s = server_settings(&PLANS[0], params.as_object().unwrap());
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
