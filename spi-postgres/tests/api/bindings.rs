//! Bindings against a real PostgreSQL 15 server, created by the real deployer from this SPI's
//! own deployment spec.

use serde_json::json;
use spi_postgres::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};
use spi_postgres::Postgres;
use std::time::Duration;
use testkit::spi::instance::{credential, spawn_with_instance};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn connect(uri: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(uri, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_share_the_app_database_and_an_unbound_role_is_locked_out() {
    // The instance: this SPI's spec, run by the deployer.
    let parameters = json!({"work_mem_mb": 16});
    let (app, _deployer, instance) =
        spawn_with_instance::<Postgres>(PLAN_SMALL_ID, parameters).await;
    let endpoints = &instance.endpoints;

    // First binding: a working login to database `app`, on a server with the plan's settings.
    let first_id = common::new_request_id();
    let first = instance.bind(&app, &first_id).await;
    assert_eq!(first.credentials["database"], "app");
    assert_eq!(first.credentials["port"], endpoints[0].port);
    assert_eq!(first.endpoints[0].protocol.as_deref(), Some("tcp"));
    let jdbc = first.credentials["jdbcUrl"].as_str().unwrap();
    assert!(jdbc.starts_with(&format!(
        "jdbc:postgresql://{}:{}/app?user=",
        endpoints[0].host, endpoints[0].port
    )));
    let one = connect(&credential(&first, "uri")).await.unwrap();
    let settings = one
        .query_one(
            "SELECT current_setting('max_connections'), current_setting('work_mem')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(settings.get::<_, String>(0), "50");
    assert_eq!(settings.get::<_, String>(1), "16MB");
    one.batch_execute(
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hello')",
    )
    .await
    .unwrap();
    let body: String = one
        .query_one("SELECT body FROM notes WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(body, "hello");

    // Second binding: sees, writes and owns the same table.
    let second_id = common::new_request_id();
    let second = instance.bind(&app, &second_id).await;
    assert_ne!(
        second.credentials["username"],
        first.credentials["username"]
    );
    let two = connect(&credential(&second, "uri")).await.unwrap();
    two.execute(
        "INSERT INTO notes VALUES (2, 'from the second binding')",
        &[],
    )
    .await
    .unwrap();
    let owner: String = two
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'notes'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "app_owner");

    // Unbind the first: its open session is closed and its credentials stop working.
    instance.unbind(&app, &first_id).await;
    let mut closed = false;
    for _ in 0..50 {
        if one.query_one("SELECT 1", &[]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the unbound role's session is still open");
    let Err(refused) = connect(&credential(&first, "uri")).await else {
        panic!("the unbound role can still log in");
    };
    assert_eq!(
        refused.code(),
        Some(&SqlState::INVALID_PASSWORD),
        "{refused:?}"
    );

    // The data survives for the remaining binding.
    let count: i64 = two
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);

    // Unbinding again is fine; binding again re-keys the role.
    instance.unbind(&app, &first_id).await;
    let again = instance.rebind(&app, &second_id, &second).await;
    assert!(
        connect(&credential(&second, "uri")).await.is_err(),
        "old password still works"
    );
    let three = connect(&credential(&again, "uri")).await.unwrap();
    let count: i64 = three
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_password_is_a_500_that_reveals_nothing() {
    let (app, _deployer, instance) =
        spawn_with_instance::<Postgres>(PLAN_SMALL_ID, json!({})).await;
    let (status, id, body) = app
        .post(
            "/bindings",
            &json!({
                "instance_id": "i", "binding_id": "b",
                "service_id": SERVICE_ID, "plan_id": PLAN_SMALL_ID,
                "endpoints": instance.endpoints,
                "admin": {"username": "osb_admin", "password": "not-the-password"},
            }),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "InternalError");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains(id.as_deref().unwrap()),
        "{description}"
    );
    assert!(!description.contains("not-the-password"));
    assert!(!description.contains("osb_admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_medium_changes_the_server_and_keeps_data_and_bindings() {
    let (app, deployer, small) = spawn_with_instance::<Postgres>(PLAN_SMALL_ID, json!({})).await;
    let binding = small.bind(&app, "keeps-working").await;
    connect(&credential(&binding, "uri"))
        .await
        .unwrap()
        .batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        .await
        .unwrap();

    let medium = small
        .update(&app, &deployer, PLAN_MEDIUM_ID, json!({}))
        .await;
    assert_eq!(
        medium.description,
        "updating PostgreSQL 15 cluster to plan medium"
    );
    assert_eq!(medium.spec.name, small.spec.name);
    assert_eq!(medium.endpoints, small.endpoints);

    let client = connect(&credential(&binding, "uri")).await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('max_connections'), current_setting('shared_buffers'), (SELECT x FROM kept)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "200");
    assert_eq!(row.get::<_, String>(1), "128MB");
    assert_eq!(row.get::<_, i32>(2), 7);
}
