//! Refused provisions: each answers with the spec's status and a description that says what is
//! wrong, and leaves nothing behind (no instance, no operation, no deployment).

use crate::helpers::{new_id, provision_body, spawn_app, PLAN_MEDIUM, SERVICE_ID};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    for body in ["{\"service_id\": ", "[1, 2, 3]", "\"text\""] {
        let answer = crate::helpers::Answer::from(
            app.request(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            )
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        assert!(
            answer.body["description"]
                .as_str()
                .is_some_and(|d| d.contains("JSON")),
            "{answer:?}"
        );
    }
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn an_unknown_service_is_400_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    let mut body = provision_body(json!({}));
    body["service_id"] = json!("no-such-service");
    let answer = app.provision(&id, &body, true).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body["description"]
        .as_str()
        .unwrap()
        .contains("no-such-service"));
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn an_unknown_plan_is_400_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    let mut body = provision_body(json!({}));
    body["plan_id"] = json!("no-such-plan");
    let answer = app.provision(&id, &body, true).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body["description"]
        .as_str()
        .unwrap()
        .contains("no-such-plan"));
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn missing_mandatory_fields_are_400_naming_the_field() {
    let app = spawn_app().await;
    let id = new_id();
    for field in ["service_id", "plan_id"] {
        let mut body = provision_body(json!({}));
        body.as_object_mut().unwrap().remove(field);
        let answer = app.provision(&id, &body, true).await;
        assert_eq!(answer.status, 400, "{field}: {answer:?}");
        assert!(answer.body["description"].as_str().unwrap().contains(field));
    }
    let mut body = provision_body(json!({}));
    body["space_guid"] = json!("");
    let answer = app.provision(&id, &body, true).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn a_provision_without_accepts_incomplete_is_422_async_required_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    for query in ["", "?accepts_incomplete=false", "?accepts_incomplete="] {
        let answer = crate::helpers::Answer::from(
            app.request(Method::PUT, &format!("/v2/service_instances/{id}{query}"))
                .json(&provision_body(json!({})))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 422, "{query}: {answer:?}");
        assert_eq!(answer.body["error"], "AsyncRequired");
    }
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn a_maintenance_version_other_than_the_plans_is_422_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    let mut body = provision_body(json!({}));
    body["maintenance_info"] = json!({"version": "0.0.1", "description": "old"});
    let answer = app.provision(&id, &body, true).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["error"], "MaintenanceInfoConflict");
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn parameters_the_spi_refuses_are_400_with_its_description_and_nothing_is_created() {
    let app = spawn_app().await;
    let id = new_id();
    let answer = app
        .provision(
            &id,
            &provision_body(json!({"max_connections": "many"})),
            true,
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .contains("max_connections"),
        "{answer:?}"
    );
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn a_plan_of_another_service_or_a_bind_to_an_unknown_instance_is_refused() {
    let app = spawn_app().await;
    let id = new_id();
    let mut body = provision_body(json!({}));
    body["service_id"] = json!("other");
    body["plan_id"] = json!(PLAN_MEDIUM);
    assert_eq!(app.provision(&id, &body, true).await.status, 400);
    let answer = app
        .bind(
            &id,
            "b1",
            &json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM}),
        )
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    let answer = app.unbind(&id, "b1").await;
    assert_eq!(answer.status, 410, "{answer:?}");
    assert_eq!(answer.body, json!({}));
    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 410, "{answer:?}");
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}
