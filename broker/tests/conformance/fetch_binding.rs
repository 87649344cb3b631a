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

/// Rules 87 (404 while the bind runs), 31 and 94 (repeats while in progress answer 202 with the
/// same operation) and 41 (`Retry-After` on binding last_operation), made deterministic by
/// pausing the instance's server (SIGSTOP: it hangs, so the SPI cannot create or drop the role,
/// while the deployer still sees it up), so both operations stay in progress.
#[tokio::test]
async fn rule_087_094_binding_operations_in_progress_are_404_on_get_and_repeats_answer_202_with_the_same_operation(
) {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = provisioned(&app, json!({})).await;
    let deployment = app.deployment_of(&id);
    app.pause_server_of(&deployment);
    let binding = new_id();
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let put = format!("{path}?accepts_incomplete=true");
    let started = send(&app, Method::PUT, &put, Some(&bind_body())).await;
    assert_eq!(started.status, 202, "{started:?}");
    assert_eq!(app.get(&path).await.status, 404);
    let polled = app.get(&format!("{path}/last_operation")).await;
    assert_eq!(polled.status, 200);
    assert_eq!(polled.body["state"], "in progress", "{polled:?}");
    let retry_after = polled.retry_after.clone().expect("Retry-After");
    assert!(retry_after.parse::<u64>().is_ok(), "{retry_after}");
    let repeat = send(&app, Method::PUT, &put, Some(&bind_body())).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), started.operation());
    let mut other = bind_body();
    other["parameters"] = json!({"x": 1});
    assert_eq!(
        send(&app, Method::PUT, &put, Some(&other)).await.status,
        409
    );

    let delete = format!(
        "{path}?accepts_incomplete=true&service_id={}&plan_id={}",
        crate::helpers::SERVICE_ID,
        crate::helpers::PLAN_SMALL
    );
    let first = send(&app, Method::DELETE, &delete, None).await;
    assert_eq!(first.status, 202, "{first:?}");
    let repeat = send(&app, Method::DELETE, &delete, None).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), first.operation());
    let polled = app.get(&format!("{path}/last_operation")).await;
    assert_eq!(polled.body["state"], "in progress", "{polled:?}");
    assert!(polled.retry_after.is_some());
    // The bind was halted by the unbind.
    let bind_op = app
        .get(&format!(
            "{path}/last_operation?operation={}",
            started.operation()
        ))
        .await;
    assert_eq!(bind_op.body["state"], "failed", "{bind_op:?}");
    app.resume_server_of(&deployment);
    app.stop_all().await;
}
