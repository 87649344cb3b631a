//! `POST /spi/v1/instances/validate`, `/instances/deployment-spec` and `/bindings/validate`.

use crate::helpers::{ctx, spawn_app};
use common::deployer::Engine;
use common::spi::{DeploymentSpecRequest, InstanceOperation, ValidateInstanceRequest};
use serde_json::json;
use spi_postgres::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};

fn provision(plan_id: &str, parameters: serde_json::Value) -> serde_json::Value {
    json!({
        "operation": "provision",
        "instance_id": "inst-1",
        "service_id": SERVICE_ID,
        "plan_id": plan_id,
        "parameters": parameters,
    })
}

#[tokio::test]
async fn good_parameters_are_accepted_with_the_dashboard_url() {
    let app = spawn_app().await;
    let answer = app
        .spi
        .validate_instance(
            &ValidateInstanceRequest {
                operation: InstanceOperation::Provision,
                instance_id: "inst-1".into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                previous_plan_id: None,
                parameters: json!({"max_connections": 80, "work_mem_mb": 8})
                    .as_object()
                    .cloned(),
                previous_parameters: None,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        answer.dashboard_url.as_deref(),
        Some("https://dashboard.test/instances/inst-1")
    );
}

#[tokio::test]
async fn a_float_where_an_integer_belongs_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (status, id, body) = app
        .post(
            "/instances/validate",
            &provision(PLAN_SMALL_ID, json!({"max_connections": 1.5})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "InvalidParameters");
    assert_eq!(
        body["description"],
        "parameter 'max_connections': integer expected, got 1.5"
    );
    assert_eq!(body["request_id"].as_str(), id.as_deref());
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &provision(PLAN_SMALL_ID, json!({"shared_preload_libraries": "evil"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "InvalidParameters");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.starts_with("unknown parameter 'shared_preload_libraries'"),
        "{description}"
    );
}

#[tokio::test]
async fn a_value_out_of_range_is_a_400_naming_the_bound() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &provision(PLAN_MEDIUM_ID, json!({"max_connections": 5})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "parameter 'max_connections': must be at least 10, got 5"
    );
}

#[tokio::test]
async fn an_unknown_plan_is_a_400() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post("/instances/validate", &provision("no-such-plan", json!({})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "UnknownPlan");
    assert!(body["description"]
        .as_str()
        .unwrap()
        .contains("'no-such-plan'"));
}

#[tokio::test]
async fn a_downgrade_is_refused_naming_the_plans_and_what_is_allowed() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &json!({
                "operation": "update",
                "instance_id": "inst-1",
                "service_id": SERVICE_ID,
                "plan_id": PLAN_SMALL_ID,
                "previous_plan_id": PLAN_MEDIUM_ID,
                "parameters": {},
            }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "PlanChangeNotAllowed");
    assert_eq!(
        body["description"],
        "plan change from medium to small is not allowed; medium may change to: (none)"
    );
}

#[tokio::test]
async fn an_upgrade_validates_only_the_parameters_sent() {
    let app = spawn_app().await;
    let (status, _, _) = app
        .post(
            "/instances/validate",
            &json!({
                "operation": "update",
                "instance_id": "inst-1",
                "service_id": SERVICE_ID,
                "plan_id": PLAN_MEDIUM_ID,
                "previous_plan_id": PLAN_SMALL_ID,
                "parameters": {"statement_timeout_ms": 30000},
                "previous_parameters": {"max_connections": 80},
            }),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn binding_parameters_are_refused_because_none_exist() {
    let app = spawn_app().await;
    let body = json!({
        "instance_id": "inst-1", "binding_id": "b-1",
        "service_id": SERVICE_ID, "plan_id": PLAN_SMALL_ID,
        "parameters": {"superuser": true},
    });
    let (status, _, answer) = app.post("/bindings/validate", &body).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["description"],
        "unknown parameter 'superuser' (none are accepted)"
    );
    let mut ok = body.clone();
    ok["parameters"] = json!({});
    assert_eq!(app.post("/bindings/validate", &ok).await.0, 200);
}

#[tokio::test]
async fn a_malformed_body_is_a_400_envelope() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post("/instances/validate", &json!({"operation": "provision"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "BadRequest");
    assert!(body["description"]
        .as_str()
        .unwrap()
        .contains("instance_id"));
}

#[tokio::test]
async fn the_deployment_spec_applies_plan_and_parameters() {
    let app = spawn_app().await;
    let answer = app
        .spi
        .deployment_spec(
            &DeploymentSpecRequest {
                instance_id: "9d3c1c52-2f61-4b43-9a0e-0c3f6d3e8b11".into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                parameters: json!({"work_mem_mb": 12}).as_object().cloned().unwrap(),
                previous: None,
            },
            &ctx(),
        )
        .await
        .unwrap();
    let spec = &answer.spec;
    assert_eq!(answer.description, "creating PostgreSQL 15 cluster");
    assert_eq!(spec.name, "pg-9d3c1c52-2f61-4b43-9a0e-0c3f6d3e8b11");
    assert_eq!(spec.engine, Engine::Postgresql);
    assert_eq!(spec.settings["max_connections"], "50");
    assert_eq!(spec.settings["work_mem"], "12MB");
    assert_eq!(spec.admin.username, "osb_admin");
    assert_eq!(spec.admin.password.expose().len(), 32);
}

#[tokio::test]
async fn binding_to_an_unreachable_instance_is_a_503_the_broker_can_retry() {
    let app = spawn_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, _, body) = app
        .post(
            "/bindings/delete",
            &json!({
                "instance_id": "inst-1", "binding_id": "b-1",
                "endpoints": [{"host": "127.0.0.1", "port": port}],
                "admin": {"username": "osb_admin", "password": "secret-admin-pw"},
            }),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "InstanceUnavailable");
    assert!(!body.to_string().contains("secret-admin-pw"));
}
