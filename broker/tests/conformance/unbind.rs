//! §8 "Unbind": rules 91-97.

use crate::helpers::{bind_body, new_id, query_with, spawn_app_with, PLAN_SMALL, SERVICE_ID};
use crate::support::{provisioned, send, shared};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn rule_091_an_unbind_without_service_or_plan_id_is_400() {
    let s = shared();
    let path = format!(
        "/v2/service_instances/{}/service_bindings/{}",
        s.instance, s.binding
    );
    for query in [
        "",
        &format!("?service_id={SERVICE_ID}"),
        &format!("?plan_id={PLAN_SMALL}"),
    ] {
        let answer = send(&s.app, Method::DELETE, &format!("{path}{query}"), None).await;
        assert_eq!(answer.status, 400, "{query}: {answer:?}");
    }
    query_with(&s.uri).await.expect("still bound");
}

#[tokio::test]
async fn rule_092_and_096_a_sync_unbind_is_200_with_an_empty_object_and_revokes_the_credentials() {
    let s = shared();
    let binding = new_id();
    let bound = s.app.bind(&s.instance, &binding, &bind_body()).await;
    let uri = bound.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    query_with(&uri).await.expect("works before");
    let answer = s.app.unbind(&s.instance, &binding).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({}));
    assert!(
        query_with(&uri).await.is_err(),
        "credentials work after unbind"
    );
}

#[tokio::test]
async fn rule_093_unbinding_an_unknown_or_deleted_binding_is_410() {
    let s = shared();
    assert_eq!(s.app.unbind(&s.instance, &new_id()).await.status, 410);
    let binding = new_id();
    s.app.bind(&s.instance, &binding, &bind_body()).await;
    assert_eq!(s.app.unbind(&s.instance, &binding).await.status, 200);
    let again = s.app.unbind(&s.instance, &binding).await;
    assert_eq!(again.status, 410, "{again:?}");
    assert_eq!(again.body, json!({}));
    // A binding of this id under another instance id does not exist there either.
    assert_eq!(s.app.unbind(&new_id(), &s.binding).await.status, 410);
}

/// Rules 94 (async unbind, repeated while in progress) and 97 (unbind during a bind).
#[tokio::test]
async fn rule_094_and_097_async_unbind_repeats_answer_202_and_an_unbind_during_a_bind_halts_it() {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = provisioned(&app, json!({})).await;
    let binding = new_id();
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let bound = send(
        &app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(bound.status, 202);
    // Unbind right away, while the bind may still run.
    let delete =
        format!("{path}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}");
    let first = send(&app, Method::DELETE, &delete, None).await;
    assert_eq!(first.status, 202, "{first:?}");
    let repeat = send(&app, Method::DELETE, &delete, None).await;
    assert!(repeat.status == 202 || repeat.status == 410, "{repeat:?}");
    if repeat.status == 202 {
        assert_eq!(repeat.operation(), first.operation());
    }
    let (last, _) = app
        .wait_for_binding(&id, &binding, &first.operation())
        .await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(app.get(&path).await.status, 404);
    // No role of that binding is left on the server: a new bind of the same id works.
    let again = send(
        &app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&bind_body()),
    )
    .await;
    assert_eq!(again.status, 202, "{again:?}");
    let (last, _) = app
        .wait_for_binding(&id, &binding, &again.operation())
        .await;
    assert_eq!(last["state"], "succeeded", "{last}");
    app.stop_all().await;
}

#[tokio::test]
async fn rule_095_an_unbind_while_a_bind_of_it_runs_halts_the_bind_instead_of_422() {
    // The spec allows both; this broker halts the creation (rule 97), so a ConcurrencyError
    // never reaches the platform for an unbind. See rule_094_and_097.
    let s = shared();
    let binding = new_id();
    s.app.bind(&s.instance, &binding, &bind_body()).await;
    let answer = s.app.unbind(&s.instance, &binding).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
