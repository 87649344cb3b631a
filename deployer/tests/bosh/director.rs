//! A fake Director beside a deployer configured for it, and what the tests ask of both.

use crate::helpers::*;
use common::deployer::{Deployment, DeploymentEndpoint, DeploymentSpec, Engine, Task, PLAN_LABEL};
use common::secret::SecretString;
use deployer::config::bosh::BoshSettings;
use deployer::config::{BackendKind, Settings};
use std::time::{Duration, Instant};
use testkit::bosh::{AuthKind, FakeDirector, FakeOptions, TaskState as DirectorTaskState};

/// A deployer environment and the fake Director it deploys to. Fields drop in order: the
/// Director stops its servers before the directories go.
pub struct BoshEnv {
    pub fake: FakeDirector,
    pub env: TestEnv,
    /// Adjusts the bosh settings at each start.
    pub tweak: fn(&mut BoshSettings),
}

impl BoshEnv {
    /// A fake Director with basic auth and quick steps.
    pub async fn new() -> Self {
        Self::with(FakeOptions::default()).await
    }

    /// A fake Director started with `options`.
    pub async fn with(options: FakeOptions) -> Self {
        let fake = FakeDirector::start(options).await.unwrap();
        Self {
            fake,
            env: TestEnv::new(),
            tweak: |_| {},
        }
    }

    /// A fake Director with UAA login whose tokens live `ttl`.
    pub async fn uaa(ttl: Duration) -> Self {
        Self::with(FakeOptions {
            auth: AuthKind::Uaa,
            token_ttl: ttl,
            ..FakeOptions::default()
        })
        .await
    }

    /// The `[bosh]` section for this Director ([`FakeDirector::deployer_settings`]) with
    /// this environment's timeouts and tweak.
    pub fn bosh_settings(&self) -> BoshSettings {
        let mut s = self.fake.deployer_settings();
        s.unreachable_timeout_secs = 30;
        s.ready_timeout_secs = 60;
        s.task_timeout_secs = 120;
        (self.tweak)(&mut s);
        s
    }

    /// The deployer's settings: the bosh backend on this Director.
    pub fn settings(&self) -> Settings {
        let mut settings = self.env.settings();
        settings.backend = BackendKind::Bosh;
        settings.bosh = Some(self.bosh_settings());
        settings
    }

    /// Starts a deployer on this environment.
    pub async fn start(&self) -> RunningApp {
        self.env.start_with(self.settings()).await
    }

    /// Holds the Director's tasks, has `app` apply `spec`, and waits until its Director task
    /// is processing (held there until [`FakeDirector::release_tasks`]); the deployer task.
    pub async fn apply_held(&self, app: &RunningApp, spec: &DeploymentSpec) -> Task {
        self.fake.hold_tasks();
        let task = app.client.put_deployment(spec, &ctx()).await.unwrap();
        until("the Director task is processing", || {
            self.fake.tasks().first().map(|t| t.state) == Some(DirectorTaskState::Processing)
        })
        .await;
        task
    }
}

/// A spec for `plan`.
pub fn plan_spec(
    engine: Engine,
    name: &str,
    password: &SecretString,
    plan: &str,
) -> DeploymentSpec {
    let mut spec = spec(engine, name, password, &[]);
    spec.labels.insert(PLAN_LABEL.to_string(), plan.to_string());
    spec
}

/// Waits until the deployment is `running` with endpoints.
pub async fn running(app: &RunningApp, name: &str) -> Deployment {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = app.client.get_deployment(name, &ctx()).await.unwrap();
        if d.state == common::deployer::DeploymentState::Running && !d.endpoints.is_empty() {
            return d;
        }
        assert!(Instant::now() < deadline, "not running: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A PostgreSQL client logged in as `admin`.
pub async fn pg(endpoint: &DeploymentEndpoint, password: &SecretString) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::new()
        .host(&endpoint.host)
        .port(endpoint.port)
        .user("admin")
        .password(password.expose())
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {endpoint:?}: {e}"));
    tokio::spawn(connection);
    client
}

/// `SHOW setting`.
pub async fn show(client: &tokio_postgres::Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until `check` holds on the fake Director.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many manifests were posted to the fake (one per `POST /deployments`).
pub fn posts(fake: &FakeDirector) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/deployments")
        .count()
}

/// An HTTPS client of the fake Director (as an operator's `bosh` CLI would call it), basic
/// auth, no redirects followed.
pub fn operator_client(fake: &FakeDirector) -> reqwest::Client {
    let tls = common::tls::trusting_only(&fake.ca_file()).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
