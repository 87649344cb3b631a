//! §8 "Fetch binding and binding last_operation": rules 86-90.

use crate::helpers::{bind_body, new_id, query_with, spawn_app_with};
use crate::support::{provisioned, send, shared};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn rule_086_get_binding_works_right_after_the_bind_succeeded() {
    let s = shared();
    let binding = new_id();
    assert_eq!(
        s.app.bind(&s.instance, &binding, &bind_body()).await.status,
        201
    );
    let path = format!(
        "/v2/service_instances/{}/service_bindings/{binding}",
        s.instance
    );
    let fetched = s.app.get(&path).await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert!(fetched.body["credentials"]["uri"].is_string());
    assert_eq!(s.app.unbind(&s.instance, &binding).await.status, 200);
}

#[tokio::test]
async fn rule_087_get_of_an_unknown_binding_or_one_of_another_instance_is_404() {
    let s = shared();
    let unknown = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/service_bindings/{}",
            s.instance,
            new_id()
        ))
        .await;
    assert_eq!(unknown.status, 404);
    let foreign = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/service_bindings/{}",
            new_id(),
            s.binding
        ))
        .await;
    assert_eq!(foreign.status, 404);
}

/// Rules 87 (404 while in progress), 88 (credentials after an async bind), 89 and 90.
#[tokio::test]
async fn rule_088_089_090_an_async_bind_is_polled_then_fetched_with_credentials() {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = provisioned(&app, json!({})).await;
    let binding = new_id();
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let started = send(
        &app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(started.status, 202, "{started:?}");
    let early = app.get(&path).await;
    assert!(early.status == 404 || early.status == 200, "{early:?}");
    let (last, _) = app
        .wait_for_binding(&id, &binding, &started.operation())
        .await;
    assert!(
        ["succeeded"].contains(&last["state"].as_str().unwrap()),
        "{last}"
    );
    let fetched = app.get(&path).await;
    assert_eq!(fetched.status, 200);
    query_with(fetched.body["credentials"]["uri"].as_str().unwrap())
        .await
        .expect("the credentials of an async bind work");
    // Binding last_operation: unknown binding 404.
    let unknown = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{}/last_operation",
            new_id()
        ))
        .await;
    assert_eq!(unknown.status, 404);
    // An async unbind: polled to succeeded (200, not 410), then the binding is gone.
    let unbind = send(
        &app,
        Method::DELETE,
        &format!(
            "{path}?accepts_incomplete=true&service_id={}&plan_id={}",
            crate::helpers::SERVICE_ID,
            crate::helpers::PLAN_SMALL
        ),
        None,
    )
    .await;
    assert_eq!(unbind.status, 202, "{unbind:?}");
    let (last, _) = app
        .wait_for_binding(&id, &binding, &unbind.operation())
        .await;
    assert_eq!(last["state"], "succeeded");
    assert_eq!(app.get(&path).await.status, 404);
    app.stop_all().await;
}
