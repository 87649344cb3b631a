//! `POST /spi/v1/instances/validate`, `/instances/deployment-spec` and `/bindings/validate`.

use crate::helpers::{ctx, spawn_app};
use common::deployer::Engine;
use common::spi::DeploymentSpecRequest;
use serde_json::json;
use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};

fn provision(plan_id: &str, parameters: serde_json::Value) -> serde_json::Value {
    json!({
        "operation": "provision",
        "instance_id": "kv-inst-1",
        "service_id": SERVICE_ID,
        "plan_id": plan_id,
        "parameters": parameters,
    })
}

#[tokio::test]
async fn a_known_eviction_policy_is_accepted_with_the_dashboard_url() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &provision(PLAN_SMALL_ID, json!({"maxmemory-policy": "allkeys-lfu"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["dashboard_url"],
        "https://dashboard.test/instances/kv-inst-1"
    );
}

#[tokio::test]
async fn an_unknown_eviction_policy_is_a_400_listing_the_allowed_ones() {
    let app = spawn_app().await;
    let (status, id, body) = app
        .post(
            "/instances/validate",
            &provision(
                PLAN_SMALL_ID,
                json!({"maxmemory-policy": "evict-everything"}),
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "InvalidParameters");
    assert_eq!(
        body["description"],
        "parameter 'maxmemory-policy': must be one of noeviction, allkeys-lru, allkeys-lfu, \
         allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl, \
         got evict-everything"
    );
    assert_eq!(body["request_id"].as_str(), id.as_deref());
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &provision(PLAN_MEDIUM_ID, json!({"requirepass": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "unknown parameter 'requirepass' (allowed parameters: maxmemory-policy)"
    );
}

#[tokio::test]
async fn a_downgrade_is_refused_naming_the_plans_and_what_is_allowed() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &json!({
                "operation": "update",
                "instance_id": "kv-inst-1",
                "service_id": SERVICE_ID,
                "plan_id": PLAN_SMALL_ID,
                "previous_plan_id": PLAN_MEDIUM_ID,
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
async fn an_unknown_plan_is_a_400() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post("/instances/validate", &provision("gold", json!({})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "UnknownPlan");
}

#[tokio::test]
async fn binding_parameters_are_refused_because_none_exist() {
    let app = spawn_app().await;
    let (status, _, body) = app
        .post(
            "/bindings/validate",
            &json!({
                "instance_id": "kv-inst-1", "binding_id": "b-1",
                "service_id": SERVICE_ID, "plan_id": PLAN_SMALL_ID,
                "parameters": {"commands": "+@all"},
            }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "unknown parameter 'commands' (none are accepted)"
    );
}

#[tokio::test]
async fn the_deployment_spec_sizes_redis_by_plan_and_policy() {
    let app = spawn_app().await;
    let answer = app
        .spi
        .deployment_spec(
            &DeploymentSpecRequest {
                instance_id: "0d4c5e6f-1a2b-4c3d-8e9f-a0b1c2d3e4f5".into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_MEDIUM_ID.into(),
                parameters: json!({"maxmemory-policy": "volatile-lru"})
                    .as_object()
                    .cloned()
                    .unwrap(),
                previous: None,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(answer.description, "creating Redis 7 server");
    let spec = answer.spec;
    assert_eq!(spec.name, "kv-0d4c5e6f-1a2b-4c3d-8e9f-a0b1c2d3e4f5");
    assert_eq!(spec.engine, Engine::Redis);
    assert_eq!(spec.version, "7");
    assert_eq!(spec.settings["maxmemory"], "256mb");
    assert_eq!(spec.settings["maxclients"], "1000");
    assert_eq!(spec.settings["maxmemory-policy"], "volatile-lru");
    assert_eq!(spec.admin.username, "osb_admin");
}

#[tokio::test]
async fn binding_to_an_unreachable_instance_is_a_503_the_broker_can_retry() {
    let app = spawn_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, _, body) = app
        .post(
            "/bindings",
            &json!({
                "instance_id": "kv-inst-1", "binding_id": "b-1",
                "service_id": SERVICE_ID, "plan_id": PLAN_SMALL_ID,
                "endpoints": [{"host": "127.0.0.1", "port": port}],
                "admin": {"username": "osb_admin", "password": "secret-admin-pw"},
            }),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "InstanceUnavailable");
    assert!(!body.to_string().contains("secret-admin-pw"));
}
