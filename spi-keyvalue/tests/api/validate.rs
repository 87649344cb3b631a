//! `POST /spi/v1/instances/validate`, `/instances/deployment-spec` and `/bindings/validate`:
//! what every SPI answers ([`testkit::api_tests!`]) and what the eviction policy makes of it.

use common::deployer::Engine;
use serde_json::json;
use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID};
use spi_keyvalue::KeyValue;
use testkit::spi::api::{provision_body, refused_parameters};
use testkit::spi::instance::spec_request;
use testkit::spi::{ctx, spawn_app};

testkit::api_tests!(KeyValue);

#[tokio::test]
async fn a_known_eviction_policy_is_accepted_with_the_dashboard_url() {
    let app = spawn_app::<KeyValue>().await;
    let parameters = json!({"maxmemory-policy": "allkeys-lfu"});
    let body = provision_body::<KeyValue>("kv-inst-1", PLAN_SMALL_ID, parameters);
    let (status, _, body) = app.post("/instances/validate", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["dashboard_url"],
        "https://dashboard.test/instances/kv-inst-1"
    );
}

#[tokio::test]
async fn an_unknown_eviction_policy_is_a_400_listing_the_allowed_ones() {
    let app = spawn_app::<KeyValue>().await;
    let parameters = json!({"maxmemory-policy": "evict-everything"});
    assert_eq!(
        refused_parameters::<KeyValue>(&app, PLAN_SMALL_ID, parameters).await,
        "parameter 'maxmemory-policy': must be one of noeviction, allkeys-lru, allkeys-lfu, \
         allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl, \
         got evict-everything"
    );
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let app = spawn_app::<KeyValue>().await;
    let parameters = json!({"requirepass": "x"});
    assert_eq!(
        refused_parameters::<KeyValue>(&app, PLAN_MEDIUM_ID, parameters).await,
        "unknown parameter 'requirepass' (allowed parameters: maxmemory-policy)"
    );
}

#[tokio::test]
async fn the_deployment_spec_sizes_redis_by_plan_and_policy() {
    let app = spawn_app::<KeyValue>().await;
    let request = spec_request::<KeyValue>(
        "0d4c5e6f-1a2b-4c3d-8e9f-a0b1c2d3e4f5",
        PLAN_MEDIUM_ID,
        json!({"maxmemory-policy": "volatile-lru"}),
        None,
    );
    let answer = app.spi.deployment_spec(&request, &ctx()).await.unwrap();
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
