//! §8 "Fetch instance": rules 55-58.

use crate::helpers::{new_id, provision_body, PLAN_MEDIUM, PLAN_SMALL, SERVICE_ID};
use crate::support::{
    assert_concurrency_error, fetch_instance, provisioned, shared, update, update_body,
};
use serde_json::json;

#[tokio::test]
async fn rule_055_get_instance_works_right_after_the_provision_succeeded() {
    let s = shared();
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    let (last, _) = s.app.wait_for_instance(&id, &started.operation()).await;
    assert_eq!(last["state"], "succeeded");
    let fetched = fetch_instance(&s.app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_SMALL);
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_056_get_of_an_unknown_instance_or_one_being_provisioned_is_404() {
    let s = shared();
    assert_eq!(
        s.app
            .get(&format!("/v2/service_instances/{}", new_id()))
            .await
            .status,
        404
    );
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    let fetched = s.app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    s.app.wait_for_instance(&id, &started.operation()).await;
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_057_get_during_an_update_is_422_concurrency_error() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let running = update(&s.app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    assert_eq!(running.status, 202);
    let fetched = s.app.get(&format!("/v2/service_instances/{id}")).await;
    assert_concurrency_error(&fetched);
    s.app.wait_for_instance(&id, &running.operation()).await;
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_058_get_instance_reflects_the_current_plan_parameters_and_metadata() {
    let s = shared();
    let id = provisioned(&s.app, json!({"max_connections": 40})).await;
    let fetched = fetch_instance(&s.app, &id).await;
    assert_eq!(fetched["service_id"], SERVICE_ID);
    assert_eq!(fetched["plan_id"], PLAN_SMALL);
    assert_eq!(fetched["parameters"], json!({"max_connections": 40}));
    assert_eq!(fetched["maintenance_info"]["version"], "15.0.0");
    assert_eq!(fetched["metadata"]["labels"]["service"], "postgresql");
    assert!(fetched["dashboard_url"].is_string());
    let changed = update(
        &s.app,
        &id,
        &update_body(PLAN_MEDIUM, json!({"work_mem_mb": 16})),
        true,
    )
    .await;
    let (last, _) = s.app.wait_for_instance(&id, &changed.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = fetch_instance(&s.app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_MEDIUM);
    assert_eq!(
        fetched["parameters"],
        json!({"max_connections": 40, "work_mem_mb": 16})
    );
    assert_eq!(fetched["metadata"]["labels"]["plan"], "medium");
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}
