//! Bindings against a real Redis 7 server, created by the real deployer from this SPI's own
//! deployment spec.

use crate::helpers::{ctx, spawn_app, spawn_deployer, TestApp, TestDeployer};
use common::deployer::{DeploymentEndpoint, DeploymentSpec};
use common::spi::{
    CreateBindingRequest, CreateBindingResponse, DeleteBindingRequest, DeploymentSpecRequest,
};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};
use std::time::Duration;

async fn connect(uri: &str) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(uri)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(5))
        .set_response_timeout(Duration::from_secs(5));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

fn uri(binding: &CreateBindingResponse) -> String {
    binding.credentials["uri"].as_str().unwrap().to_string()
}

fn admin_uri(spec: &DeploymentSpec, endpoint: &DeploymentEndpoint) -> String {
    format!(
        "redis://{}:{}@{}:{}",
        spec.admin.username,
        spec.admin.password.expose(),
        endpoint.host,
        endpoint.port
    )
}

async fn run(con: &mut MultiplexedConnection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    cmd.arg(&args[1..]);
    cmd.query_async(con).await
}

/// An instance of `plan_id` made from this SPI's spec and run by the deployer.
async fn provision(
    app: &TestApp,
    deployer: &TestDeployer,
    instance_id: &str,
    plan_id: &str,
    parameters: serde_json::Value,
    previous: Option<DeploymentSpec>,
) -> (DeploymentSpec, Vec<DeploymentEndpoint>) {
    let spec = app
        .spi
        .deployment_spec(
            &DeploymentSpecRequest {
                instance_id: instance_id.into(),
                service_id: SERVICE_ID.into(),
                plan_id: plan_id.into(),
                parameters: parameters.as_object().cloned().unwrap(),
                previous,
            },
            &ctx(),
        )
        .await
        .unwrap()
        .spec;
    let deployment = deployer.deploy(&spec).await;
    (spec, deployment.endpoints)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_share_the_keys_cannot_administer_and_an_unbound_user_is_locked_out() {
    let app = spawn_app().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let instance_id = common::new_request_id();
    let (spec, endpoints) = provision(
        &app,
        &deployer,
        &instance_id,
        PLAN_SMALL_ID,
        json!({"maxmemory-policy": "allkeys-lru"}),
        None,
    )
    .await;
    let bind = |binding_id: &str| CreateBindingRequest {
        instance_id: instance_id.clone().into(),
        binding_id: binding_id.into(),
        service_id: SERVICE_ID.into(),
        plan_id: PLAN_SMALL_ID.into(),
        parameters: None,
        endpoints: endpoints.clone(),
        admin: spec.admin.clone(),
    };
    let unbind = |binding_id: &str| DeleteBindingRequest {
        instance_id: instance_id.clone().into(),
        binding_id: binding_id.into(),
        endpoints: endpoints.clone(),
        admin: spec.admin.clone(),
    };

    // The server runs with the plan's sizing and the chosen policy.
    let mut admin = connect(&admin_uri(&spec, &endpoints[0])).await.unwrap();
    let memory: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(
        memory.windows(2).any(|w| w == ["maxmemory", "67108864"]),
        "{memory:?}"
    );
    assert!(
        memory
            .windows(2)
            .any(|w| w == ["maxmemory-policy", "allkeys-lru"]),
        "{memory:?}"
    );

    // First binding: reads and writes keys, but no admin or dangerous command.
    let first_id = common::new_request_id();
    let first = app
        .spi
        .create_binding(&bind(&first_id), &ctx())
        .await
        .unwrap();
    assert_eq!(first.credentials["port"], endpoints[0].port);
    assert_eq!(first.credentials["host"], endpoints[0].host.as_str());
    // The user was saved to the ACL file: reloading the file keeps it.
    run(&mut admin, &["ACL", "LOAD"]).await.unwrap();
    // Redis closes connections of reloaded users, the admin's included.
    let mut admin = connect(&admin_uri(&spec, &endpoints[0])).await.unwrap();
    let mut one = connect(&uri(&first)).await.unwrap();
    run(&mut one, &["SET", "greeting", "hello"]).await.unwrap();
    for denied in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["ACL", "LIST"],
        &["FLUSHALL"],
        &["KEYS", "*"],
        &["SHUTDOWN", "NOSAVE"],
    ] {
        let err = run(&mut one, denied)
            .await
            .expect_err(&format!("{denied:?} was allowed"));
        assert_eq!(err.code(), Some("NOPERM"), "{denied:?}: {err}");
    }
    // DEBUG is also off for the whole server; either refusal will do.
    assert!(run(&mut one, &["DEBUG", "SLEEP", "0"]).await.is_err());

    // Second binding: sees the first one's keys.
    let second_id = common::new_request_id();
    let second = app
        .spi
        .create_binding(&bind(&second_id), &ctx())
        .await
        .unwrap();
    assert_ne!(
        second.credentials["username"],
        first.credentials["username"]
    );
    let mut two = connect(&uri(&second)).await.unwrap();
    let value: String = redis::cmd("GET")
        .arg("greeting")
        .query_async(&mut two)
        .await
        .unwrap();
    assert_eq!(value, "hello");

    // Unbind the first: its connection is closed and its credentials stop working.
    app.spi
        .delete_binding(&unbind(&first_id), &ctx())
        .await
        .unwrap();
    let closed = run(&mut one, &["PING"]).await;
    assert!(closed.is_err(), "the unbound user's connection still works");
    let Err(refused) = connect(&uri(&first)).await else {
        panic!("the unbound user can still log in");
    };
    assert!(
        refused.to_string().contains("WRONGPASS")
            || refused.kind() == redis::ErrorKind::AuthenticationFailed,
        "{refused}"
    );
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(!users.contains(&first.credentials["username"].as_str().unwrap().to_string()));

    // The data survives; unbinding again is fine; binding again re-keys the user.
    let value: String = redis::cmd("GET")
        .arg("greeting")
        .query_async(&mut two)
        .await
        .unwrap();
    assert_eq!(value, "hello");
    app.spi
        .delete_binding(&unbind(&first_id), &ctx())
        .await
        .unwrap();
    let again = app
        .spi
        .create_binding(&bind(&second_id), &ctx())
        .await
        .unwrap();
    assert_eq!(
        again.credentials["username"],
        second.credentials["username"]
    );
    assert_ne!(
        again.credentials["password"],
        second.credentials["password"]
    );
    assert!(
        connect(&uri(&second)).await.is_err(),
        "old password still works"
    );
    connect(&uri(&again)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_medium_resizes_the_server_and_keeps_data_and_bindings() {
    let app = spawn_app().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let instance_id = common::new_request_id();
    let (small, endpoints) = provision(
        &app,
        &deployer,
        &instance_id,
        PLAN_SMALL_ID,
        json!({}),
        None,
    )
    .await;
    let binding = app
        .spi
        .create_binding(
            &CreateBindingRequest {
                instance_id: instance_id.clone().into(),
                binding_id: "survives-the-upgrade".into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                parameters: None,
                endpoints: endpoints.clone(),
                admin: small.admin.clone(),
            },
            &ctx(),
        )
        .await
        .unwrap();
    let mut con = connect(&uri(&binding)).await.unwrap();
    run(&mut con, &["SET", "kept", "7"]).await.unwrap();

    let (medium, after) = provision(
        &app,
        &deployer,
        &instance_id,
        PLAN_MEDIUM_ID,
        json!({}),
        Some(small.clone()),
    )
    .await;
    assert_eq!(medium.name, small.name);
    assert_eq!(after, endpoints);
    let mut admin = connect(&admin_uri(&medium, &after[0])).await.unwrap();
    let maxclients: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(maxclients, ["maxclients", "1000"]);
    let mut con = connect(&uri(&binding)).await.unwrap();
    let kept: String = redis::cmd("GET")
        .arg("kept")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(kept, "7");
}
