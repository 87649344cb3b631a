//! Faults of the services behind the broker, with the real servers stopped and started again
//! on their addresses: the journal retries a deployer or SPI that is down or answers 5xx, with
//! backoff, and finishes the operation once it is back; past the plan's maximum polling
//! duration the operation fails saying which callee did not answer.

use crate::helpers::{new_id, spawn_services, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

/// Long enough for several retries (200 ms, 400 ms, 800 ms, …).
const OUTAGE: Duration = Duration::from_millis(2_000);

fn keyvalue(extra: Value) -> Value {
    let mut body = json!({
        "service_id": spi_keyvalue::offering::SERVICE_ID,
        "plan_id": spi_keyvalue::offering::PLAN_SMALL_ID,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn stack(max_operation_secs: u64) -> TestApp {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.worker.sync_timeout_ms = 300;
    settings.worker.max_operation_secs = max_operation_secs;
    app.start_broker(settings).await;
    app
}

async fn provisioned(app: &TestApp) -> String {
    let id = new_id();
    let answer = app
        .provision(
            &id,
            &keyvalue(json!({"organization_guid": "o", "space_guid": "s"})),
            true,
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    id
}

async fn still_in_progress(app: &TestApp, path: &str) {
    tokio::time::sleep(OUTAGE).await;
    let last = app.get(path).await;
    assert_eq!(last.body["state"], "in progress", "{last:?}");
}

/// PUT or DELETE of a binding with `accepts_incomplete=true`.
async fn binding_request(
    app: &TestApp,
    method: reqwest::Method,
    id: &str,
    binding: &str,
) -> crate::helpers::Answer {
    let path = format!(
        "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true&service_id={}&plan_id={}",
        spi_keyvalue::offering::SERVICE_ID,
        spi_keyvalue::offering::PLAN_SMALL_ID
    );
    let mut request = app.request(method.clone(), &path);
    if method == reqwest::Method::PUT {
        request = request.json(&keyvalue(json!({})));
    }
    crate::helpers::Answer::from(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_deployer_down_during_a_provision_is_retried_and_the_provision_completes_once_it_is_back()
{
    let mut app = stack(600).await;
    app.stop_deployer().await;
    let id = new_id();
    let answer = app
        .provision(
            &id,
            &keyvalue(json!({"organization_guid": "o", "space_guid": "s"})),
            true,
        )
        .await;
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
    let answer = app
        .provision(
            &id,
            &keyvalue(json!({"organization_guid": "o", "space_guid": "s"})),
            true,
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(
        last["description"],
        "deployer did not answer within the maximum polling duration of 3 s; the operation failed"
    );

    // Back up: the platform's DELETE cleans up, and nothing was deployed.
    app.restart_deployer().await;
    let gone = app
        .request(
            reqwest::Method::DELETE,
            &format!(
                "/v2/service_instances/{id}?accepts_incomplete=true&service_id={}&plan_id={}",
                spi_keyvalue::offering::SERVICE_ID,
                spi_keyvalue::offering::PLAN_SMALL_ID
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 202);
    let (last, _) = app.wait_for_instance(&id, "").await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

#[tokio::test]
async fn an_spi_answering_5xx_then_down_during_a_bind_is_retried_and_the_bind_completes() {
    let mut app = stack(600).await;
    let id = provisioned(&app).await;
    // The deployment's Redis dies: the SPI cannot create the binding user and answers 503.
    let name = crate::process::instance_rows(&app.database_path())
        .into_iter()
        .find(|i| i.id == id)
        .and_then(|i| i.deployment_name)
        .unwrap();
    let pid_file = app
        .env
        .deployer_data
        .path()
        .join("deployments")
        .join(&name)
        .join("redis.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    deployer::sys::send_signal(pid, deployer::sys::SIGKILL).unwrap();

    let binding = new_id();
    let answer = binding_request(&app, reqwest::Method::PUT, &id, &binding).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let last_operation =
        format!("/v2/service_instances/{id}/service_bindings/{binding}/last_operation");
    still_in_progress(&app, &last_operation).await;
    // Then the SPI itself goes down.
    app.stop_spi_keyvalue().await;
    still_in_progress(&app, &last_operation).await;

    // The deployer brings Redis back when it starts, and the SPI returns.
    app.stop_deployer().await;
    app.restart_deployer().await;
    app.restart_spi_keyvalue().await;
    let (last, seen) = app
        .wait_for_binding(&id, &binding, &answer.operation())
        .await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert!(fetched.body["credentials"]["password"].is_string());
    app.stop_all().await;
}

#[tokio::test]
async fn an_spi_down_during_an_unbind_is_retried_and_the_unbind_completes_once_it_is_back() {
    let mut app = stack(600).await;
    let id = provisioned(&app).await;
    let binding = new_id();
    let bound = binding_request(&app, reqwest::Method::PUT, &id, &binding).await;
    assert_eq!(bound.status, 201, "{bound:?}");

    app.stop_spi_keyvalue().await;
    let answer = binding_request(&app, reqwest::Method::DELETE, &id, &binding).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let last_operation =
        format!("/v2/service_instances/{id}/service_bindings/{binding}/last_operation");
    still_in_progress(&app, &last_operation).await;

    app.restart_spi_keyvalue().await;
    let (last, seen) = app
        .wait_for_binding(&id, &binding, &answer.operation())
        .await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 404, "the binding is gone: {fetched:?}");
    app.stop_all().await;
}
