//! `POST /spi/v1/instances/validate`, `/instances/deployment-spec` and `/bindings/validate`:
//! what every SPI answers ([`testkit::api_tests!`]) and what PostgreSQL's parameters make of it.

use common::deployer::Engine;
use common::spi::{InstanceOperation, ValidateInstanceRequest};
use serde_json::json;
use spi_postgres::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};
use spi_postgres::Postgres;
use testkit::spi::api::refused_parameters;
use testkit::spi::instance::spec_request;
use testkit::spi::{ctx, spawn_app};

testkit::api_tests!(Postgres);

#[tokio::test]
async fn good_parameters_are_accepted_with_the_dashboard_url() {
    let app = spawn_app::<Postgres>().await;
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
    let app = spawn_app::<Postgres>().await;
    let parameters = json!({"max_connections": 1.5});
    assert_eq!(
        refused_parameters::<Postgres>(&app, PLAN_SMALL_ID, parameters).await,
        "parameter 'max_connections': integer expected, got 1.5"
    );
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let app = spawn_app::<Postgres>().await;
    let parameters = json!({"shared_preload_libraries": "evil"});
    let description = refused_parameters::<Postgres>(&app, PLAN_SMALL_ID, parameters).await;
    assert!(
        description.starts_with("unknown parameter 'shared_preload_libraries'"),
        "{description}"
    );
}

#[tokio::test]
async fn a_value_out_of_range_is_a_400_naming_the_bound() {
    let app = spawn_app::<Postgres>().await;
    let parameters = json!({"max_connections": 5});
    assert_eq!(
        refused_parameters::<Postgres>(&app, PLAN_MEDIUM_ID, parameters).await,
        "parameter 'max_connections': must be at least 10, got 5"
    );
}

#[tokio::test]
async fn an_upgrade_validates_only_the_parameters_sent() {
    let app = spawn_app::<Postgres>().await;
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
async fn the_deployment_spec_applies_plan_and_parameters() {
    let app = spawn_app::<Postgres>().await;
    let request = spec_request::<Postgres>(
        "9d3c1c52-2f61-4b43-9a0e-0c3f6d3e8b11",
        PLAN_SMALL_ID,
        json!({"work_mem_mb": 12}),
        None,
    );
    let answer = app.spi.deployment_spec(&request, &ctx()).await.unwrap();
    let spec = &answer.spec;
    assert_eq!(answer.description, "creating PostgreSQL 15 cluster");
    assert_eq!(spec.name, "pg-9d3c1c52-2f61-4b43-9a0e-0c3f6d3e8b11");
    assert_eq!(spec.engine, Engine::Postgresql);
    assert_eq!(spec.settings["max_connections"], "50");
    assert_eq!(spec.settings["work_mem"], "12MB");
    assert_eq!(spec.admin.username, "osb_admin");
    assert_eq!(spec.admin.password.expose().len(), 32);
}
