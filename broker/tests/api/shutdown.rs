//! Graceful shutdown: SIGTERM lets the broker process finish, stop its journal and hand its
//! leases back, so the next broker takes the operation over at once rather than after the
//! lease expired.

use crate::helpers::{free_address, new_id, provision_body, spawn_services};
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = app
            .get(&format!("/v2/service_instances/{id}/last_operation"))
            .await;
        assert_eq!(last.body["state"], "in progress", "{last:?}");
        if last.body["description"]
            .as_str()
            .is_some_and(|d| d.contains(": "))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never reached the deployer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = app.terminate_broker_process().await;
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    let row = journal_rows(&app.database_path())
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap();
    assert_eq!(row.state, "in progress", "{row:?}");
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
