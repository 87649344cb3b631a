//! §8 "Async semantics": rules 29-34.

use crate::helpers::{bind_body, new_id, provision_body, spawn_app_with, Answer, PLAN_MEDIUM};
use crate::support::{
    assert_422, assert_concurrency_error, fetch_instance, provisioned, send, shared, update,
    update_body,
};
use common::osb::codes;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn rule_029_instance_operations_without_accepts_incomplete_are_422_async_required() {
    let s = shared();
    let app = &s.app;
    let id = new_id();
    for flag in ["", "?accepts_incomplete=false", "?accepts_incomplete="] {
        let answer = send(
            app,
            Method::PUT,
            &format!("/v2/service_instances/{id}{flag}"),
            Some(&provision_body(json!({}))),
        )
        .await;
        assert_422(&answer, codes::ASYNC_REQUIRED);
    }
    let answer = update(
        app,
        &s.instance,
        &update_body(PLAN_MEDIUM, json!({})),
        false,
    )
    .await;
    assert_422(&answer, codes::ASYNC_REQUIRED);
    let answer = send(
        app,
        Method::DELETE,
        &format!(
            "/v2/service_instances/{}?service_id={}&plan_id={}",
            s.instance,
            crate::helpers::SERVICE_ID,
            crate::helpers::PLAN_SMALL
        ),
        None,
    )
    .await;
    assert_422(&answer, codes::ASYNC_REQUIRED);
    // Nothing was created, changed or deleted.
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}")).await.status,
        404
    );
    assert_eq!(
        fetch_instance(app, &s.instance).await["plan_id"],
        crate::helpers::PLAN_SMALL
    );
}

#[tokio::test]
async fn rule_029_a_bind_that_cannot_finish_synchronously_is_422_async_required_and_undone() {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = provisioned(&app, json!({})).await;
    let binding = new_id();
    let answer = app.bind(&id, &binding, &bind_body()).await;
    assert_422(&answer, codes::ASYNC_REQUIRED);
    let (last, _) = app.wait_for_binding(&id, &binding, "").await;
    assert_eq!(
        last["state"], "succeeded",
        "the undoing unbind ends: {last}"
    );
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    app.stop_all().await;
}

#[tokio::test]
async fn rule_030_an_operation_run_asynchronously_answers_202() {
    let s = shared();
    let app = &s.app;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let deprovision = app.deprovision(&id).await;
    assert_eq!(deprovision.status, 202, "{deprovision:?}");
    let (last, _) = app.wait_for_instance(&id, &deprovision.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

#[tokio::test]
async fn rule_031_repeating_an_identical_put_patch_or_delete_in_progress_answers_202_with_the_same_operation(
) {
    let s = shared();
    let app = &s.app;
    let id = new_id();
    let body = provision_body(json!({"max_connections": 30}));
    let first = app.provision(&id, &body, true).await;
    assert_eq!(first.status, 202, "{first:?}");
    let repeat = app.provision(&id, &body, true).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), first.operation());
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let change = update_body(PLAN_MEDIUM, json!({}));
    let first = update(app, &id, &change, true).await;
    assert_eq!(first.status, 202, "{first:?}");
    let repeat = update(app, &id, &change, true).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), first.operation());
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let first = app.deprovision(&id).await;
    assert_eq!(first.status, 202, "{first:?}");
    let repeat = app.deprovision(&id).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), first.operation());
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

#[tokio::test]
async fn rule_032_every_operation_string_is_non_empty_and_at_most_10000_characters() {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = new_id();
    let mut operations = vec![];
    let provision = app.provision(&id, &provision_body(json!({})), true).await;
    operations.push(provision.operation());
    let (last, _) = app.wait_for_instance(&id, &provision.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let binding = new_id();
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let bind = send(
        &app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(bind.status, 202, "{bind:?}");
    operations.push(bind.operation());
    let (last, _) = app.wait_for_binding(&id, &binding, &bind.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let unbind = send(
        &app,
        Method::DELETE,
        &format!(
            "{path}?accepts_incomplete=true&service_id={}&plan_id={}",
            crate::helpers::SERVICE_ID,
            crate::helpers::PLAN_SMALL
        ),
        None,
    )
    .await;
    assert_eq!(unbind.status, 202, "{unbind:?}");
    operations.push(unbind.operation());
    let (last, _) = app
        .wait_for_binding(&id, &binding, &unbind.operation())
        .await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let patch = update(&app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    operations.push(patch.operation());
    let (last, _) = app.wait_for_instance(&id, &patch.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let deprovision = app.deprovision(&id).await;
    operations.push(deprovision.operation());
    let (last, _) = app.wait_for_instance(&id, &deprovision.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    for op in operations {
        assert!(!op.is_empty() && op.chars().count() <= 10_000, "{op}");
    }
    app.stop_all().await;
}

#[tokio::test]
async fn rule_033_a_second_mutation_while_one_runs_is_422_concurrency_error() {
    let s = shared();
    let app = &s.app;
    let id = provisioned(app, json!({})).await;
    let running = update(app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    assert_eq!(running.status, 202, "{running:?}");
    let other = update(
        app,
        &id,
        &update_body(PLAN_MEDIUM, json!({"max_connections": 60})),
        true,
    )
    .await;
    assert_concurrency_error(&other);
    let (last, _) = app.wait_for_instance(&id, &running.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // The refused change was not applied.
    let fetched = fetch_instance(app, &id).await;
    assert!(
        fetched["parameters"].get("max_connections").is_none(),
        "{fetched}"
    );
    let gone = app.deprovision(&id).await;
    app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_034_a_synchronous_bind_and_unbind_ignore_accepts_incomplete_true() {
    let s = shared();
    let app = &s.app;
    let binding = new_id();
    let path = format!(
        "/v2/service_instances/{}/service_bindings/{binding}",
        s.instance
    );
    let bound: Answer = send(
        app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(bound.status, 201, "{bound:?}");
    assert!(bound.body["credentials"]["uri"].is_string(), "{bound:?}");
    let unbound = send(
        app,
        Method::DELETE,
        &format!(
            "{path}?accepts_incomplete=true&service_id={}&plan_id={}",
            crate::helpers::SERVICE_ID,
            crate::helpers::PLAN_SMALL
        ),
        None,
    )
    .await;
    assert_eq!(unbound.status, 200, "{unbound:?}");
    assert_eq!(unbound.body, json!({}));
}
