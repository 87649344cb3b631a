//! Bindings against a real Redis 7 server, created by the real deployer from this SPI's own
//! deployment spec.

use common::deployer::{DeploymentEndpoint, DeploymentSpec};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID};
use spi_keyvalue::KeyValue;
use std::time::Duration;
use testkit::spi::instance::{credential, spawn_with_instance};

async fn connect(uri: &str) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(uri)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(5))
        .set_response_timeout(Duration::from_secs(5));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
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

/// The value of `key`, which must exist.
async fn get(con: &mut MultiplexedConnection, key: &str) -> String {
    redis::cmd("GET").arg(key).query_async(con).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_share_the_keys_cannot_administer_and_an_unbound_user_is_locked_out() {
    let parameters = json!({"maxmemory-policy": "allkeys-lru"});
    let (app, _deployer, instance) =
        spawn_with_instance::<KeyValue>(PLAN_SMALL_ID, parameters).await;
    let (spec, endpoints) = (&instance.spec, &instance.endpoints);

    // The server runs with the plan's sizing and the chosen policy.
    let mut admin = connect(&admin_uri(spec, &endpoints[0])).await.unwrap();
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
    let first = instance.bind(&app, &first_id).await;
    assert_eq!(first.credentials["port"], endpoints[0].port);
    assert_eq!(first.credentials["host"], endpoints[0].host.as_str());
    // The user was saved to the ACL file: reloading the file keeps it.
    run(&mut admin, &["ACL", "LOAD"]).await.unwrap();
    // Redis closes connections of reloaded users, the admin's included.
    let mut admin = connect(&admin_uri(spec, &endpoints[0])).await.unwrap();
    let mut one = connect(&credential(&first, "uri")).await.unwrap();
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
    let second = instance.bind(&app, &second_id).await;
    assert_ne!(
        second.credentials["username"],
        first.credentials["username"]
    );
    let mut two = connect(&credential(&second, "uri")).await.unwrap();
    let value = get(&mut two, "greeting").await;
    assert_eq!(value, "hello");

    // Unbind the first: its connection is closed and its credentials stop working.
    instance.unbind(&app, &first_id).await;
    let closed = run(&mut one, &["PING"]).await;
    assert!(closed.is_err(), "the unbound user's connection still works");
    let Err(refused) = connect(&credential(&first, "uri")).await else {
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
    let value = get(&mut two, "greeting").await;
    assert_eq!(value, "hello");
    instance.unbind(&app, &first_id).await;
    let again = instance.rebind(&app, &second_id, &second).await;
    assert!(
        connect(&credential(&second, "uri")).await.is_err(),
        "old password still works"
    );
    connect(&credential(&again, "uri")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_medium_resizes_the_server_and_keeps_data_and_bindings() {
    let (app, deployer, small) = spawn_with_instance::<KeyValue>(PLAN_SMALL_ID, json!({})).await;
    let binding = small.bind(&app, "survives-the-upgrade").await;
    let mut con = connect(&credential(&binding, "uri")).await.unwrap();
    run(&mut con, &["SET", "kept", "7"]).await.unwrap();

    let medium = small
        .update(&app, &deployer, PLAN_MEDIUM_ID, json!({}))
        .await;
    assert_eq!(medium.spec.name, small.spec.name);
    assert_eq!(medium.endpoints, small.endpoints);
    let mut admin = connect(&admin_uri(&medium.spec, &medium.endpoints[0]))
        .await
        .unwrap();
    let maxclients: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(maxclients, ["maxclients", "1000"]);
    let mut con = connect(&credential(&binding, "uri")).await.unwrap();
    let kept = get(&mut con, "kept").await;
    assert_eq!(kept, "7");
}
