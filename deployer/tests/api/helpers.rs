//! `spawn_app()` and what the tests share: certificates made at test time, a data dir, guards
//! that stop the deployer and every server it started even when a test fails.

use common::client::{CallContext, InternalClient};
use common::deployer::{AdminCredentials, DeployerClient, DeploymentSpec, Engine, Task, TaskState};
use common::secret::{random_password, SecretString};
use common::tls::TlsFiles;
use deployer::config::Settings;
use deployer::Application;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Certificates and a data dir that outlive one deployer process (for restart tests).
pub struct TestEnv {
    pub certs: TempDir,
    pub data: TempDir,
    /// Set: the deployer runs the docker backend with these settings.
    pub docker: Option<deployer::config::DockerSettings>,
    /// Adjusts the deployer's settings at each start.
    pub tweak: fn(&mut Settings),
}

impl TestEnv {
    pub fn new() -> Self {
        testkit::init("info");
        let certs = testkit::certs_for(&["deployer", "broker"]);
        Self {
            certs,
            data: tempfile::tempdir().unwrap(),
            docker: None,
            tweak: |_| {},
        }
    }

    /// An environment whose deployer runs the docker backend with the local test images and
    /// its own container name prefix; `None` (with the reason printed) without an engine.
    pub fn docker() -> Option<Self> {
        if let Err(reason) = testkit::docker::engine_with_data_images() {
            eprintln!("SKIPPED: {reason}");
            return None;
        }
        let mut env = Self::new();
        env.docker = Some(testkit::docker::local_image_settings());
        Some(env)
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// What the broker presents when it calls the deployer.
    pub fn client_tls(&self) -> TlsFiles {
        TlsFiles::in_dir(self.certs.path(), "broker")
    }

    /// The settings of a deployer on this data dir.
    pub fn settings(&self) -> Settings {
        Settings::new(
            self.data.path().to_path_buf(),
            TlsFiles::in_dir(self.certs.path(), "deployer"),
        )
    }

    /// Starts a deployer on this data dir.
    pub async fn start(&self) -> RunningApp {
        let mut settings = self.settings();
        if let Some(docker) = &self.docker {
            settings.backend = deployer::config::BackendKind::Docker;
            settings.docker = docker.clone();
        }
        (self.tweak)(&mut settings);
        self.start_with(settings).await
    }

    /// Starts a deployer with `settings`.
    pub async fn start_with(&self, settings: Settings) -> RunningApp {
        let app = Application::build(settings).await.unwrap();
        let port = app.port();
        let handle = app.server_handle();
        let join = tokio::spawn(app.run_until_stopped());
        let base_url = format!("https://localhost:{port}");
        let inner =
            InternalClient::new(&base_url, &self.client_tls(), Duration::from_secs(30)).unwrap();
        RunningApp {
            base_url,
            client: DeployerClient::new(inner),
            handle,
            join: Some(join),
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Servers outlive the deployer on purpose; a test must not leave them behind.
        match &self.docker {
            Some(docker) => testkit::docker::remove_all(&docker.name_prefix),
            None => {
                deployer::stop_all_servers(self.data.path());
            }
        }
    }
}

/// One running deployer.
pub struct RunningApp {
    pub base_url: String,
    pub client: DeployerClient,
    handle: actix_web::dev::ServerHandle,
    join: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningApp {
    /// Stops the deployer (not its servers) and waits until it has stopped.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(join) = self.join.take() {
            join.await.unwrap().unwrap();
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the future only waits for it to finish.
        drop(self.handle.stop(false));
    }
}

/// A deployer with its own certificates and data dir. Fields drop in order: the deployer
/// stops first, then the servers, then the directories go.
pub struct TestApp {
    pub app: RunningApp,
    pub env: TestEnv,
}

impl std::ops::Deref for TestApp {
    type Target = RunningApp;
    fn deref(&self) -> &RunningApp {
        &self.app
    }
}

pub async fn spawn_app() -> TestApp {
    let env = TestEnv::new();
    let app = env.start().await;
    TestApp { app, env }
}

pub fn ctx() -> CallContext {
    CallContext::with_request_id(common::new_request_id())
}

pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn spec(
    engine: Engine,
    name: &str,
    password: &SecretString,
    settings: &[(&str, &str)],
) -> DeploymentSpec {
    DeploymentSpec {
        name: name.into(),
        engine,
        version: match engine {
            Engine::Postgresql => "15".into(),
            Engine::Redis => "7".into(),
        },
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        admin: AdminCredentials {
            username: "admin".into(),
            password: password.clone(),
        },
        labels: BTreeMap::from([("instance".to_string(), name.to_string())]),
    }
}

pub fn password() -> SecretString {
    random_password(24)
}

/// Polls a task until it ends (or fails the test after two minutes).
pub async fn wait_for_task(client: &DeployerClient, id: &str) -> Task {
    wait_for_task_progress(client, id).await.0
}

/// Polls a task until it ends; returns it and every progress message seen on the way.
pub async fn wait_for_task_progress(client: &DeployerClient, id: &str) -> (Task, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let task = client.get_task(id, &ctx()).await.unwrap();
        if seen.last() != Some(&task.progress) {
            seen.push(task.progress.clone());
        }
        if task.state.is_terminal() {
            return (task, seen);
        }
        assert!(Instant::now() < deadline, "task {id} did not end: {task:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies `spec` and waits for the task to succeed.
pub async fn apply_ok(client: &DeployerClient, spec: &DeploymentSpec) -> Task {
    let task = client.put_deployment(spec, &ctx()).await.unwrap();
    let done = wait_for_task(client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    done
}

pub fn deployment_dir(data_dir: &Path, name: &str) -> PathBuf {
    deployer::deployment_dir(data_dir, name)
}

pub use testkit::pid_from;

pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until `pid` is gone (it may take the kernel a moment after SIGKILL).
pub async fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(pid) && !is_zombie(pid) {
        assert!(Instant::now() < deadline, "process {pid} still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
