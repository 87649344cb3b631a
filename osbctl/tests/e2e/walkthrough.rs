//! The README walkthrough as a test: catalog → provision → bind → use → unbind → deprovision.

use crate::helpers::{postmaster_pid, TestStack};
use common::osb::OperationState;
use osbctl::osb_client::Target;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn poll_instance(
    osb: &osbctl::osb_client::OsbClient,
    id: &str,
    op: Option<&str>,
) -> (OperationState, Vec<String>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let (status, lo) = osb
            .last_operation(Target::Instance(id), op)
            .await
            .expect("last_operation answers");
        assert_eq!(status, 200, "last_operation status");
        let lo = lo.expect("last_operation body");
        if let Some(d) = &lo.description {
            if seen.last() != Some(d) {
                seen.push(d.clone());
            }
        }
        if lo.state != OperationState::InProgress {
            return (lo.state, seen);
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "operation still in progress after 120 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_gets_a_working_postgresql_database_and_everything_is_gone_after_deprovision() {
    let t = TestStack::start().await;
    let osb = t.stack().osb_client().unwrap();

    // catalog
    let catalog = osb.catalog().await.unwrap();
    let pg = catalog
        .services
        .iter()
        .find(|s| s.name == "postgresql")
        .expect("the catalog offers postgresql");
    assert!(pg.plans.len() >= 2);
    let (service_id, plan_id) = osbctl::cli::resolve(&catalog, "postgresql", "small").unwrap();

    // provision, async
    let instance = "e2e-instance-1";
    let a = osb
        .call(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{instance}?accepts_incomplete=true"),
            Some(&json!({
                "service_id": service_id, "plan_id": plan_id,
                "organization_guid": "org", "space_guid": "space",
                "context": {"platform": "cloudfoundry", "organization_guid": "org", "space_guid": "space",
                            "organization_name": "o", "space_name": "s", "instance_name": "db"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 202, "provision answers 202: {:?}", a.body);
    let op = a.operation().expect("202 carries an operation").to_string();
    assert!(a
        .body
        .get("dashboard_url")
        .and_then(Value::as_str)
        .is_some());

    let (state, descriptions) = poll_instance(&osb, instance, Some(&op)).await;
    assert_eq!(state, OperationState::Succeeded, "{descriptions:?}");
    assert!(
        descriptions.iter().any(|d| d.contains("PostgreSQL")),
        "progress a person can follow: {descriptions:?}"
    );

    // where the server lives
    let deployments = t.stack().deployer_client().unwrap();
    let list = deployments
        .list_deployments(&Default::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "one deployment: {list:?}");
    let deployment_dir = t.deployments_dir().join(&list[0].name);
    let pid = postmaster_pid(&deployment_dir.join("pgdata")).expect("server running");
    assert!(deployer::sys::is_alive(pid));

    // bind
    let binding = "e2e-binding-1";
    let b = osb
        .call(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{instance}/service_bindings/{binding}?accepts_incomplete=true"),
            Some(&json!({"service_id": service_id, "plan_id": plan_id, "bind_resource": {"app_guid": "app-1"}})),
        )
        .await
        .unwrap();
    assert_eq!(b.status, 201, "bind answers 201: {:?}", b.body);
    let creds = b.body.get("credentials").expect("credentials").clone();
    for key in [
        "uri", "jdbcUrl", "host", "port", "database", "username", "password",
    ] {
        assert!(creds.get(key).is_some(), "credentials carry {key}: {creds}");
    }
    let uri = creds["uri"].as_str().unwrap().to_string();

    // use it
    let (client, conn) = tokio_postgres::connect(&uri, tokio_postgres::NoTls)
        .await
        .expect("the binding's URI connects");
    let conn = tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE notes (t text); INSERT INTO notes VALUES ('hello')")
        .await
        .unwrap();
    let rows = client.query("SELECT t FROM notes", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "hello");
    drop(client);
    let _ = conn.await;

    // unbind → the credentials stop working
    let u = osb
        .unbind(instance, binding, &service_id, &plan_id)
        .await
        .unwrap();
    assert_eq!(u.status, 200, "unbind answers 200: {:?}", u.body);
    let err = tokio_postgres::connect(&uri, tokio_postgres::NoTls)
        .await
        .err()
        .expect("logging in with unbound credentials fails");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "login refused: {err:?}"
    );

    // deprovision → server and data gone
    let d = osb
        .deprovision(instance, &service_id, &plan_id)
        .await
        .unwrap();
    assert_eq!(d.status, 202, "deprovision answers 202: {:?}", d.body);
    let (state, descriptions) = poll_instance(&osb, instance, d.operation()).await;
    assert_eq!(state, OperationState::Succeeded, "{descriptions:?}");
    assert!(
        !deployer::sys::is_alive(pid),
        "the PostgreSQL process is gone"
    );
    assert!(!deployment_dir.exists(), "its data directory is removed");
    assert!(deployments
        .list_deployments(&Default::default())
        .await
        .unwrap()
        .is_empty());
}
