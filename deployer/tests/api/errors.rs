//! Refusals: unknown deployments and tasks, malformed specs, all as the error envelope with
//! the request id.

use crate::helpers::*;
use common::client::{CallContext, ClientError};
use common::deployer::Engine;
use common::REQUEST_ID_HEADER;
use std::time::Duration;

fn expect_status(result: ClientError, status: u16, code: &str) -> common::envelope::ErrorEnvelope {
    match result {
        ClientError::Status {
            status: s,
            envelope,
            ..
        } => {
            assert_eq!(s, status, "{envelope:?}");
            assert_eq!(envelope.error, code);
            envelope
        }
        other => panic!("expected {status}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_deployment_is_404_with_the_envelope_and_request_id() {
    let app = spawn_app().await;
    let ctx = CallContext::with_request_id("req-unknown-deployment");
    let err = app.client.get_deployment("nope", &ctx).await.unwrap_err();
    let envelope = expect_status(err, 404, "NotFound");
    assert!(envelope.description.contains("nope"), "{envelope:?}");
    assert_eq!(
        envelope.request_id.as_deref(),
        Some("req-unknown-deployment")
    );

    let err = app
        .client
        .delete_deployment("nope", &ctx)
        .await
        .unwrap_err();
    expect_status(err, 404, "NotFound");
}

#[tokio::test]
async fn an_unknown_task_is_404_with_the_envelope() {
    let app = spawn_app().await;
    let err = app
        .client
        .get_task("00000000-0000-0000-0000-000000000000", &ctx())
        .await
        .unwrap_err();
    let envelope = expect_status(err, 404, "NotFound");
    assert!(envelope.request_id.is_some());
}

#[tokio::test]
async fn a_spec_for_another_name_or_with_a_managed_setting_is_400() {
    let app = spawn_app().await;
    bad_specs_are_refused(&app.app, &app.env).await;
}

/// The same refusals from the docker backend (skipped without an engine).
#[tokio::test]
async fn the_docker_backend_refuses_the_same_specs_with_400() {
    let Some(env) = TestEnv::docker() else {
        return;
    };
    let app = env.start().await;
    bad_specs_are_refused(&app, &env).await;
}

async fn bad_specs_are_refused(app: &RunningApp, env: &TestEnv) {
    let mut mismatched = spec(Engine::Postgresql, "pg-a", &password(), &[]);
    let req = reqwest_client_for(env)
        .put(format!("{}/deployer/v1/deployments/pg-b", app.base_url))
        .json(&mismatched);
    let response = req.send().await.unwrap();
    assert_eq!(response.status(), 400);

    mismatched.name = "Not_A_Name".into();
    let err = app
        .client
        .put_deployment(&mismatched, &ctx())
        .await
        .unwrap_err();
    let envelope = expect_status(err, 400, "BadRequest");
    assert!(envelope.description.contains("Not_A_Name"), "{envelope:?}");

    let managed = spec(Engine::Postgresql, "pg-c", &password(), &[("port", "5432")]);
    let err = app
        .client
        .put_deployment(&managed, &ctx())
        .await
        .unwrap_err();
    let envelope = expect_status(err, 400, "BadRequest");
    assert!(envelope.description.contains("port"), "{envelope:?}");
    // Nothing was accepted.
    assert!(app
        .client
        .list_deployments(&ctx())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_a_spec_is_400_and_an_unknown_path_404_both_with_the_envelope() {
    let app = spawn_app().await;
    let response = reqwest_client(&app)
        .put(format!("{}/deployer/v1/deployments/pg-x", app.base_url))
        .header("content-type", "application/json")
        .header(REQUEST_ID_HEADER, "req-bad-body")
        .body("{\"name\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers().get(REQUEST_ID_HEADER).unwrap(),
        "req-bad-body"
    );
    let envelope: common::envelope::ErrorEnvelope = response.json().await.unwrap();
    assert_eq!(envelope.error, "BadRequest");
    assert_eq!(envelope.request_id.as_deref(), Some("req-bad-body"));

    let response = reqwest_client(&app)
        .get(format!("{}/deployer/v2/anything", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().get(REQUEST_ID_HEADER).is_some());
    let envelope: common::envelope::ErrorEnvelope = response.json().await.unwrap();
    assert_eq!(envelope.error, "NotFound");
}

fn reqwest_client(app: &TestApp) -> reqwest::Client {
    reqwest_client_for(&app.env)
}

fn reqwest_client_for(env: &TestEnv) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(env.client_tls().client_config().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
