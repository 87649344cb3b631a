//! What every data service's deployment specs must satisfy, checked on its real offering:
//! deployment names that are readable when they can be and safe, stable hashes otherwise; a
//! fresh admin account per new spec, kept by an update. [`crate::spec_tests!`] turns each check
//! into a test.

use super::instance::spec_request;
use super::offering::offering;
use serde_json::json;
use spi_kit::service::Deployment;
use spi_kit::spec::{deployment_name, ADMIN_PASSWORD_LEN, ADMIN_USERNAME, MAX_NAME_LEN};

/// An instance id as a platform sends it: a lowercase UUID.
pub const UUID: &str = "5e1f6c2a-0d7b-4a8e-9c3f-1b2d3e4f5a6b";

/// A lowercase UUID is kept readable after the engine's prefix.
pub fn a_lowercase_uuid_is_kept_readable<S: Deployment>() {
    assert_eq!(
        deployment_name::<S>(UUID),
        format!("{}{UUID}", S::ENGINE.name_prefix)
    );
}

/// Ids that are not lowercase `[a-z0-9-]`, end in `-` or are too long become the prefix and a
/// stable hash: safe for paths, DNS and container names, and different for different ids.
pub fn other_ids_become_a_stable_safe_hash<S: Deployment>() {
    let long = "a".repeat(100);
    let prefix = S::ENGINE.name_prefix;
    for id in [
        "5E1F6C2A-0D7B-4A8E-9C3F-1B2D3E4F5A6B",
        "UPPER",
        "with space",
        "a b",
        "../../etc",
        "../x",
        "",
        "ends-",
        "x-",
        &long[..50],
        &long,
    ] {
        let name = deployment_name::<S>(id);
        assert!(name.len() <= MAX_NAME_LEN, "{id:?} → {name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id:?} → {name}"
        );
        assert_eq!(name.len(), prefix.len() + 32, "{id:?} → {name}");
        assert_eq!(name, deployment_name::<S>(id), "not deterministic");
    }
    assert_ne!(deployment_name::<S>("A"), deployment_name::<S>("B"));
}

/// A new spec runs the engine's version with a fresh admin account and labels naming the
/// instance and plan; two new specs share the name, not the password.
pub fn a_new_spec_has_a_fresh_admin_and_labels<S: Deployment>() {
    let o = offering::<S>();
    let plan = &S::PLANS[0];
    let new = || {
        o.deployment_spec(&spec_request::<S>(UUID, plan.id, json!({}), None))
            .unwrap()
    };
    let (a, b) = (new(), new());
    assert_eq!(a.spec.engine, S::ENGINE.engine);
    assert_eq!(a.spec.version, S::ENGINE.version);
    assert_eq!(a.spec.admin.username, ADMIN_USERNAME);
    assert_eq!(a.spec.admin.password.expose().len(), ADMIN_PASSWORD_LEN);
    assert_ne!(a.spec.admin.password, b.spec.admin.password);
    assert_eq!(a.spec.name, b.spec.name);
    assert_eq!(a.spec.labels["plan"], plan.name);
    assert_eq!(a.spec.labels["instance_id"], UUID);
}

/// An update to the largest plan keeps the name and the admin account, and takes the plan.
pub fn an_update_keeps_name_and_admin_and_takes_the_new_plan<S: Deployment>() {
    let o = offering::<S>();
    let (smallest, largest) = (&S::PLANS[0], &S::PLANS[S::PLANS.len() - 1]);
    let first = o
        .deployment_spec(&spec_request::<S>(UUID, smallest.id, json!({}), None))
        .unwrap();
    let previous = Some(first.spec.clone());
    let next = o
        .deployment_spec(&spec_request::<S>(UUID, largest.id, json!({}), previous))
        .unwrap();
    assert_eq!(next.spec.name, first.spec.name);
    assert_eq!(next.spec.admin, first.spec.admin);
    assert_eq!(next.spec.labels["plan"], largest.name);
}

/// One `#[test]` per check of [`crate::spi::spec`], on the deployment specs of data service
/// `$service`.
#[macro_export]
macro_rules! spec_tests {
    ($service:ty) => {
        $crate::__spi_checks!(plain spec $service;
            a_lowercase_uuid_is_kept_readable,
            other_ids_become_a_stable_safe_hash,
            a_new_spec_has_a_fresh_admin_and_labels,
            an_update_keeps_name_and_admin_and_takes_the_new_plan,
        );
    };
}
