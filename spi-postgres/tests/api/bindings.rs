//! Bindings against a real PostgreSQL 15 server, created by the real deployer from this SPI's
//! own deployment spec.

use crate::helpers::{ctx, spawn_app, spawn_deployer};
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::spi::{
    CreateBindingRequest, CreateBindingResponse, DeleteBindingRequest, DeploymentSpecRequest,
};
use serde_json::json;
use spi_postgres::offering::{PLAN_SMALL_ID, SERVICE_ID};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn connect(uri: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(uri, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn uri(binding: &CreateBindingResponse) -> String {
    binding.credentials["uri"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_share_the_app_database_and_an_unbound_role_is_locked_out() {
    let app = spawn_app().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let instance_id = common::new_request_id();

    // The instance: this SPI's spec, run by the deployer.
    let spec = app
        .spi
        .deployment_spec(
            &DeploymentSpecRequest {
                instance_id: instance_id.clone().into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                parameters: json!({"work_mem_mb": 16}).as_object().cloned().unwrap(),
                previous: None,
            },
            &ctx(),
        )
        .await
        .unwrap()
        .spec;
    let deployment = deployer.deploy(&spec).await;
    let endpoints: Vec<DeploymentEndpoint> = deployment.endpoints.clone();
    let admin: AdminCredentials = spec.admin.clone();
    let bind = |binding_id: &str| CreateBindingRequest {
        instance_id: instance_id.clone().into(),
        binding_id: binding_id.into(),
        service_id: SERVICE_ID.into(),
        plan_id: PLAN_SMALL_ID.into(),
        parameters: None,
        endpoints: endpoints.clone(),
        admin: admin.clone(),
    };
    let unbind = |binding_id: &str| DeleteBindingRequest {
        instance_id: instance_id.clone().into(),
        binding_id: binding_id.into(),
        endpoints: endpoints.clone(),
        admin: admin.clone(),
    };

    // First binding: a working login to database `app`, on a server with the plan's settings.
    let first_id = common::new_request_id();
    let first = app
        .spi
        .create_binding(&bind(&first_id), &ctx())
        .await
        .unwrap();
    assert_eq!(first.credentials["database"], "app");
    assert_eq!(first.credentials["port"], endpoints[0].port);
    assert_eq!(first.endpoints[0].protocol.as_deref(), Some("tcp"));
    let jdbc = first.credentials["jdbcUrl"].as_str().unwrap();
    assert!(jdbc.starts_with(&format!(
        "jdbc:postgresql://{}:{}/app?user=",
        endpoints[0].host, endpoints[0].port
    )));
    let one = connect(&uri(&first)).await.unwrap();
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
    let second = app
        .spi
        .create_binding(&bind(&second_id), &ctx())
        .await
        .unwrap();
    assert_ne!(
        second.credentials["username"],
        first.credentials["username"]
    );
    let two = connect(&uri(&second)).await.unwrap();
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
    app.spi
        .delete_binding(&unbind(&first_id), &ctx())
        .await
        .unwrap();
    let mut closed = false;
    for _ in 0..50 {
        if one.query_one("SELECT 1", &[]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the unbound role's session is still open");
    let Err(refused) = connect(&uri(&first)).await else {
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
    let three = connect(&uri(&again)).await.unwrap();
    let count: i64 = three
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_password_is_a_500_that_reveals_nothing() {
    let app = spawn_app().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let spec = app
        .spi
        .deployment_spec(
            &DeploymentSpecRequest {
                instance_id: common::new_request_id().into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                parameters: Default::default(),
                previous: None,
            },
            &ctx(),
        )
        .await
        .unwrap()
        .spec;
    let deployment = deployer.deploy(&spec).await;
    let (status, id, body) = app
        .post(
            "/bindings",
            &json!({
                "instance_id": "i", "binding_id": "b",
                "service_id": SERVICE_ID, "plan_id": PLAN_SMALL_ID,
                "endpoints": deployment.endpoints,
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
    let app = spawn_app().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let instance_id = common::new_request_id();
    let request = |plan_id: &str, previous| DeploymentSpecRequest {
        instance_id: instance_id.clone().into(),
        service_id: SERVICE_ID.into(),
        plan_id: plan_id.into(),
        parameters: Default::default(),
        previous,
    };
    let small = app
        .spi
        .deployment_spec(&request(PLAN_SMALL_ID, None), &ctx())
        .await
        .unwrap();
    let deployment = deployer.deploy(&small.spec).await;
    let binding = app
        .spi
        .create_binding(
            &CreateBindingRequest {
                instance_id: instance_id.clone().into(),
                binding_id: "keeps-working".into(),
                service_id: SERVICE_ID.into(),
                plan_id: PLAN_SMALL_ID.into(),
                parameters: None,
                endpoints: deployment.endpoints.clone(),
                admin: small.spec.admin.clone(),
            },
            &ctx(),
        )
        .await
        .unwrap();
    connect(&uri(&binding))
        .await
        .unwrap()
        .batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        .await
        .unwrap();

    let medium = app
        .spi
        .deployment_spec(
            &request(
                spi_postgres::offering::PLAN_MEDIUM_ID,
                Some(small.spec.clone()),
            ),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        medium.description,
        "updating PostgreSQL 15 cluster to plan medium"
    );
    assert_eq!(medium.spec.name, small.spec.name);
    let upgraded = deployer.deploy(&medium.spec).await;
    assert_eq!(upgraded.endpoints, deployment.endpoints);

    let client = connect(&uri(&binding)).await.unwrap();
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
