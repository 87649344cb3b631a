//! `spawn_app()`: certificates made at test time, the SPI started in-process on port 0, and
//! clients that speak to it the way the broker does. Servers are stopped on drop.

use actix_web::dev::ServerHandle;
use common::client::{CallContext, InternalClient};
use common::deployer::{DeployerClient, Deployment, DeploymentSpec, Task, TaskState};
use common::spi::SpiClient;
use common::tls::TlsFiles;
use spi_postgres::config::Settings;
use spi_postgres::startup::Application;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tempfile::TempDir;

/// The SPI under test plus what a caller needs to reach it.
pub struct TestApp {
    /// `https://127.0.0.1:<port>`.
    pub address: String,
    /// Typed client presenting the broker's certificate.
    pub spi: SpiClient,
    /// Raw HTTP client presenting the broker's certificate.
    pub http: reqwest::Client,
    /// Certificates of this test (`ca.pem`, `broker.pem`, …).
    pub certs: TempDir,
    handle: ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// The PEM files of one service in this test's bundle.
    pub fn tls_files(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(self.certs.path(), name)
    }

    /// The certificate directory.
    pub fn cert_dir(&self) -> &Path {
        self.certs.path()
    }

    /// POSTs `body` to `path` (under `/spi/v1`) and returns status, request-id header and JSON.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, Option<String>, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}/spi/v1{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request failed");
        let status = resp.status().as_u16();
        let id = resp
            .headers()
            .get(common::REQUEST_ID_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        let json = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, id, json)
    }
}

/// A context with a fixed request id.
pub fn ctx() -> CallContext {
    CallContext::with_request_id(common::new_request_id())
}

/// Writes a fresh CA and certificates for every service into a new temp dir.
pub fn make_certs() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::certs::write_bundle(
        dir.path(),
        common::certs::SERVICE_NAMES,
        &common::certs::loopback_hosts(),
    )
    .unwrap();
    dir
}

/// Logs to stderr when `TEST_LOG` is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        common::telemetry::init(common::telemetry::LogFormat::Compact, "debug");
    }
}

/// Starts the SPI with fresh certificates on a port of the kernel's choosing.
pub async fn spawn_app() -> TestApp {
    common::tls::install_default_provider();
    init_logs();
    let certs = make_certs();
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        tls: TlsFiles::in_dir(certs.path(), "spi-postgres"),
        dashboard_base_url: "https://dashboard.test".into(),
        ..Settings::default()
    };
    let app = Application::build(settings).await.expect("build failed");
    let address = format!("https://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    tokio::spawn(app.run_until_stopped());
    let broker = TlsFiles::in_dir(certs.path(), "broker");
    let http = client_with(broker.client_config().unwrap());
    let spi =
        SpiClient::new(InternalClient::new(&address, &broker, Duration::from_secs(90)).unwrap());
    TestApp {
        address,
        spi,
        http,
        certs,
        handle,
    }
}

/// A reqwest client with the given TLS config.
pub fn client_with(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The real deployer (process backend), on port 0 with a certificate from the same CA, whose
/// data lives in a temp dir. Deployments made through [`TestDeployer::deploy`] are deleted on
/// drop, even when the test failed: their servers outlive the deployer otherwise.
pub struct TestDeployer {
    /// Typed client presenting the broker's certificate.
    pub client: DeployerClient,
    handle: ServerHandle,
    created: Mutex<Vec<String>>,
    // Dropped after `drop` has deleted the deployments living in it.
    _data: TempDir,
}

/// How long a deployment or deletion may take before the test fails.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(120);

impl TestDeployer {
    /// Applies `spec`, waits for its task to succeed and returns the running deployment.
    pub async fn deploy(&self, spec: &DeploymentSpec) -> Deployment {
        {
            let mut created = self.created.lock().unwrap();
            if !created.contains(&spec.name) {
                created.push(spec.name.clone());
            }
        }
        let task = self.client.put_deployment(spec, &ctx()).await.unwrap();
        let task = wait_for_task(&self.client, task).await;
        assert_eq!(task.state, TaskState::Succeeded, "apply failed: {task:?}");
        self.client
            .get_deployment(&spec.name, &ctx())
            .await
            .unwrap()
    }
}

async fn wait_for_task(client: &DeployerClient, mut task: Task) -> Task {
    let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
    while !task.state.is_terminal() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "task still {:?} after {TASK_TIMEOUT:?}: {}",
            task.state,
            task.progress
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        task = client.get_task(&task.id, &ctx()).await.unwrap();
    }
    task
}

impl Drop for TestDeployer {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        let client = self.client.clone();
        // A thread with its own runtime: drop may run inside the test's runtime, which cannot
        // be blocked on from within.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for name in names {
                    match client.delete_deployment(&name, &ctx()).await {
                        Ok(task) => {
                            let _ = tokio::time::timeout(TASK_TIMEOUT, async {
                                let mut task = task;
                                while !task.state.is_terminal() {
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    match client.get_task(&task.id, &ctx()).await {
                                        Ok(t) => task = t,
                                        Err(_) => break,
                                    }
                                }
                            })
                            .await;
                        }
                        Err(e) => eprintln!("could not delete deployment {name}: {e}"),
                    }
                }
            });
        });
        let _ = cleanup.join();
        drop(self.handle.stop(false));
    }
}

/// Starts the deployer with the certificates in `cert_dir`.
pub async fn spawn_deployer(cert_dir: &Path) -> TestDeployer {
    let data = tempfile::tempdir().unwrap();
    let settings = deployer::config::Settings::new(
        data.path().to_path_buf(),
        TlsFiles::in_dir(cert_dir, "deployer"),
    );
    let app = deployer::startup::Application::build(settings)
        .await
        .expect("deployer build failed");
    let address = format!("https://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    tokio::spawn(app.run_until_stopped());
    let broker = TlsFiles::in_dir(cert_dir, "broker");
    let client = DeployerClient::new(
        InternalClient::new(&address, &broker, Duration::from_secs(60)).unwrap(),
    );
    TestDeployer {
        client,
        handle,
        created: Mutex::new(Vec::new()),
        _data: data,
    }
}
