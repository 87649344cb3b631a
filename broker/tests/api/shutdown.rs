//! Graceful shutdown: SIGTERM lets the broker process finish, stop its journal and hand its
//! leases back, so the next broker takes the operation over at once rather than after the
//! lease expired.

use crate::helpers::{
    free_address, keyvalue_bind_body, new_id, provision_body, spawn_services, Answer,
};
use crate::process::journal_rows;
use serde_json::json;
use std::time::{Duration, Instant};

/// Far longer than the test waits: a takeover within it cannot come from lease expiry.
const LONG_LEASE_MS: u64 = 120_000;

#[tokio::test]
async fn sigterm_hands_back_the_lease_of_a_running_operation_and_the_next_broker_finishes_it() {
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.worker.lease_ms = LONG_LEASE_MS;
    app.start_broker_process(&settings).await;

    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    // Wait until the deployer works on it (PostgreSQL takes seconds to come up).
    app.wait_until_deploying(&id).await;

    let status = app.terminate_broker_process().await;
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    let row = journal_rows(&app.database_path())
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap();
    assert_eq!(row.state.as_str(), "in progress", "{row:?}");
    assert_eq!(row.lease_owner, None, "the lease was handed back: {row:?}");
    assert_eq!(row.lease_expires_ms, None, "{row:?}");
    let log = std::fs::read_to_string(app.log_path()).unwrap();
    assert!(log.contains("leases handed back"), "{log}");

    let restarted = Instant::now();
    app.start_broker_process(&settings).await;
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    assert!(
        restarted.elapsed() < Duration::from_millis(LONG_LEASE_MS),
        "taken over without waiting for the lease"
    );
    let row = journal_rows(&app.database_path())
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap();
    assert_eq!(row.attempts, 2, "claimed once by each broker: {row:?}");
    app.stop_all().await;
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_gets_its_answer_and_its_operation_is_handed_on() {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.worker.lease_ms = LONG_LEASE_MS;
    // The bind request waits this long for its operation, within the shutdown timeout (5 s).
    settings.worker.sync_timeout_ms = 3_000;
    app.start_broker_process(&settings).await;
    let id = app.provision_keyvalue().await;
    // With its Redis hanging the SPI cannot create the binding user: the bind keeps retrying.
    let deployment = app.deployment_of(&id);
    app.pause_server_of(&deployment);

    let binding = new_id();
    let request = app
        .request(
            reqwest::Method::PUT,
            &format!(
                "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true"
            ),
        )
        .json(&keyvalue_bind_body())
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = app.terminate_broker_process().await;
    assert!(status.success(), "{status:?}");
    let answer = Answer::from(in_flight.await.unwrap().expect("the request was answered")).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    let row = journal_rows(&app.database_path())
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap();
    assert_eq!(
        (row.state.as_str(), row.lease_owner.as_deref()),
        ("in progress", None)
    );

    // Redis answers again; the next broker finishes the bind.
    app.resume_server_of(&deployment);
    app.start_broker_process(&settings).await;
    let (last, seen) = app.wait_for_binding(&id, &binding, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    app.stop_all().await;
}
