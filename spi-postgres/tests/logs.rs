//! Nothing secret reaches the logs, even at the most verbose level: a bind against a real
//! PostgreSQL server with every log record (tokio-postgres's included) captured at TRACE.
//! Its own test binary: it installs the process's global subscriber.

use common::deployer::DeploymentEndpoint;
use common::spi::DeploymentSpecRequest;
use serde_json::json;
use spi_kit::Bindings;
use spi_postgres::offering::{PLAN_SMALL_ID, SERVICE_ID};
use spi_postgres::Postgres;
use std::io::Write;
use std::sync::{Arc, Mutex};
use testkit::spi::{make_certs, spawn_deployer};

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_at_trace_level_logs_neither_the_password_nor_its_scram_verifier() {
    common::tls::install_default_provider();
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test binary installs the only subscriber");

    let certs = make_certs();
    let deployer = spawn_deployer(certs.path()).await;
    let offering = testkit::spi::offering::offering::<Postgres>();
    let spec = offering
        .deployment_spec(&DeploymentSpecRequest {
            instance_id: common::new_request_id().into(),
            service_id: SERVICE_ID.into(),
            plan_id: PLAN_SMALL_ID.into(),
            parameters: json!({}).as_object().cloned().unwrap(),
            previous: None,
        })
        .unwrap()
        .spec;
    let deployment = deployer.deploy(&spec).await;
    let endpoints: Vec<DeploymentEndpoint> = deployment.endpoints.clone();
    let before = captured.text().len();

    let first = Postgres::create_binding("logged-binding", &endpoints, &spec.admin)
        .await
        .unwrap();
    // Re-keying (a retried bind) goes the same way.
    let second = Postgres::create_binding("logged-binding", &endpoints, &spec.admin)
        .await
        .unwrap();
    let uri = |c: &spi_postgres::binding::BindingCredentials| {
        c.credentials["uri"].as_str().unwrap().to_string()
    };
    // The verifier reached the server: the latest password logs in, the replaced one not.
    let (client, connection) = tokio_postgres::connect(&uri(&second), tokio_postgres::NoTls)
        .await
        .expect("the new password logs in");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    assert!(tokio_postgres::connect(&uri(&first), tokio_postgres::NoTls)
        .await
        .is_err());
    let logs = captured.text();
    assert!(
        logs[before..].contains("tokio_postgres") || logs[before..].contains("executing"),
        "the capture sees tokio-postgres's debug records: {}",
        &logs[before..]
    );
    assert!(!logs.contains("SCRAM-SHA-256$"), "a verifier was logged");
    for c in [&first, &second] {
        let password = c.credentials["password"].as_str().unwrap();
        assert!(!logs.contains(password), "a password was logged");
    }
    Postgres::delete_binding("logged-binding", &endpoints, &spec.admin)
        .await
        .unwrap();
}
