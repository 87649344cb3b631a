//! §8 "Catalog": rules 13-28.

use crate::helpers::{provision_body, spawn_stack, Answer, SERVICE_ID};
use crate::support::{assert_error_body, fetch_instance, provisioned, shared, update};
use serde_json::{json, Value};
use std::collections::HashSet;

async fn catalog() -> Value {
    let answer: Answer = shared().app.get("/v2/catalog").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

fn services(catalog: &Value) -> &Vec<Value> {
    catalog["services"]
        .as_array()
        .expect("services is an array")
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// Every `schemas.*.*.parameters` of every plan.
fn schemas(catalog: &Value) -> Vec<Value> {
    let mut out = vec![];
    for service in services(catalog) {
        for plan in service["plans"].as_array().unwrap() {
            for (kind, actions) in [
                ("service_instance", &["create", "update"][..]),
                ("service_binding", &["create"][..]),
            ] {
                for action in actions {
                    let p = &plan["schemas"][kind][*action]["parameters"];
                    if !p.is_null() {
                        out.push(p.clone());
                    }
                }
            }
        }
    }
    out
}

/// SemVer 2.0: MAJOR.MINOR.PATCH without leading zeros, optional pre-release and build.
fn is_semver(v: &str) -> bool {
    let (core_pre, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core_pre.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core_pre, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| p.split('.').all(ident))
        && build.is_none_or(|b| b.split('.').all(ident))
}

#[test]
fn the_semver_check_knows_valid_and_invalid_versions() {
    for ok in ["15.0.0", "2.1.1+abcdef", "1.0.0-rc.1", "0.0.1"] {
        assert!(is_semver(ok), "{ok}");
    }
    for bad in ["15", "15.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0+"] {
        assert!(!is_semver(bad), "{bad}");
    }
}

#[tokio::test]
async fn rule_013_the_catalog_is_200_with_a_services_array() {
    let c = catalog().await;
    assert!(c.is_object());
    assert!(c["services"].is_array(), "{c}");
}

#[tokio::test]
async fn rule_014_every_service_has_name_id_description_bindable_and_plans() {
    let c = catalog().await;
    for s in services(&c) {
        assert!(non_empty(&s["name"]) && non_empty(&s["id"]), "{s}");
        assert!(non_empty(&s["description"]), "{s}");
        assert!(s["bindable"].is_boolean(), "{s}");
        assert!(s["plans"].is_array(), "{s}");
    }
}

#[tokio::test]
async fn rule_015_service_names_are_unique() {
    let c = catalog().await;
    let names: Vec<&str> = services(&c)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().collect::<HashSet<_>>().len(),
        names.len(),
        "{names:?}"
    );
}

#[tokio::test]
async fn rule_016_service_and_plan_ids_are_non_empty_and_unique() {
    let c = catalog().await;
    let mut ids = HashSet::new();
    for s in services(&c) {
        assert!(ids.insert(s["id"].as_str().unwrap().to_string()), "{s}");
        for p in s["plans"].as_array().unwrap() {
            assert!(non_empty(&p["id"]), "{p}");
            assert!(ids.insert(p["id"].as_str().unwrap().to_string()), "{p}");
        }
    }
}

#[tokio::test]
async fn rule_017_ids_are_identical_across_repeated_fetches() {
    let ids = |c: &Value| -> Vec<String> {
        let mut out = vec![];
        for s in services(c) {
            out.push(s["id"].as_str().unwrap().to_string());
            for p in s["plans"].as_array().unwrap() {
                out.push(p["id"].as_str().unwrap().to_string());
            }
        }
        out
    };
    let first = ids(&catalog().await);
    for _ in 0..3 {
        assert_eq!(ids(&catalog().await), first);
    }
    // And they are the SPI's published constants, not generated per process.
    assert!(first.contains(&SERVICE_ID.to_string()));
}

#[tokio::test]
async fn rule_018_each_service_has_at_least_one_plan() {
    let c = catalog().await;
    for s in services(&c) {
        assert!(!s["plans"].as_array().unwrap().is_empty(), "{s}");
    }
}

#[tokio::test]
async fn rule_019_every_plan_has_id_name_description_and_unique_names_per_service() {
    let c = catalog().await;
    for s in services(&c) {
        let mut names = HashSet::new();
        for p in s["plans"].as_array().unwrap() {
            assert!(non_empty(&p["id"]) && non_empty(&p["description"]), "{p}");
            assert!(non_empty(&p["name"]), "{p}");
            assert!(names.insert(p["name"].as_str().unwrap().to_string()), "{p}");
        }
    }
}

#[tokio::test]
async fn rule_020_requires_only_names_the_three_known_permissions() {
    let c = catalog().await;
    for s in services(&c) {
        for r in s["requires"].as_array().into_iter().flatten() {
            assert!(
                ["syslog_drain", "route_forwarding", "volume_mount"].contains(&r.as_str().unwrap()),
                "{r}"
            );
        }
    }
}

#[tokio::test]
async fn rule_021_plan_maintenance_info_has_a_semver_version() {
    let c = catalog().await;
    for s in services(&c) {
        for p in s["plans"].as_array().unwrap() {
            if let Some(m) = p.get("maintenance_info") {
                let v = m["version"].as_str().expect("maintenance_info.version");
                assert!(is_semver(v), "{v}");
            }
        }
    }
}

#[tokio::test]
async fn rule_022_every_parameter_schema_has_a_schema_key() {
    let c = catalog().await;
    let all = schemas(&c);
    assert!(!all.is_empty());
    for schema in all {
        assert!(non_empty(&schema["$schema"]), "{schema}");
    }
}

#[tokio::test]
async fn rule_023_schemas_contain_no_external_references() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let c = catalog().await;
    for schema in schemas(&c) {
        let mut found = vec![];
        refs(&schema, &mut found);
        assert!(found.iter().all(|r| r.starts_with('#')), "{found:?}");
    }
}

#[tokio::test]
async fn rule_024_each_schema_is_at_most_64_kb() {
    let c = catalog().await;
    for schema in schemas(&c) {
        assert!(serde_json::to_vec(&schema).unwrap().len() <= 64 * 1024);
    }
}

#[tokio::test]
async fn rule_025_a_dashboard_client_has_non_empty_id_and_secret() {
    let c = catalog().await;
    for s in services(&c) {
        if let Some(d) = s.get("dashboard_client").filter(|d| !d.is_null()) {
            assert!(non_empty(&d["id"]) && non_empty(&d["secret"]), "{d}");
        }
    }
}

#[tokio::test]
async fn rule_026_no_offering_is_a_route_service_so_none_returns_route_service_url() {
    let s = shared();
    let c = catalog().await;
    for service in services(&c) {
        let requires: Vec<&str> = service["requires"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(!requires.contains(&"route_forwarding"), "{service}");
    }
    let fetched = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/service_bindings/{}",
            s.instance, s.binding
        ))
        .await;
    assert!(
        fetched.body.get("route_service_url").is_none(),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn rule_027_plan_changes_are_declared_with_plan_updateable() {
    let c = catalog().await;
    for s in services(&c) {
        // The broker changes plans of this offering (see rule 58): it must say so.
        let offering = s["plan_updateable"].as_bool().unwrap_or(false);
        for p in s["plans"].as_array().unwrap() {
            let effective = p["plan_updateable"].as_bool().unwrap_or(offering);
            assert!(effective, "{p}");
        }
    }
}

#[tokio::test]
async fn rule_028_context_only_updates_are_served_where_allow_context_updates_is_declared() {
    let s = shared();
    let c = catalog().await;
    let service = services(&c)
        .iter()
        .find(|svc| svc["id"] == SERVICE_ID)
        .unwrap();
    assert_eq!(service["allow_context_updates"], true);
    let before = fetch_instance(&s.app, &s.instance).await;
    // The same context again is no change at all; a renamed instance is a context-only update.
    let mut context = crate::helpers::provision_body(json!({}))["context"].clone();
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "context": context}),
        true,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, json!({}));
    context["instance_name"] = json!("my-renamed-db");
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "context": context}),
        false,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(fetch_instance(&s.app, &s.instance).await, before);
    // The new context is what the broker keeps for the instance.
    let store = broker::store::Store::connect(&s.app.broker_settings().database.url)
        .await
        .unwrap();
    let (row, _) = store.instance(&s.instance).await.unwrap().unwrap();
    let stored: Value = serde_json::from_str(row.context.as_deref().unwrap()).unwrap();
    assert_eq!(stored["instance_name"], "my-renamed-db");
    assert_eq!(stored["platform"], "cloudfoundry");
}

#[tokio::test]
async fn rule_028_where_allow_context_updates_is_not_declared_a_context_change_is_422_and_kept_out()
{
    let app = spawn_stack(|_| {}, |spi| spi.allow_context_updates = false).await;
    let c = app.get("/v2/catalog").await;
    let service = services(&c.body)
        .iter()
        .find(|svc| svc["id"] == SERVICE_ID)
        .unwrap()
        .clone();
    assert_eq!(service["allow_context_updates"], false);
    let id = provisioned(&app, json!({})).await;
    let store = broker::store::Store::connect(&app.broker_settings().database.url)
        .await
        .unwrap();
    let stored_context = || async {
        let (row, _) = store.instance(&id).await.unwrap().unwrap();
        serde_json::from_str::<Value>(row.context.as_deref().unwrap()).unwrap()
    };
    let before = stored_context().await;
    let mut context = provision_body(json!({}))["context"].clone();
    context["instance_name"] = json!("my-renamed-db");
    let answer = update(
        &app,
        &id,
        &json!({"service_id": SERVICE_ID, "context": context}),
        true,
    )
    .await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_error_body(&answer);
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .contains("allow_context_updates"),
        "{answer:?}"
    );
    assert_eq!(stored_context().await, before);
    let answer = app.deprovision(&id).await;
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}
