//! §8 "Bind": rules 69-82, and binding rotation.

use crate::helpers::{bind_body, new_id, query_with, PLAN_MEDIUM, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_concurrency_error, provisioned, send, shared, update, update_body};
use reqwest::Method;
use serde_json::json;

fn binding_path(instance: &str, binding: &str) -> String {
    format!("/v2/service_instances/{instance}/service_bindings/{binding}")
}

async fn unbind_ok(instance: &str, binding: &str) {
    let answer = shared().app.unbind(instance, binding).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn rule_069_a_bind_without_service_or_plan_id_is_400() {
    let s = shared();
    let binding = new_id();
    for body in [
        json!({"plan_id": PLAN_SMALL}),
        json!({"service_id": SERVICE_ID}),
        json!({"service_id": "", "plan_id": PLAN_SMALL}),
    ] {
        let answer = s.app.bind(&s.instance, &binding, &body).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }
    assert_eq!(
        s.app.get(&binding_path(&s.instance, &binding)).await.status,
        404
    );
}

#[tokio::test]
async fn rule_070_a_new_synchronous_bind_is_201_with_working_credentials() {
    let s = shared();
    let binding = new_id();
    let answer = s.app.bind(&s.instance, &binding, &bind_body()).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    query_with(answer.body["credentials"]["uri"].as_str().unwrap())
        .await
        .expect("the credentials work");
    unbind_ok(&s.instance, &binding).await;
}

#[tokio::test]
async fn rule_071_an_identical_bind_after_completion_is_200_with_the_same_credentials() {
    let s = shared();
    let answer = s.app.bind(&s.instance, &s.binding, &bind_body()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["credentials"]["uri"], s.uri.as_str());
}

#[tokio::test]
async fn rule_072_the_same_binding_id_with_other_parameters_is_409() {
    let s = shared();
    let mut body = bind_body();
    body["parameters"] = json!({"role": "reader"});
    let answer = s.app.bind(&s.instance, &s.binding, &body).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    query_with(&s.uri).await.expect("the binding is untouched");
}

#[tokio::test]
async fn rule_073_an_async_bind_is_202_with_only_the_operation() {
    let app = crate::helpers::spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = provisioned(&app, json!({})).await;
    let binding = new_id();
    let answer = send(
        &app,
        Method::PUT,
        &format!("{}?accepts_incomplete=true", binding_path(&id, &binding)),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["operation"], "{answer:?}");
    // Repeated while in progress: 202 with the same operation (rule 31 for binds).
    let repeat = send(
        &app,
        Method::PUT,
        &format!("{}?accepts_incomplete=true", binding_path(&id, &binding)),
        Some(&bind_body()),
    )
    .await;
    if repeat.status == 202 {
        assert_eq!(repeat.operation(), answer.operation());
    } else {
        assert_eq!(repeat.status, 200, "done meanwhile: {repeat:?}");
    }
    let (last, _) = app
        .wait_for_binding(&id, &binding, &answer.operation())
        .await;
    assert_eq!(last["state"], "succeeded");
    app.stop_all().await;
}

#[tokio::test]
async fn rule_075_a_bind_while_the_instance_is_being_updated_is_422_concurrency_error() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let running = update(&s.app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    assert_eq!(running.status, 202);
    let answer = s.app.bind(&id, &new_id(), &bind_body()).await;
    // The instance's plan is still small while the update runs.
    assert_concurrency_error(&answer);
    s.app.wait_for_instance(&id, &running.operation()).await;
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_076_credentials_are_returned_on_201_and_200() {
    let s = shared();
    let again = s.app.bind(&s.instance, &s.binding, &bind_body()).await;
    assert_eq!(again.status, 200);
    let credentials = again.body["credentials"].as_object().expect("credentials");
    for key in ["uri", "username", "password"] {
        assert!(credentials.contains_key(key), "{key} in {credentials:?}");
    }
}

#[tokio::test]
async fn rule_077_078_079_no_syslog_drain_route_service_or_volume_mounts_without_requires() {
    let s = shared();
    let fetched = s.app.get(&binding_path(&s.instance, &s.binding)).await;
    for field in ["syslog_drain_url", "route_service_url", "volume_mounts"] {
        assert!(fetched.body.get(field).is_none(), "{field}: {fetched:?}");
    }
}

#[tokio::test]
async fn rule_080_endpoints_have_a_host_and_non_empty_port_strings() {
    let s = shared();
    let fetched = s.app.get(&binding_path(&s.instance, &s.binding)).await;
    let endpoints = fetched.body["endpoints"].as_array().expect("endpoints");
    assert!(!endpoints.is_empty());
    for e in endpoints {
        assert!(e["host"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
        let ports = e["ports"].as_array().unwrap();
        assert!(!ports.is_empty(), "{e}");
        for p in ports {
            let p = p.as_str().unwrap();
            let ok = |x: &str| x.parse::<u16>().is_ok();
            assert!(
                ok(p) || p.split_once('-').is_some_and(|(a, b)| ok(a) && ok(b)),
                "{p}"
            );
        }
        if let Some(proto) = e.get("protocol") {
            assert!(["tcp", "udp", "all"].contains(&proto.as_str().unwrap()));
        }
    }
}

#[tokio::test]
async fn rule_082_a_rotation_makes_a_new_binding_with_fresh_credentials_and_the_old_one_keeps_working(
) {
    let s = shared();
    let catalog = s.app.get("/v2/catalog").await.body;
    let plan = catalog["services"][0]["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == PLAN_SMALL)
        .unwrap()
        .clone();
    assert_eq!(plan["binding_rotatable"], true, "{plan}");

    let old = new_id();
    let first = s.app.bind(&s.instance, &old, &bind_body()).await;
    assert_eq!(first.status, 201);
    let old_uri = first.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    // The rotation request may carry only the predecessor (the spec's table) or also the ids.
    let successor = new_id();
    let rotated = s
        .app
        .bind(
            &s.instance,
            &successor,
            &json!({"predecessor_binding_id": old}),
        )
        .await;
    assert_eq!(rotated.status, 201, "{rotated:?}");
    let new_uri = rotated.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_uri, old_uri, "fresh credentials");
    query_with(&new_uri).await.expect("the successor works");
    query_with(&old_uri)
        .await
        .expect("the predecessor still works");
    let third = new_id();
    let mut body = bind_body();
    body["predecessor_binding_id"] = json!(successor);
    assert_eq!(s.app.bind(&s.instance, &third, &body).await.status, 201);

    // Until the predecessor is unbound.
    unbind_ok(&s.instance, &old).await;
    assert!(query_with(&old_uri).await.is_err());
    query_with(&new_uri)
        .await
        .expect("the successor still works");
    // A predecessor that is gone, or of another instance, is refused.
    let refused = s
        .app
        .bind(
            &s.instance,
            &new_id(),
            &json!({"predecessor_binding_id": old}),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    unbind_ok(&s.instance, &successor).await;
    unbind_ok(&s.instance, &third).await;
}

#[tokio::test]
async fn rule_074_this_broker_needs_no_app_so_a_bind_without_app_guid_is_201_never_requires_app() {
    let s = shared();
    let binding = new_id();
    let answer = s
        .app
        .bind(
            &s.instance,
            &binding,
            &json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL}),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    unbind_ok(&s.instance, &binding).await;
}

/// `yyyy-mm-ddThh:mm:ss.sZ` with one or more fraction digits.
fn is_binding_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 22
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..b.len() - 1)
        && b[b.len() - 1] == b'Z'
}

#[tokio::test]
async fn rule_081_binding_metadata_expires_at_and_renew_before_follow_the_pattern_and_expired_credentials_are_revoked(
) {
    // Without a validity (the shared stack) bindings carry no expiry metadata.
    let s = shared();
    let fetched = s.app.get(&binding_path(&s.instance, &s.binding)).await;
    assert!(fetched.body.get("metadata").is_none(), "{fetched:?}");

    let app = crate::helpers::spawn_app_with(|s| {
        s.bindings.validity_secs = Some(4);
        s.bindings.renew_before_secs = Some(2);
    })
    .await;
    let id = provisioned(&app, json!({})).await;
    let binding = new_id();
    let bound = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    let expires = bound.body["metadata"]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    let renew = bound.body["metadata"]["renew_before"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(is_binding_timestamp(&expires), "{expires}");
    assert!(is_binding_timestamp(&renew), "{renew}");
    assert!(renew <= expires, "{renew} > {expires}");
    let fetched = app.get(&binding_path(&id, &binding)).await;
    assert_eq!(fetched.body["metadata"]["expires_at"], expires.as_str());
    let uri = bound.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    query_with(&uri).await.expect("valid before it expires");
    // A successor made by rotation expires later.
    let successor = app
        .bind(&id, &new_id(), &json!({"predecessor_binding_id": binding}))
        .await;
    assert_eq!(successor.status, 201, "{successor:?}");
    assert!(successor.body["metadata"]["expires_at"].as_str().unwrap() >= expires.as_str());

    // Once expired, the broker revokes the credentials and forgets the binding.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while query_with(&uri).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still valid after {expires}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (last, _) = app.wait_for_binding(&id, &binding, "").await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(app.get(&binding_path(&id, &binding)).await.status, 404);
    app.stop_all().await;
}
