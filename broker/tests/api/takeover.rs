//! What a failing machine leaves behind: a broker killed mid-operation and restarted with the
//! same identity takes its own leases back at once (no waiting for them to expire), and a
//! callee that refuses the TLS handshake on a certificate fails the operation at once instead
//! of being retried until the deadline.

use crate::helpers::{free_address, new_id, provision_body, spawn_app_with, spawn_services};
use serde_json::json;

/// Far longer than the test waits for the operation (180 s): a resumption within it cannot
/// come from lease expiry.
const LONG_LEASE_MS: u64 = 600_000;

#[tokio::test]
async fn a_broker_killed_mid_operation_and_restarted_with_the_same_identity_resumes_it_at_once() {
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.worker.lease_ms = LONG_LEASE_MS;
    settings.worker.identity = Some("replica-a".into());
    app.start_broker_process(&settings).await;

    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    app.wait_until_deploying(&id).await;
    app.kill_broker_process().await;

    app.start_broker_process(&settings).await;
    // Waits at most 180 s, far less than the lease the killed broker held.
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let log = std::fs::read_to_string(app.log_path()).unwrap();
    assert!(
        log.contains("took back the leases of this broker identity's previous run"),
        "{log}"
    );
    app.stop_all().await;
}

#[tokio::test]
async fn a_deployer_refusing_the_tls_handshake_on_a_certificate_fails_the_operation_at_once() {
    let mut app = spawn_app_with(|s| {
        // Retried until this deadline the test's wait (180 s) would run out first.
        s.worker.max_operation_secs = 1_800;
    })
    .await;
    // The deployer comes back with a certificate of another CA: the broker refuses it.
    app.stop_deployer().await;
    let foreign = tempfile::tempdir().unwrap();
    common::certs::write_bundle(
        foreign.path(),
        &["deployer"],
        &common::certs::loopback_hosts(),
    )
    .unwrap();
    for file in ["deployer.pem", "deployer-key.pem"] {
        std::fs::copy(foreign.path().join(file), app.env.certs.path().join(file)).unwrap();
    }
    app.restart_deployer().await;

    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last} after {seen:?}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description
            .starts_with("deployer cannot be called: the TLS handshake failed on a certificate"),
        "{description}"
    );
    app.stop_all().await;
}
