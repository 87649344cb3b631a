//! §8 "Instance last_operation": rules 35-42.

use crate::helpers::{new_id, provision_body};
use crate::support::{provisioned, shared};
use serde_json::json;

#[tokio::test]
async fn rule_035_last_operation_of_a_known_operation_is_200_with_one_of_the_three_states() {
    let s = shared();
    let answer = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/last_operation",
            s.instance
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["state"], "succeeded", "{answer:?}");
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    let path = format!("/v2/service_instances/{id}/last_operation");
    let polled = s.app.get(&path).await;
    assert_eq!(polled.status, 200);
    assert!(
        ["in progress", "succeeded", "failed"].contains(&polled.body["state"].as_str().unwrap()),
        "{polled:?}"
    );
    let (last, _) = s.app.wait_for_instance(&id, &started.operation()).await;
    assert_eq!(last["state"], "succeeded");
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_036_last_operation_of_an_unknown_instance_is_404() {
    let s = shared();
    let answer = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/last_operation",
            new_id()
        ))
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
}

#[tokio::test]
async fn rule_037_410_is_never_answered_while_a_create_or_update_is_polled() {
    let s = shared();
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    // wait_for_instance asserts 200 on every poll, from the first to the terminal state.
    let (last, _) = s.app.wait_for_instance(&id, &started.operation()).await;
    assert_eq!(last["state"], "succeeded");
    let gone = s.app.deprovision(&id).await;
    let (last, _) = s.app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(
        last["state"], "succeeded",
        "after an async deprovision: 200 succeeded"
    );
}

#[tokio::test]
async fn rule_038_the_issued_operation_is_accepted_percent_encoded_and_reported() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let gone = s.app.deprovision(&id).await;
    let operation = gone.operation();
    // Every character percent-encoded, as a platform may send it.
    let encoded: String = operation.bytes().map(|b| format!("%{b:02X}")).collect();
    let answer = s
        .app
        .get(&format!(
            "/v2/service_instances/{id}/last_operation?operation={encoded}"
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body["description"]
            .as_str()
            .is_some_and(|d| d.contains("deprovision") || d.contains("delet")),
        "the deprovision is reported: {answer:?}"
    );
    s.app.wait_for_instance(&id, &encoded).await;
}

#[tokio::test]
async fn rule_039_a_last_operation_description_is_never_empty() {
    let s = shared();
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    let (last, seen) = s.app.wait_for_instance(&id, &started.operation()).await;
    assert!(seen.iter().all(|d| !d.is_empty()), "{seen:?}");
    assert!(last["description"].as_str().is_some_and(|d| !d.is_empty()));
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_041_retry_after_is_a_duration_in_seconds() {
    let s = shared();
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    let mut seen = None;
    for _ in 0..50 {
        let answer = s
            .app
            .get(&format!("/v2/service_instances/{id}/last_operation"))
            .await;
        if answer.body["state"] == "in progress" {
            seen = answer.retry_after;
            break;
        }
    }
    let retry_after = seen.expect("a provision is in progress for a while");
    assert!(retry_after.parse::<u64>().is_ok(), "{retry_after}");
    let (_, _) = s.app.wait_for_instance(&id, &started.operation()).await;
    // Binding last_operation too: an unbind running asynchronously is covered by rule 89.
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_042_a_terminal_state_is_returned_again_on_an_immediate_repeat_poll() {
    let s = shared();
    let path = format!("/v2/service_instances/{}/last_operation", s.instance);
    let first = s.app.get(&path).await;
    let again = s.app.get(&path).await;
    assert_eq!(first.body, again.body);
    assert_eq!(again.body["state"], "succeeded");
}
