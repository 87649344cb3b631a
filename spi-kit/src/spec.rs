//! Deployment specs: (instance, plan, parameters, previous spec) → what the deployer runs.
//! Names are deterministic, safe for paths, DNS and container names, and injective: two
//! different ids never get the same name (see [`prefixed_name`]).

use crate::offering::{Offering, Refusal};
use crate::service::Deployment;
use common::deployer::{AdminCredentials, DeploymentSpec, Engine};
use common::spi::{DeploymentSpecRequest, DeploymentSpecResponse};
use std::collections::BTreeMap;

/// Name of the admin account created with each server.
pub const ADMIN_USERNAME: &str = "osb_admin";
/// Length of generated admin passwords.
pub const ADMIN_PASSWORD_LEN: usize = 32;
/// Longest deployment name an SPI produces.
pub const MAX_NAME_LEN: usize = 40;
/// Label carrying the instance id.
pub const LABEL_INSTANCE_ID: &str = common::deployer::OWNER_LABEL;
/// Label carrying the plan name.
pub const LABEL_PLAN: &str = common::deployer::PLAN_LABEL;

/// What the deployer runs for an instance of a data service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineInfo {
    /// The server kind.
    pub engine: Engine,
    /// Major version every plan runs.
    pub version: &'static str,
    /// Product name in task descriptions (`PostgreSQL`).
    pub product: &'static str,
    /// What one deployment is called in task descriptions (`cluster`, `server`).
    pub kind: &'static str,
    /// Prefix of deployment names (`pg-`).
    pub name_prefix: &'static str,
}

/// Length of [`short_hash`]: 32 lowercase hex digits.
pub const HASH_LEN: usize = 32;

/// Whether `s` has the shape of a [`short_hash`]: exactly 32 lowercase hex digits.
pub fn looks_like_hash(s: &str) -> bool {
    s.len() == HASH_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `id` can be used verbatim after a prefix: lowercase `[a-z0-9-]`, not ending in `-`,
/// at most `max_len` bytes, and not shaped like a hash (which would be ambiguous with the
/// hashed name of another id).
pub fn usable_verbatim(id: &str, max_len: usize) -> bool {
    !id.is_empty()
        && id.len() <= max_len
        && !id.ends_with('-')
        && !looks_like_hash(id)
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `prefix` + `id` when the id is usable verbatim within `max_len`, otherwise `prefix` + a hash.
///
/// Injective: a verbatim name's tail is never 32 hex digits (such ids are hashed), a hashed
/// name's tail always is, and two hashed names are equal only for equal ids (a SHA-256
/// collision aside). So an id equal to the hash of another id gets another name.
pub fn prefixed_name(prefix: &str, id: &str, max_len: usize) -> String {
    if usable_verbatim(id, max_len.saturating_sub(prefix.len())) {
        format!("{prefix}{id}")
    } else {
        format!("{prefix}{}", short_hash(id))
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

/// The deployment name of an instance: the engine's prefix and the id when the id is already
/// lowercase `[a-z0-9-]`, short enough and not shaped like a hash, otherwise the prefix and a
/// hash of the id ([`prefixed_name`]: no two ids share a name).
pub fn deployment_name<S: Deployment>(instance_id: &str) -> String {
    prefixed_name(S::ENGINE.name_prefix, instance_id, MAX_NAME_LEN)
}

impl<S: Deployment> Offering<S> {
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
                deployment_name::<S>(&req.instance_id).into(),
                AdminCredentials {
                    username: ADMIN_USERNAME.to_string(),
                    password: common::secret::random_password(ADMIN_PASSWORD_LEN),
                },
            ),
        };
        let labels = BTreeMap::from([
            (LABEL_INSTANCE_ID.to_string(), req.instance_id.to_string()),
            (LABEL_PLAN.to_string(), plan.name.to_string()),
        ]);
        let EngineInfo {
            engine,
            version,
            product,
            kind,
            ..
        } = S::ENGINE;
        let description = match req.previous {
            Some(_) => format!("updating {product} {version} {kind} to plan {}", plan.name),
            None => format!("creating {product} {version} {kind}"),
        };
        Ok(DeploymentSpecResponse {
            spec: DeploymentSpec {
                name,
                engine,
                version: version.to_string(),
                settings: S::server_settings(plan, &req.parameters),
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
    use crate::demo::{Demo, PLANS};
    use serde_json::json;

    fn request(plan_id: &str, parameters: serde_json::Value) -> DeploymentSpecRequest {
        DeploymentSpecRequest {
            instance_id: "5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b".into(),
            service_id: "demo-service-id".into(),
            plan_id: plan_id.into(),
            parameters: parameters.as_object().cloned().unwrap(),
            previous: None,
        }
    }

    #[test]
    fn usable_ids_are_kept_and_others_hashed_within_the_limit() {
        assert_eq!(prefixed_name("x-", "abc-1", 10), "x-abc-1");
        assert_eq!(prefixed_name("x-", "abcdefgh", 10), "x-abcdefgh");
        for id in ["abcdefghi", "UPPER", "a b", "", "ends-"] {
            let name = prefixed_name("x-", id, 10);
            assert_eq!(name, format!("x-{}", short_hash(id)), "{id:?}");
        }
        assert_ne!(short_hash("A"), short_hash("B"));
        assert_eq!(short_hash("A").len(), 32);
    }

    #[test]
    fn an_id_equal_to_the_hash_of_another_id_gets_another_name() {
        let victim = "Victim-1";
        let attacker = short_hash(victim);
        assert!(looks_like_hash(&attacker));
        let victim_name = prefixed_name("kv-", victim, MAX_NAME_LEN);
        let attacker_name = prefixed_name("kv-", &attacker, MAX_NAME_LEN);
        assert_eq!(victim_name, format!("kv-{attacker}"));
        assert_ne!(victim_name, attacker_name);
        assert_eq!(attacker_name, format!("kv-{}", short_hash(&attacker)));
        // Ids that only look a little like hashes stay readable.
        assert_eq!(
            prefixed_name("kv-", &attacker[..31], MAX_NAME_LEN),
            format!("kv-{}", &attacker[..31])
        );
    }

    #[test]
    fn a_new_spec_names_the_engine_and_an_update_keeps_name_and_admin() {
        let o = Offering::<Demo>::new("http://d").unwrap();
        let first = o.deployment_spec(&request(PLANS[0].id, json!({}))).unwrap();
        assert_eq!(first.description, "creating Demo 1 box");
        assert_eq!(first.spec.name, "dm-5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b");
        assert_eq!(first.spec.version, "1");
        assert_eq!(first.spec.settings["size"], "1");
        assert_eq!(first.spec.admin.username, ADMIN_USERNAME);
        assert_eq!(first.spec.admin.password.expose().len(), ADMIN_PASSWORD_LEN);
        let mut req = request(PLANS[1].id, json!({"size": 7}));
        req.previous = Some(first.spec.clone());
        let next = o.deployment_spec(&req).unwrap();
        assert_eq!(next.spec.name, first.spec.name);
        assert_eq!(next.spec.admin, first.spec.admin);
        assert_eq!(next.spec.settings["size"], "7");
        assert_eq!(next.spec.labels["plan"], "large");
        assert_eq!(next.description, "updating Demo 1 box to plan large");
    }

    #[test]
    fn invalid_parameters_make_no_spec() {
        let o = Offering::<Demo>::new("http://d").unwrap();
        assert!(matches!(
            o.deployment_spec(&request(PLANS[0].id, json!({"size": "big"}))),
            Err(Refusal::InvalidParameters(_))
        ));
    }
}
