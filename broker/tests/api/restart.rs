//! The journal survives the broker: an operation left in progress by a stopped broker is taken
//! over by the next one once its lease expires, and resumes at the step it had reached.

use crate::helpers::{bind_body, new_id, provision_body, query_with, spawn_app_with};
use serde_json::json;

const SHORT_LEASE_MS: u64 = 1_000;

#[tokio::test]
async fn a_provision_interrupted_by_a_broker_stop_is_finished_by_the_next_broker() {
    let mut app = spawn_app_with(|s| s.worker.lease_ms = SHORT_LEASE_MS).await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();

    // Let it reach the deployer, then stop the broker mid-operation.
    app.wait_until_deploying(&id).await;
    app.stop_broker().await;

    let mut settings = app.broker_settings();
    settings.worker.lease_ms = SHORT_LEASE_MS;
    app.start_broker(settings).await;
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");

    let binding = new_id();
    let bound = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    query_with(bound.body["credentials"]["uri"].as_str().unwrap())
        .await
        .expect("the binding's URI works");
    app.stop_all().await;
}
