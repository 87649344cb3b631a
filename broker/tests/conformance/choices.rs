//! Choices where the spec is ambiguous or silent (`docs/conformance.md`): failed and
//! timed-out operations (`maximum_polling_duration`), orphan mitigation, binding to an
//! instance that is not there or not ready.

use crate::helpers::{bind_body, new_id, provision_body, spawn_app_with};
use crate::support::{assert_concurrency_error, shared};
use serde_json::json;

#[tokio::test]
async fn rule_040_a_failed_provision_carries_neither_instance_usable_nor_update_repeatable() {
    let app = spawn_app_with(|s| s.worker.max_operation_secs = 0).await;
    let id = new_id();
    let started = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(started.status, 202, "{started:?}");
    let (last, _) = app.wait_for_instance(&id, &started.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert!(last.get("instance_usable").is_none(), "{last}");
    assert!(last.get("update_repeatable").is_none(), "{last}");
    app.stop_all().await;
}

#[tokio::test]
async fn an_operation_past_its_maximum_polling_duration_fails_and_a_delete_then_cleans_up_fully() {
    // No time at all: the provision's deployment starts, then the operation is out of time.
    let mut app = spawn_app_with(|s| s.worker.max_operation_secs = 0).await;
    let id = new_id();
    let started = app.provision(&id, &provision_body(json!({})), true).await;
    let (last, _) = app.wait_for_instance(&id, &started.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("maximum polling duration of 0 s"),
        "{description}"
    );
    // The instance is not there for the platform, which orphan-mitigates with a DELETE.
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}")).await.status,
        404
    );
    // The same broker with the default time limits.
    app.stop_broker().await;
    let settings = app.broker_settings();
    app.start_broker(settings).await;
    let gone = app.deprovision(&id).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(app.deployments().await.is_empty(), "the deployment is gone");
    assert_eq!(app.deprovision(&id).await.status, 410);
    // The id can be provisioned again from scratch.
    let again = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(again.status, 202, "{again:?}");
    let (last, _) = app.wait_for_instance(&id, &again.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    app.stop_all().await;
}

#[tokio::test]
async fn binding_to_an_unknown_instance_is_404_and_to_one_not_ready_or_being_deleted_is_422() {
    let s = shared();
    let unknown = s.app.bind(&new_id(), &new_id(), &bind_body()).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    assert_concurrency_error(&s.app.bind(&id, &new_id(), &bind_body()).await);
    s.app.wait_for_instance(&id, &started.operation()).await;
    let gone = s.app.deprovision(&id).await;
    let during = s.app.bind(&id, &new_id(), &bind_body()).await;
    assert!(
        during.status == 422 || during.status == 404,
        "being deleted (422) or deleted already (404): {during:?}"
    );
    s.app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(s.app.bind(&id, &new_id(), &bind_body()).await.status, 404);
}

#[tokio::test]
async fn last_operation_treats_an_unknown_operation_value_as_a_hint() {
    let s = shared();
    let answer = s
        .app
        .get(&format!(
            "/v2/service_instances/{}/last_operation?operation=made-up-by-the-platform",
            s.instance
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["state"], "succeeded");
}
