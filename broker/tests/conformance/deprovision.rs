//! §8 "Deprovision": rules 98-104.

use crate::helpers::{
    bind_body, new_id, provision_body, query_with, PLAN_MEDIUM, PLAN_SMALL, SERVICE_ID,
};
use crate::support::{assert_concurrency_error, provisioned, send, shared, update, update_body};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn rule_098_a_deprovision_without_service_or_plan_id_is_400() {
    let s = shared();
    let path = format!("/v2/service_instances/{}", s.instance);
    for query in [
        "?accepts_incomplete=true".to_string(),
        format!("?accepts_incomplete=true&service_id={SERVICE_ID}"),
        format!("?accepts_incomplete=true&plan_id={PLAN_SMALL}"),
        format!("?accepts_incomplete=true&service_id=&plan_id={PLAN_SMALL}"),
    ] {
        let answer = send(&s.app, Method::DELETE, &format!("{path}{query}"), None).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
    }
    query_with(&s.uri).await.expect("still there");
}

#[tokio::test]
async fn rule_099_this_broker_deprovisions_only_asynchronously_so_a_sync_delete_is_async_required()
{
    let s = shared();
    let answer = send(
        &s.app,
        Method::DELETE,
        &format!(
            "/v2/service_instances/{}?service_id={SERVICE_ID}&plan_id={PLAN_SMALL}",
            s.instance
        ),
        None,
    )
    .await;
    crate::support::assert_422(&answer, common::osb::codes::ASYNC_REQUIRED);
}

#[tokio::test]
async fn rule_100_deprovisioning_an_unknown_or_deleted_instance_is_410() {
    let s = shared();
    let unknown = s.app.deprovision(&new_id()).await;
    assert_eq!(unknown.status, 410);
    assert_eq!(unknown.body, json!({}));
    let id = provisioned(&s.app, json!({})).await;
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(s.app.deprovision(&id).await.status, 410);
}

/// Rules 101 (async deprovision ends succeeded) and 103 (everything is gone afterwards).
#[tokio::test]
async fn rule_101_and_103_an_async_deprovision_succeeds_and_removes_the_server_and_its_roles() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let binding = new_id();
    let bound = s.app.bind(&id, &binding, &bind_body()).await;
    let uri = bound.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    query_with(&uri).await.expect("works");
    let gone = s.app.deprovision(&id).await;
    assert_eq!(gone.status, 202);
    let (last, _) = s.app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded");
    assert!(query_with(&uri).await.is_err(), "the server is gone");
    assert_eq!(
        s.app
            .get(&format!("/v2/service_instances/{id}"))
            .await
            .status,
        404
    );
    let deployments = s.app.deployments().await;
    assert!(
        deployments.iter().all(|d| !d.name.contains(&id)),
        "{deployments:?}"
    );
}

#[tokio::test]
async fn rule_102_a_deprovision_while_an_update_runs_is_422_concurrency_error() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let running = update(&s.app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    assert_eq!(running.status, 202);
    assert_concurrency_error(&s.app.deprovision(&id).await);
    s.app.wait_for_instance(&id, &running.operation()).await;
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_104_a_deprovision_during_provisioning_halts_it_and_removes_everything() {
    let s = shared();
    let id = new_id();
    let started = s.app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(started.status, 202);
    let gone = s.app.deprovision(&id).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = s.app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let provision = s
        .app
        .get(&format!(
            "/v2/service_instances/{id}/last_operation?operation={}",
            started.operation()
        ))
        .await;
    assert_eq!(provision.body["state"], "failed", "{provision:?}");
    let deployments = s.app.deployments().await;
    assert!(
        deployments.iter().all(|d| !d.name.contains(&id)),
        "{deployments:?}"
    );
}
