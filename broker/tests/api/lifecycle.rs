//! An instance's life as a platform drives it: provision, poll, bind, use the credentials,
//! unbind, update, deprovision; and the answers to repeated requests.

use crate::helpers::{
    bind_body, new_id, provision_body, query_with, spawn_app, PLAN_MEDIUM, SERVICE_ID,
};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_instance_is_provisioned_bound_used_unbound_and_deprovisioned() {
    let app = spawn_app().await;
    let id = new_id();

    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert!(answer.body["dashboard_url"].is_string(), "{answer:?}");
    let operation = answer.operation();
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    assert!(
        seen.iter()
            .any(|d| d.starts_with("creating PostgreSQL 15 cluster: ")),
        "descriptions seen: {seen:?}"
    );
    assert!(last.get("instance_usable").is_none());

    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(fetched.body["service_id"], SERVICE_ID);
    assert_eq!(fetched.body["plan_id"], crate::helpers::PLAN_SMALL);
    assert_eq!(fetched.body["maintenance_info"]["version"], "15.0.0");

    let binding = new_id();
    let bound = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    let uri = bound.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bound.body["endpoints"].is_array(), "{bound:?}");
    let user = query_with(&uri).await.expect("the binding's URI works");
    assert!(!user.is_empty());

    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["credentials"]["uri"], uri.as_str());
    let last = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}/last_operation"
        ))
        .await;
    assert_eq!(last.body["state"], "succeeded", "{last:?}");

    let unbound = app.unbind(&id, &binding).await;
    assert_eq!(unbound.status, 200, "{unbound:?}");
    assert_eq!(unbound.body, json!({}));
    assert!(
        query_with(&uri).await.is_err(),
        "credentials work after unbind"
    );
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 404);

    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    assert!(
        app.deployments().await.is_empty(),
        "the deployer still runs it"
    );
    // The platform may poll again: still succeeded, not 410.
    let again = app
        .get(&format!(
            "/v2/service_instances/{id}/last_operation?operation={operation}"
        ))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["state"], "succeeded");
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 404);
    app.stop_all().await;
}

#[tokio::test]
async fn repeated_requests_answer_as_the_spec_says() {
    let app = spawn_app().await;
    let id = new_id();
    let body = provision_body(json!({"max_connections": 40}));
    let different = provision_body(json!({"max_connections": 41}));

    let first = app.provision(&id, &body, true).await;
    assert_eq!(first.status, 202, "{first:?}");
    let operation = first.operation();
    let repeat = app.provision(&id, &body, true).await;
    assert_eq!(repeat.status, 202, "{repeat:?}");
    assert_eq!(repeat.operation(), operation);
    assert_eq!(app.provision(&id, &different, true).await.status, 409);
    // Not there for the platform until it is provisioned.
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}")).await.status,
        404
    );
    let (last, _) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let repeat = app.provision(&id, &body, true).await;
    assert_eq!(repeat.status, 200, "{repeat:?}");
    assert!(repeat.body["dashboard_url"].is_string());
    let conflict = app.provision(&id, &different, true).await;
    assert_eq!(conflict.status, 409, "{conflict:?}");

    let binding = new_id();
    let bound = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    let again = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["credentials"], bound.body["credentials"]);
    let mut other = bind_body();
    other["parameters"] = json!({"read_only": true});
    assert_eq!(app.bind(&id, &binding, &other).await.status, 409);
    assert_eq!(app.unbind(&id, &binding).await.status, 200);
    let gone = app.unbind(&id, &binding).await;
    assert_eq!(gone.status, 410, "{gone:?}");
    assert_eq!(gone.body, json!({}));

    let first = app.deprovision(&id).await;
    assert_eq!(first.status, 202, "{first:?}");
    let operation = first.operation();
    let repeat = app.deprovision(&id).await;
    match repeat.status {
        202 => assert_eq!(repeat.operation(), operation),
        410 => {}
        other => panic!("repeated DELETE answered {other}: {repeat:?}"),
    }
    let (last, _) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let gone = app.deprovision(&id).await;
    assert_eq!(gone.status, 410, "{gone:?}");
    assert_eq!(gone.body, json!({}));
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

/// Provisions, optionally waits until the deployer works on it, then deprovisions; asserts
/// the provision is halted and nothing keeps running.
async fn halt_provision(app: &crate::helpers::TestApp, wait_for_deployer: bool) {
    let id = new_id();
    let first = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(first.status, 202, "{first:?}");
    let provision = first.operation();
    if wait_for_deployer {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let last = app
                .get(&format!("/v2/service_instances/{id}/last_operation"))
                .await;
            if last.body["description"]
                .as_str()
                .is_some_and(|d| d.contains(": "))
            {
                break;
            }
            assert_eq!(last.body["state"], "in progress", "{last:?}");
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let deprovision = answer.operation();
    assert_ne!(deprovision, provision);
    let (last, seen) = app.wait_for_instance(&id, &deprovision).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");

    let halted = app
        .get(&format!(
            "/v2/service_instances/{id}/last_operation?operation={provision}"
        ))
        .await;
    assert_eq!(halted.body["state"], "failed", "{halted:?}");
    assert_eq!(halted.body["description"], "cancelled by deprovision");
    assert!(halted.body.get("instance_usable").is_none());
    assert!(
        !app.deployments()
            .await
            .iter()
            .any(|d| d.labels.values().any(|v| v == &id) || d.name.contains(&id)),
        "the deployer still runs the halted instance"
    );
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}")).await.status,
        404
    );
    // The id is free again.
    let again = app.provision(&id, &provision_body(json!({})), false).await;
    assert_eq!(again.status, 422, "{again:?}");
}

#[tokio::test]
async fn a_deprovision_during_provisioning_halts_it_and_deletes_everything() {
    let app = spawn_app().await;
    halt_provision(&app, false).await;
    halt_provision(&app, true).await;
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

#[tokio::test]
async fn a_plan_change_runs_as_an_update_and_applies_only_when_it_succeeds() {
    let app = spawn_app().await;
    let id = new_id();
    let first = app.provision(&id, &provision_body(json!({})), true).await;
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let patch = |body: serde_json::Value, accepts: bool| {
        let query = if accepts {
            "?accepts_incomplete=true"
        } else {
            ""
        };
        app.request(Method::PATCH, &format!("/v2/service_instances/{id}{query}"))
            .json(&body)
            .send()
    };
    // Nothing to change: 200 {}.
    let same = crate::helpers::Answer::from(
        patch(
            json!({"service_id": SERVICE_ID, "context": {"platform": "cloudfoundry"}}),
            false,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(same.status, 200, "{same:?}");
    assert_eq!(same.body, json!({}));
    // A change needs accepts_incomplete.
    let sync = crate::helpers::Answer::from(
        patch(
            json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM}),
            false,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(sync.status, 422, "{sync:?}");
    assert_eq!(sync.body["error"], "AsyncRequired");
    // A parameter the SPI refuses: 400, nothing changes.
    let refused = crate::helpers::Answer::from(
        patch(
            json!({"service_id": SERVICE_ID, "parameters": {"no_such_parameter": 1}}),
            true,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400, "{refused:?}");

    let accepted = crate::helpers::Answer::from(
        patch(
            json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM}),
            true,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let operation = accepted.operation();
    let during = app.get(&format!("/v2/service_instances/{id}")).await;
    if during.status == 422 {
        assert_eq!(during.body["error"], "ConcurrencyError");
        let busy = app.deprovision(&id).await;
        assert!(
            busy.status == 422 || busy.status == 202,
            "DELETE during an update: {busy:?}"
        );
    }
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(fetched.body["plan_id"], PLAN_MEDIUM);

    // Binding still works on the changed instance.
    let binding = new_id();
    let mut body = bind_body();
    body["plan_id"] = json!(PLAN_MEDIUM);
    let bound = app.bind(&id, &binding, &body).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    query_with(bound.body["credentials"]["uri"].as_str().unwrap())
        .await
        .expect("the binding's URI works after the update");
    app.stop_all().await;
}
