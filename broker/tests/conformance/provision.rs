//! §8 "Provision": rules 45-53.

use crate::helpers::{new_id, provision_body, PLAN_MEDIUM, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_422, assert_error_body, send, shared};
use common::osb::codes;
use reqwest::Method;
use serde_json::json;

async fn assert_nothing_created(id: &str) {
    let app = &shared().app;
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}")).await.status,
        404
    );
    assert_eq!(
        app.get(&format!("/v2/service_instances/{id}/last_operation"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn rule_045_missing_service_or_plan_id_or_a_non_json_body_is_400() {
    let app = &shared().app;
    let id = new_id();
    for field in ["service_id", "plan_id", "organization_guid"] {
        let mut body = provision_body(json!({}));
        body.as_object_mut().unwrap().remove(field);
        if field == "organization_guid" {
            body.as_object_mut().unwrap().remove("context");
        }
        let answer = app.provision(&id, &body, true).await;
        assert_eq!(answer.status, 400, "{field}: {answer:?}");
        assert!(answer.body["description"].as_str().unwrap().contains(field));
    }
    for raw in ["not json", "[]", "", "{\"service_id\": 1}"] {
        let answer = crate::helpers::Answer::from(
            app.request(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            )
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 400, "{raw:?}: {answer:?}");
        assert_error_body(&answer);
    }
    assert_nothing_created(&id).await;
}

#[tokio::test]
async fn rule_046_an_unknown_service_or_plan_or_a_plan_of_another_service_is_400() {
    let app = &shared().app;
    let id = new_id();
    for (service, plan) in [
        ("no-such-service", PLAN_SMALL),
        (SERVICE_ID, "no-such-plan"),
    ] {
        let mut body = provision_body(json!({}));
        body["service_id"] = json!(service);
        body["plan_id"] = json!(plan);
        let answer = app.provision(&id, &body, true).await;
        assert_eq!(answer.status, 400, "{answer:?}");
    }
    assert_nothing_created(&id).await;
}

#[tokio::test]
async fn rule_047_this_broker_never_provisions_synchronously_so_no_201_only_async_required() {
    let app = &shared().app;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), false).await;
    assert_422(&answer, codes::ASYNC_REQUIRED);
    assert_nothing_created(&id).await;
}

#[tokio::test]
async fn rule_048_an_identical_provision_after_completion_is_200() {
    let s = shared();
    let answer = s
        .app
        .provision(&s.instance, &provision_body(json!({})), true)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.is_object());
    assert!(answer.body.get("operation").is_none(), "{answer:?}");
}

#[tokio::test]
async fn rule_049_the_same_id_with_other_attributes_is_409_existing_or_in_progress() {
    let s = shared();
    let app = &s.app;
    for body in [provision_body(json!({"max_connections": 42})), {
        let mut b = provision_body(json!({}));
        b["plan_id"] = json!(PLAN_MEDIUM);
        b
    }] {
        assert_eq!(app.provision(&s.instance, &body, true).await.status, 409);
    }
    let id = new_id();
    let first = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(first.status, 202);
    let other = app
        .provision(&id, &provision_body(json!({"max_connections": 42})), true)
        .await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_error_body(&other);
    let gone = app.deprovision(&id).await;
    app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_050_an_async_provision_is_202_with_operation_dashboard_url_and_metadata_only() {
    let app = &shared().app;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    for key in &keys {
        assert!(
            ["operation", "dashboard_url", "metadata"].contains(&key.as_str()),
            "unexpected {key} in {answer:?}"
        );
    }
    assert!(answer.body["operation"].is_string());
    assert_eq!(
        answer.body["metadata"]["labels"]["plan"], "small",
        "{answer:?}"
    );
    let gone = app.deprovision(&id).await;
    app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_051_a_maintenance_version_other_than_the_plans_is_422_maintenance_info_conflict() {
    let app = &shared().app;
    let id = new_id();
    for version in ["14.0.0", "15.0.1", "not-semver"] {
        let mut body = provision_body(json!({}));
        body["maintenance_info"] = json!({"version": version});
        let answer = app.provision(&id, &body, true).await;
        assert_422(&answer, codes::MAINTENANCE_INFO_CONFLICT);
        assert!(answer.body["description"]
            .as_str()
            .unwrap()
            .contains("15.0.0"));
    }
    assert_nothing_created(&id).await;
}

#[tokio::test]
async fn rule_052_the_dashboard_url_is_in_the_first_202_and_a_string() {
    let app = &shared().app;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202);
    let url = answer.body["dashboard_url"].as_str().expect("a string");
    assert!(url.contains(&id), "{url}");
    let gone = send(
        app,
        Method::DELETE,
        &format!(
            "/v2/service_instances/{id}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"
        ),
        None,
    )
    .await;
    app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_053_fields_of_maintenance_info_other_than_version_are_ignored() {
    let s = shared();
    let mut body = provision_body(json!({}));
    body["maintenance_info"] =
        json!({"version": "15.0.0", "description": "anything", "x-extra": [1, 2]});
    let answer = s.app.provision(&s.instance, &body, true).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
