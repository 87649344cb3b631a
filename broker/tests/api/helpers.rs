//! `spawn_app()`: the real deployer and spi-postgres, and the broker, in-process on port 0 with
//! real mTLS (certificates made at test time), a fresh SQLite file and data dir. Guards stop
//! every server (and every PostgreSQL the deployer started) even when a test fails.

use actix_web::dev::ServerHandle;
use broker::config::{
    AuthSettings, DatabaseSettings, DeployerSettings, EncryptionKey, EncryptionSettings, Settings,
    SpiSettings, WorkerSettings,
};
use common::client::{CallContext, InternalClient};
use common::deployer::{DeployerClient, Deployment};
use common::secret::SecretString;
use common::tls::TlsFiles;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const USERNAME: &str = "platform";
pub const PASSWORD: &str = "test-password-123";
pub const SERVICE_ID: &str = spi_postgres::offering::SERVICE_ID;
pub const PLAN_SMALL: &str = spi_postgres::offering::PLAN_SMALL_ID;
pub const PLAN_MEDIUM: &str = spi_postgres::offering::PLAN_MEDIUM_ID;

/// How long a test waits for an operation to end.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

/// A service started in-process; stopped when dropped.
struct Running {
    /// The server to stop first; without one (the broker) aborting the task stops it, as a
    /// crash would.
    handle: Option<ServerHandle>,
    join: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    fn spawn<F>(handle: ServerHandle, run: F) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            handle: Some(handle),
            join: Some(tokio::spawn(run)),
        }
    }

    /// A broker: dropping its run future stops its server and aborts its journal tasks.
    fn broker(app: broker::startup::Application) -> Self {
        Self {
            handle: None,
            join: Some(tokio::spawn(app.run_until_stopped())),
        }
    }

    /// Stops the server and waits until its task (with its workers) has ended.
    async fn stop(mut self) {
        if let Some(handle) = &self.handle {
            handle.stop(false).await;
        }
        if let Some(join) = self.join.take() {
            join.abort();
            let _ = join.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Sends the stop command at once; the future only waits for it to finish.
        if let Some(handle) = &self.handle {
            drop(handle.stop(false));
        }
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}

/// Certificates, data and database directories shared by the services of one test.
pub struct TestEnv {
    pub certs: TempDir,
    pub deployer_data: TempDir,
    pub state: TempDir,
    pub encryption_key: String,
}

impl TestEnv {
    fn new() -> Self {
        testkit::init("info");
        let certs = testkit::certs_for(common::certs::SERVICE_NAMES);
        Self {
            certs,
            deployer_data: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            encryption_key: broker::crypto::generate_key(),
        }
    }

    pub fn tls(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(self.certs.path(), name)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // PostgreSQL servers outlive the deployer on purpose; a test must not leave them.
        deployer::stop_all_servers(self.deployer_data.path());
    }
}

/// The broker under test, the services behind it, and clients for all of them.
/// Fields drop in order: broker, SPIs, deployer, then the servers and directories.
pub struct TestApp {
    broker: Option<Running>,
    /// The broker as its own OS process (killed when dropped).
    pub(crate) process: Option<crate::process::BrokerProcess>,
    spi: Option<Running>,
    keyvalue: Option<Running>,
    deployer: Option<Running>,
    pub env: TestEnv,
    pub address: String,
    pub http: reqwest::Client,
    pub deployer_client: DeployerClient,
    /// The running broker's catalog cache.
    #[allow(dead_code, reason = "used by the api test binary only")]
    pub catalog: Option<std::sync::Arc<broker::catalog::CatalogCache>>,
    spi_url: String,
    keyvalue_url: Option<String>,
    deployer_url: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the stack; `tweak` adjusts the broker's settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_stack(tweak, |_| {}).await
}

/// Starts the stack; `tweak` adjusts the broker's settings, `tweak_spi` spi-postgres's.
pub async fn spawn_stack(
    tweak: impl FnOnce(&mut Settings),
    tweak_spi: impl FnOnce(&mut spi_postgres::config::Settings),
) -> TestApp {
    let mut app = spawn_services_with(false, tweak_spi).await;
    let mut settings = app.broker_settings();
    tweak(&mut settings);
    app.start_broker(settings).await;
    app
}

const ANY_PORT: &str = "127.0.0.1:0";

/// An address `127.0.0.1:<port>` on a port that is free now, for a broker process (which
/// binds it itself, again at each restart).
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Started on `listen` (port 0 picks one); the `https://localhost:<port>` URL.
async fn start_deployer(env: &TestEnv, listen: &str) -> (Running, String) {
    let settings = deployer::config::Settings {
        listen: listen.into(),
        ..deployer::config::Settings::new(
            env.deployer_data.path().to_path_buf(),
            env.tls("deployer"),
        )
    };
    let app = deployer::Application::build(settings).await.unwrap();
    let url = format!("https://localhost:{}", app.port());
    (
        Running::spawn(app.server_handle(), app.run_until_stopped()),
        url,
    )
}

/// Started on `listen` (port 0 picks one); the `https://localhost:<port>` URL.
async fn start_postgres_spi(
    env: &TestEnv,
    listen: &str,
    tweak: impl FnOnce(&mut spi_postgres::config::Settings),
) -> (Running, String) {
    let mut settings = spi_postgres::config::Settings {
        listen: listen.into(),
        tls: env.tls("spi-postgres"),
        ..Default::default()
    };
    tweak(&mut settings);
    let app = spi_postgres::startup::Application::build(settings)
        .await
        .unwrap();
    let url = format!("https://localhost:{}", app.port());
    (
        Running::spawn(app.server_handle(), app.run_until_stopped()),
        url,
    )
}

/// Started on `listen` (port 0 picks one); the `https://localhost:<port>` URL.
async fn start_keyvalue_spi(env: &TestEnv, listen: &str) -> (Running, String) {
    let settings = spi_keyvalue::config::Settings {
        listen: listen.into(),
        tls: env.tls("spi-keyvalue"),
        ..Default::default()
    };
    let app = spi_keyvalue::startup::Application::build(settings)
        .await
        .unwrap();
    let url = format!("https://localhost:{}", app.port());
    (
        Running::spawn(app.server_handle(), app.run_until_stopped()),
        url,
    )
}

/// The `127.0.0.1:<port>` address of a `https://localhost:<port>` URL.
fn address_of(url: &str) -> String {
    format!("127.0.0.1:{}", url.rsplit(':').next().unwrap())
}

/// Starts the deployer and spi-postgres (and spi-keyvalue) on ports of their choosing (a
/// restart reuses the port), no broker.
pub async fn spawn_services(with_keyvalue: bool) -> TestApp {
    spawn_services_with(with_keyvalue, |_| {}).await
}

/// [`spawn_services`], with `tweak_spi` adjusting spi-postgres's settings.
async fn spawn_services_with(
    with_keyvalue: bool,
    tweak_spi: impl FnOnce(&mut spi_postgres::config::Settings),
) -> TestApp {
    let env = TestEnv::new();
    let (deployer, deployer_url) = start_deployer(&env, ANY_PORT).await;
    let (spi, spi_url) = start_postgres_spi(&env, ANY_PORT, tweak_spi).await;
    let (keyvalue, keyvalue_url) = if with_keyvalue {
        let (running, url) = start_keyvalue_spi(&env, ANY_PORT).await;
        (Some(running), Some(url))
    } else {
        (None, None)
    };
    let deployer_client = DeployerClient::new(
        InternalClient::new(&deployer_url, &env.tls("broker"), Duration::from_secs(30)).unwrap(),
    );
    TestApp {
        broker: None,
        process: None,
        spi: Some(spi),
        keyvalue,
        deployer: Some(deployer),
        env,
        address: String::new(),
        http: reqwest::Client::new(),
        deployer_client,
        catalog: None,
        spi_url,
        keyvalue_url,
        deployer_url,
    }
}

impl TestApp {
    /// The broker's settings for this stack (SQLite file in the state dir).
    pub fn broker_settings(&self) -> Settings {
        let mut spis = vec![SpiSettings {
            name: "spi-postgres".into(),
            url: self.spi_url.clone(),
        }];
        if let Some(url) = &self.keyvalue_url {
            spis.push(SpiSettings {
                name: "spi-keyvalue".into(),
                url: url.clone(),
            });
        }
        Settings {
            listen: "127.0.0.1:0".into(),
            auth: AuthSettings {
                username: USERNAME.into(),
                password: SecretString::new(PASSWORD),
            },
            database: DatabaseSettings {
                url: format!("sqlite://{}", self.database_path().display()),
            },
            encryption: EncryptionSettings {
                current: "test".into(),
                keys: vec![EncryptionKey {
                    id: "test".into(),
                    key: SecretString::new(self.env.encryption_key.clone()),
                }],
            },
            tls: self.env.tls("broker"),
            spis,
            deployer: DeployerSettings {
                url: self.deployer_url.clone(),
            },
            worker: WorkerSettings {
                poll_interval_ms: 100,
                ..WorkerSettings::default()
            },
            ..Settings::default()
        }
    }

    /// The broker's SQLite file.
    pub fn database_path(&self) -> std::path::PathBuf {
        self.env.state.path().join("broker.sqlite")
    }

    /// Makes every client of this stack open a new connection per request, so the stack can
    /// be used from several tokio runtimes (a pooled connection belongs to the runtime that
    /// opened it).
    #[allow(dead_code, reason = "used by the conformance test binary only")]
    pub fn without_connection_reuse(&mut self) {
        self.http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let tls = self.env.tls("broker").client_config().unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        self.deployer_client =
            DeployerClient::new(InternalClient::from_reqwest(&self.deployer_url, http));
    }

    /// Starts a broker with `settings` (replacing none: stop the old one first).
    pub async fn start_broker(&mut self, settings: Settings) {
        let no_flows = broker::flows::FlowRegistry::new();
        self.start_broker_with_flows(settings, no_flows).await;
    }

    /// Starts a broker with `settings` and the event flows `flows` (replacing none).
    pub async fn start_broker_with_flows(
        &mut self,
        settings: Settings,
        flows: broker::flows::FlowRegistry,
    ) {
        let app = broker::startup::Application::builder(settings)
            .flows(flows)
            .build()
            .await
            .unwrap();
        self.address = format!("http://127.0.0.1:{}", app.port());
        self.catalog = Some(app.catalog());
        self.broker = Some(Running::broker(app));
    }

    /// Stops the broker: the server, then its journal workers, mid-operation if need be.
    pub async fn stop_broker(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.stop().await;
        }
    }

    /// The URL of spi-postgres.
    #[allow(dead_code, reason = "used by the api test binary only")]
    pub fn spi_url(&self) -> &str {
        &self.spi_url
    }

    /// Stops spi-postgres (the broker keeps running).
    pub async fn stop_spi(&mut self) {
        if let Some(spi) = self.spi.take() {
            spi.stop().await;
        }
    }

    /// Stops spi-keyvalue (the broker keeps running).
    pub async fn stop_spi_keyvalue(&mut self) {
        if let Some(spi) = self.keyvalue.take() {
            spi.stop().await;
        }
    }

    /// Starts spi-keyvalue again at its address.
    pub async fn restart_spi_keyvalue(&mut self) {
        assert!(self.keyvalue.is_none(), "stop the SPI first");
        let url = self
            .keyvalue_url
            .as_deref()
            .expect("a stack with spi-keyvalue");
        self.keyvalue = Some(start_keyvalue_spi(&self.env, &address_of(url)).await.0);
    }

    /// Stops the deployer (its PostgreSQL and Redis servers keep running).
    pub async fn stop_deployer(&mut self) {
        if let Some(deployer) = self.deployer.take() {
            deployer.stop().await;
        }
    }

    /// Starts the deployer again at its address, on the same data dir.
    pub async fn restart_deployer(&mut self) {
        assert!(self.deployer.is_none(), "stop the deployer first");
        self.deployer = Some(
            start_deployer(&self.env, &address_of(&self.deployer_url))
                .await
                .0,
        );
        // The old server closed the client's pooled connections; a request sent on one of them
        // would fail with an unexpected EOF, so the test talks to the new one afresh.
        self.deployer_client = DeployerClient::new(
            InternalClient::new(
                &self.deployer_url,
                &self.env.tls("broker"),
                Duration::from_secs(30),
            )
            .unwrap(),
        );
    }

    /// Stops the broker, the SPIs and the deployer, waiting for each (drop does it too).
    pub async fn stop_all(mut self) {
        self.stop_broker().await;
        if let Some(mut process) = self.process.take() {
            process.kill().await;
        }
        self.stop_spi().await;
        self.stop_spi_keyvalue().await;
        self.stop_deployer().await;
    }

    /// A request with Basic auth and `X-Broker-API-Version: 2.17`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.address))
            .basic_auth(USERNAME, Some(PASSWORD))
            .header("X-Broker-API-Version", "2.17")
    }

    pub async fn provision(&self, id: &str, body: &Value, accepts_incomplete: bool) -> Answer {
        let query = if accepts_incomplete {
            "?accepts_incomplete=true"
        } else {
            ""
        };
        Answer::from(
            self.request(
                reqwest::Method::PUT,
                &format!("/v2/service_instances/{id}{query}"),
            )
            .json(body)
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    pub async fn deprovision(&self, id: &str) -> Answer {
        Answer::from(
            self.request(
                reqwest::Method::DELETE,
                &format!(
                    "/v2/service_instances/{id}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"
                ),
            )
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::from(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn bind(&self, id: &str, binding: &str, body: &Value) -> Answer {
        self.put_binding(id, binding, body, "").await
    }

    /// A bind with `accepts_incomplete=true`.
    pub async fn bind_incomplete(&self, id: &str, binding: &str, body: &Value) -> Answer {
        self.put_binding(id, binding, body, "?accepts_incomplete=true")
            .await
    }

    async fn put_binding(&self, id: &str, binding: &str, body: &Value, query: &str) -> Answer {
        Answer::from(
            self.request(
                reqwest::Method::PUT,
                &format!("/v2/service_instances/{id}/service_bindings/{binding}{query}"),
            )
            .json(body)
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    pub async fn unbind(&self, id: &str, binding: &str) -> Answer {
        Answer::from(
            self.request(
                reqwest::Method::DELETE,
                &format!(
                    "/v2/service_instances/{id}/service_bindings/{binding}?service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"
                ),
            )
            .send()
            .await
            .unwrap(),
        )
        .await
    }

    /// Provisions a new instance (plan small, no parameters) and waits until it is ready; its
    /// id.
    pub async fn provisioned(&self) -> String {
        let id = new_id();
        let answer = self.provision(&id, &provision_body(json!({})), true).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        let (last, _) = self.wait_for_instance(&id, &answer.operation()).await;
        assert_eq!(last["state"], "succeeded", "{last}");
        id
    }

    /// Polls the instance's last_operation until it ends; the final answer and every
    /// description seen on the way.
    pub async fn wait_for_instance(&self, id: &str, operation: &str) -> (Value, Vec<String>) {
        self.wait_for(&format!(
            "/v2/service_instances/{id}/last_operation?operation={operation}"
        ))
        .await
    }

    /// Polls the instance's last_operation until its description shows the deployer at work
    /// (`<what>: <deployer progress>`); asserts it stays in progress meanwhile.
    pub async fn wait_until_deploying(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = self
                .get(&format!("/v2/service_instances/{id}/last_operation"))
                .await;
            assert_eq!(last.body["state"], "in progress", "{last:?}");
            if last.body["description"]
                .as_str()
                .is_some_and(|d| d.contains(": "))
            {
                return;
            }
            assert!(Instant::now() < deadline, "never reached the deployer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls a binding's last_operation until it ends.
    pub async fn wait_for_binding(
        &self,
        id: &str,
        binding: &str,
        operation: &str,
    ) -> (Value, Vec<String>) {
        self.wait_for(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}/last_operation?operation={operation}"
        ))
        .await
    }

    async fn wait_for(&self, path: &str) -> (Value, Vec<String>) {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let answer = self.get(path).await;
            assert_eq!(answer.status, 200, "last_operation: {answer:?}");
            let description = answer.body["description"].as_str().unwrap_or_default();
            if seen.last().map(String::as_str) != Some(description) {
                seen.push(description.to_string());
            }
            match answer.body["state"].as_str() {
                Some("in progress") => {
                    assert!(
                        answer.retry_after.is_some(),
                        "an operation in progress carries Retry-After"
                    );
                }
                Some(_) => return (answer.body, seen),
                None => panic!("last_operation without a state: {answer:?}"),
            }
            assert!(
                Instant::now() < deadline,
                "operation did not end; descriptions seen: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The deployments the deployer knows.
    pub async fn deployments(&self) -> Vec<Deployment> {
        self.deployer_client
            .list_deployments(&CallContext::with_request_id(common::new_request_id()))
            .await
            .unwrap()
    }

    /// Asserts that the instance is not there for the platform, and that the deployer runs
    /// nothing.
    pub async fn assert_no_instance(&self, id: &str) {
        let fetched = self.get(&format!("/v2/service_instances/{id}")).await;
        assert_eq!(fetched.status, 404, "GET instance: {fetched:?}");
        let last = self
            .get(&format!("/v2/service_instances/{id}/last_operation"))
            .await;
        assert_eq!(last.status, 404, "last_operation: {last:?}");
        assert!(
            self.deployments().await.is_empty(),
            "the deployer has deployments"
        );
    }
}

/// An HTTP answer: status, JSON body and the headers the tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: Option<String>,
    pub request_id: Option<String>,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
}

impl Answer {
    pub async fn from(resp: reqwest::Response) -> Self {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let content_type = header("content-type");
        let request_id = header("x-broker-api-request-identity");
        let retry_after = header("retry-after");
        let www_authenticate = header("www-authenticate");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"));
        Self {
            status,
            body,
            content_type,
            request_id,
            retry_after,
            www_authenticate,
        }
    }

    /// The `operation` of a 202.
    pub fn operation(&self) -> String {
        self.body["operation"]
            .as_str()
            .unwrap_or_else(|| panic!("no operation in {self:?}"))
            .to_string()
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A Cloud Foundry style provision body for the small plan.
pub fn provision_body(parameters: Value) -> Value {
    json!({
        "service_id": SERVICE_ID,
        "plan_id": PLAN_SMALL,
        "organization_guid": "org-1",
        "space_guid": "space-1",
        "context": {
            "platform": "cloudfoundry",
            "organization_guid": "org-1",
            "space_guid": "space-1",
            "instance_name": "my-db"
        },
        "parameters": parameters,
    })
}

pub fn bind_body() -> Value {
    json!({
        "service_id": SERVICE_ID,
        "plan_id": PLAN_SMALL,
        "bind_resource": {"app_guid": "app-1"},
    })
}

/// Connects with a binding's `uri` and runs a query; the error text when that fails.
pub async fn query_with(uri: &str) -> Result<String, String> {
    let (client, connection) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let rows = client
        .simple_query("SELECT current_user")
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = conn.await;
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| "no row".to_string())
}

/// The key-value offering's small plan (a Redis server: quick to deploy).
pub const KEYVALUE_SERVICE_ID: &str = spi_keyvalue::offering::SERVICE_ID;
pub const KEYVALUE_PLAN: &str = spi_keyvalue::offering::PLAN_SMALL_ID;

/// A provision body for the key-value offering.
pub fn keyvalue_provision_body() -> Value {
    json!({
        "service_id": KEYVALUE_SERVICE_ID,
        "plan_id": KEYVALUE_PLAN,
        "organization_guid": "org-1",
        "space_guid": "space-1",
    })
}

/// A bind body for the key-value offering.
pub fn keyvalue_bind_body() -> Value {
    json!({"service_id": KEYVALUE_SERVICE_ID, "plan_id": KEYVALUE_PLAN})
}

impl TestApp {
    /// Provisions a key-value instance and waits until it is ready; its id.
    pub async fn provision_keyvalue(&self) -> String {
        let id = new_id();
        let answer = self.provision(&id, &keyvalue_provision_body(), true).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        let (last, _) = self.wait_for_instance(&id, &answer.operation()).await;
        assert_eq!(last["state"], "succeeded", "{last}");
        id
    }

    /// A DELETE of a key-value instance (`binding: None`) or binding, with
    /// `accepts_incomplete=true`.
    pub async fn delete_keyvalue(&self, id: &str, binding: Option<&str>) -> Answer {
        let path = match binding {
            Some(b) => format!("/v2/service_instances/{id}/service_bindings/{b}"),
            None => format!("/v2/service_instances/{id}"),
        };
        let query = format!(
            "?accepts_incomplete=true&service_id={KEYVALUE_SERVICE_ID}&plan_id={KEYVALUE_PLAN}"
        );
        Answer::from(
            self.request(reqwest::Method::DELETE, &format!("{path}{query}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The directory of a deployment of the deployer.
    pub fn deployment_dir(&self, deployment: &str) -> std::path::PathBuf {
        self.env
            .deployer_data
            .path()
            .join("deployments")
            .join(deployment)
    }

    /// The pid of a deployment's server (Redis' pid file, or PostgreSQL's postmaster.pid).
    fn server_pid_of(&self, deployment: &str) -> u32 {
        let dir = self.deployment_dir(deployment);
        let redis = dir.join("redis.pid");
        let pid_file = if redis.exists() {
            redis
        } else {
            dir.join("pgdata/postmaster.pid")
        };
        testkit::pid_from(&pid_file)
    }

    /// SIGKILLs the Redis server of a key-value deployment (the deployer's supervision starts
    /// it again).
    pub fn kill_redis_of(&self, deployment: &str) {
        deployer::sys::send_signal(self.server_pid_of(deployment), deployer::sys::SIGKILL).unwrap();
    }

    /// SIGSTOPs a deployment's server: it hangs (the SPI's calls time out and answer 503)
    /// while its process stays alive, so supervision sees nothing to restart.
    pub fn pause_server_of(&self, deployment: &str) {
        deployer::sys::send_signal(self.server_pid_of(deployment), libc::SIGSTOP).unwrap();
    }

    /// SIGCONTs a server paused by [`Self::pause_server_of`].
    pub fn resume_server_of(&self, deployment: &str) {
        deployer::sys::send_signal(self.server_pid_of(deployment), libc::SIGCONT).unwrap();
    }
}
