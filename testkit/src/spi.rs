//! Helpers for the SPIs' own tests: [`spawn_app`] starts an SPI in-process
//! on port 0 with real mTLS (certificates made at test time) and clients that speak to it the
//! way the broker does; [`deployer::spawn_deployer`] starts the real deployer beside it and
//! [`instance`] provisions on it; the [`edge`], [`api`], [`offering`], [`spec`], [`config`]
//! and [`bindings`] checks are what every SPI must pass, generated into its tests by
//! [`crate::edge_tests!`], [`crate::api_tests!`], [`crate::offering_tests!`],
//! [`crate::spec_tests!`], [`crate::config_tests!`] and [`crate::binding_tests!`]. Servers are
//! stopped on drop, even when a test fails.

pub mod api;
pub mod bindings;
mod checks;
pub mod config;
pub mod deployer;
pub mod edge;
pub mod instance;
pub mod offering;
pub mod spec;

pub use self::deployer::{spawn_deployer, TestDeployer, TASK_TIMEOUT};

use actix_web::dev::ServerHandle;
use common::client::{CallContext, InternalClient};
use common::spi::SpiClient;
use common::tls::TlsFiles;
use spi_kit::config::Settings;
use spi_kit::startup::Application;
use spi_kit::DataService;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// Base URL of the dashboards of an SPI under test.
pub const DASHBOARD_BASE_URL: &str = "https://dashboard.test";

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

/// A context with a fresh request id.
pub fn ctx() -> CallContext {
    CallContext::with_request_id(common::new_request_id())
}

/// Writes a fresh CA and certificates for every service into a new temp dir.
pub fn make_certs() -> TempDir {
    crate::certs_for(common::certs::SERVICE_NAMES)
}

/// Starts the SPI of `S` with fresh certificates on a port of the kernel's choosing.
pub async fn spawn_app<S: DataService>() -> TestApp {
    crate::init("debug");
    let certs = make_certs();
    let settings = Settings::<S> {
        listen: "127.0.0.1:0".into(),
        tls: TlsFiles::in_dir(certs.path(), S::SERVICE.spi_name),
        dashboard_base_url: DASHBOARD_BASE_URL.into(),
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
