//! Faults of the services behind the broker, with the real servers stopped and started again
//! on their addresses: the journal retries a deployer or SPI that is down or answers 5xx, with
//! backoff, and finishes the operation once it is back; past the plan's maximum polling
//! duration the operation fails saying which callee did not answer.

use crate::helpers::{
    keyvalue_bind_body, keyvalue_provision_body, new_id, spawn_services, Answer, TestApp,
};
use std::time::Duration;

/// Long enough for several retries (200 ms, 400 ms, 800 ms, …).
const OUTAGE: Duration = Duration::from_millis(2_000);

async fn stack(max_operation_secs: u64) -> TestApp {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.worker.sync_timeout_ms = 300;
    settings.worker.max_operation_secs = max_operation_secs;
    app.start_broker(settings).await;
    app
}

async fn still_in_progress(app: &TestApp, path: &str) {
    tokio::time::sleep(OUTAGE).await;
    let last = app.get(path).await;
    assert_eq!(last.body["state"], "in progress", "{last:?}");
}

/// Waits until the binding operation succeeded; then the binding as a GET shows it.
async fn binding_after(app: &TestApp, id: &str, binding: &str, operation: &str) -> Answer {
    let (last, seen) = app.wait_for_binding(id, binding, operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    app.get(&format!(
        "/v2/service_instances/{id}/service_bindings/{binding}"
    ))
    .await
}

#[tokio::test]
async fn a_deployer_down_during_a_provision_is_retried_and_the_provision_completes_once_it_is_back()
{
    let mut app = stack(600).await;
    app.stop_deployer().await;
    let id = new_id();
    let answer = app.provision(&id, &keyvalue_provision_body(), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    still_in_progress(&app, &format!("/v2/service_instances/{id}/last_operation")).await;

    app.restart_deployer().await;
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(app.deployments().await.len(), 1);
    app.stop_all().await;
}

#[tokio::test]
async fn a_deployer_down_past_the_maximum_polling_duration_fails_the_provision_saying_so() {
    let mut app = stack(3).await;
    app.stop_deployer().await;
    let id = new_id();
    let answer = app.provision(&id, &keyvalue_provision_body(), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(
        last["description"],
        "deployer did not answer within the maximum polling duration of 3 s; the operation failed"
    );

    // Back up: the platform's DELETE cleans up, and nothing was deployed.
    app.restart_deployer().await;
    let gone = app.delete_keyvalue(&id, None).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = app.wait_for_instance(&id, "").await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

#[tokio::test]
async fn an_spi_answering_5xx_then_down_during_a_bind_is_retried_and_the_bind_completes() {
    let mut app = stack(600).await;
    let id = app.provision_keyvalue().await;
    // The deployment's Redis hangs: the SPI cannot create the binding user and answers 503.
    // (A Redis that died would be restarted by the deployer, and a bind to it refused at once
    // while it is down.)
    let deployment = app.deployment_of(&id);
    app.pause_server_of(&deployment);

    let binding = new_id();
    let answer = app
        .bind_incomplete(&id, &binding, &keyvalue_bind_body())
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let last_operation =
        format!("/v2/service_instances/{id}/service_bindings/{binding}/last_operation");
    still_in_progress(&app, &last_operation).await;
    // Then the SPI itself goes down.
    app.stop_spi_keyvalue().await;
    still_in_progress(&app, &last_operation).await;

    // Redis answers again, and the SPI returns.
    app.resume_server_of(&deployment);
    app.restart_spi_keyvalue().await;
    let fetched = binding_after(&app, &id, &binding, &answer.operation()).await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert!(fetched.body["credentials"]["password"].is_string());
    app.stop_all().await;
}

#[tokio::test]
async fn an_spi_down_during_an_unbind_is_retried_and_the_unbind_completes_once_it_is_back() {
    let mut app = stack(600).await;
    let id = app.provision_keyvalue().await;
    let binding = new_id();
    let bound = app.bind(&id, &binding, &keyvalue_bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");

    app.stop_spi_keyvalue().await;
    let answer = app.delete_keyvalue(&id, Some(&binding)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let last_operation =
        format!("/v2/service_instances/{id}/service_bindings/{binding}/last_operation");
    still_in_progress(&app, &last_operation).await;

    app.restart_spi_keyvalue().await;
    let fetched = binding_after(&app, &id, &binding, &answer.operation()).await;
    assert_eq!(fetched.status, 404, "the binding is gone: {fetched:?}");
    app.stop_all().await;
}
