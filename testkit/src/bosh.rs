//! A fake BOSH Director for the tests of the deployer's `bosh` backend: a **stand-in** for a
//! real Director (which cannot run on a test machine), speaking the part of the Director's
//! HTTP API the backend uses, and **really starting the servers** a manifest asks for, like a
//! CPI whose VMs are processes.
//!
//! What it does:
//! - HTTPS on `127.0.0.1:<port 0>` with a CA of its own ([`FakeDirector::ca_pem`],
//!   [`FakeDirector::ca_file`]); `GET /info` without auth (`user_authentication.type`
//!   `basic` or `uaa`, the UAA being this server at `/uaa`, token endpoint
//!   `/uaa/oauth/token`); every other route `401` + `WWW-Authenticate: Basic realm="BOSH
//!   Director"` without valid credentials; UAA tokens expire after a TTL.
//! - `POST /deployments` (exactly `Content-Type: text/yaml`) → `302 Location:
//!   https://127.0.0.1:<port>/tasks/<id>`; tasks go `queued` → `processing` → `done` |
//!   `error`, one at a time per deployment; events as JSON lines at
//!   `GET /tasks/<id>/output?type=event` with `Range` (206 / 416 / 204); `GET /tasks/<id>`,
//!   `GET /tasks?state=…&deployment=…&context_id=…`; `X-Bosh-Context-Id` kept as the task's
//!   `context_id`.
//! - Each instance of each instance group is a "VM": a loopback IP of its own (`127.x.y.z`,
//!   from a block this fake claims) and, for each job whose `properties.osb` asks for one
//!   (`engine`, `version`, `port`, `admin`, `settings`), a real PostgreSQL or Redis run by the
//!   deployer's process backend on `ip:port` (see [`vms`]). A re-deploy with changed
//!   settings restarts the server with them; the same manifest again is a no-op task; fewer
//!   instances delete VMs.
//! - `GET /deployments`, `GET /deployments/<name>` (`{"manifest": …}` or 404 code 70000),
//!   `GET /deployments/<name>/instances` (and `/vms`), `DELETE /deployments/<name>` (302 to
//!   a task that stops the servers and removes their data; unknown: 404 code 70000).
//! - Knobs: tasks ending `error` / `cancelled` / `timeout` ([`FakeDirector::fail_next_task`],
//!   [`FakeDirector::fail_deployment`]), tasks held in `processing`
//!   ([`FakeDirector::hold_tasks`]), the step delay, the token TTL, the listener stopped and
//!   started again on the same port ([`FakeDirector::go_down`], [`FakeDirector::come_back`]),
//!   UAA tokens revoked ([`FakeDirector::revoke_tokens`]), a mutating request that makes its
//!   task but is never answered ([`FakeDirector::leave_next_unanswered`]), and what it
//!   received ([`FakeDirector::manifests`], [`FakeDirector::requests`] with their answers'
//!   statuses, [`FakeDirector::tasks`]). Dropping it stops every server it started and
//!   removes their data.
//!
//! What it does not do: releases, stemcells, cloud configs, variables, links, errands,
//! `?format=full` instance details, task cancellation through the API, `recreate` /
//! `dry_run`, teams or any scope check; it does not parse more of a manifest than the
//! instance groups' names, counts, azs and jobs. A server's settings go into its config
//! file (the process backend's way), not onto its command line; a job's port cannot change
//! on a re-deploy.

mod auth;
mod deployer_settings;
mod knobs;
mod manifest;
mod routes;
mod runner;
mod state;
mod tasks;
pub mod vms;

pub use deployer_settings::one_vm;

pub use auth::{AuthConfig, TOKEN_PATH};
pub use knobs::TaskEnd;
pub use routes::{CONTEXT_ID_HEADER, DEPLOYMENT_NOT_FOUND, TASK_NOT_FOUND};
pub use state::RecordedRequest;
pub use tasks::{Task, TaskState};

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use common::secret::SecretString;
use knobs::{lock, Knobs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use state::Director;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// How a fake Director authenticates its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// HTTP basic auth (user `admin`, a random password).
    Basic,
    /// UAA client credentials (client `osb-deployer`, a random secret).
    Uaa,
}

/// How to start a fake Director.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Basic or UAA.
    pub auth: AuthKind,
    /// Lifetime of UAA tokens (changeable later with [`FakeDirector::set_token_ttl`]).
    pub token_ttl: Duration,
    /// Pause before each step of a task (changeable with [`FakeDirector::set_step_delay`]).
    pub step_delay: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            auth: AuthKind::Basic,
            token_ttl: Duration::from_secs(600),
            step_delay: Duration::from_millis(20),
        }
    }
}

/// A running fake Director; dropping it stops it and every server it started.
pub struct FakeDirector {
    director: Arc<Director>,
    tls: rustls::ServerConfig,
    port: u16,
    handle: Mutex<Option<ServerHandle>>,
    secret_file: PathBuf,
    dir: TempDir,
}

impl FakeDirector {
    /// Starts a fake Director on `127.0.0.1:0` (call inside a tokio runtime: its tasks and
    /// servers run on that runtime).
    pub async fn start(options: FakeOptions) -> anyhow::Result<Self> {
        crate::init("info");
        let dir = tempfile::Builder::new()
            .prefix("osb-fake-director-")
            .tempdir()?;
        vms::create_traversable_dir(dir.path()).map_err(anyhow::Error::msg)?;
        common::certs::write_bundle(dir.path(), &["director"], &common::certs::loopback_hosts())?;
        let tls = server_tls(dir.path())?;
        let secret = common::secret::random_password(24);
        let auth = match options.auth {
            AuthKind::Basic => AuthConfig::Basic {
                username: "admin".into(),
                password: secret.clone(),
            },
            AuthKind::Uaa => AuthConfig::Uaa {
                client: "osb-deployer".into(),
                secret: secret.clone(),
            },
        };
        let secret_file = dir.path().join("client-secret");
        deployer::store::write_atomic(&secret_file, secret.expose().as_bytes(), 0o600)?;
        let vm_root = dir.path().join("vms");
        vms::create_traversable_dir(&vm_root).map_err(anyhow::Error::msg)?;
        let knobs = Knobs::new(options.step_delay, options.token_ttl);
        let director = Arc::new(Director::new(auth, knobs, vms::IpBlock::claim()?, vm_root));
        let (port, handle) = serve(&director, tls.clone(), 0)?;
        let _ = director.base_url.set(format!("https://127.0.0.1:{port}"));
        Ok(Self {
            director,
            tls,
            port,
            handle: Mutex::new(Some(handle)),
            secret_file,
            dir,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.director.url("")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The UAA's URL (`<url>/uaa`), as `/info` advertises it in UAA mode.
    pub fn uaa_url(&self) -> String {
        self.director.url("/uaa")
    }

    /// The PEM of the CA that signed its certificate.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_file()).expect("the fake Director's CA file")
    }

    /// The file of that CA.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Basic user or UAA client id, and its password or secret.
    pub fn credentials(&self) -> (String, SecretString) {
        match &self.director.auth {
            AuthConfig::Basic { username, password } => (username.clone(), password.clone()),
            AuthConfig::Uaa { client, secret } => (client.clone(), secret.clone()),
        }
    }

    /// A file (mode 0600) holding the password or client secret (`client_secret_file`).
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// The directory holding one directory per VM (each VM's servers and data).
    pub fn vm_root(&self) -> PathBuf {
        self.dir.path().join("vms")
    }

    /// How clients authenticate.
    pub fn auth(&self) -> &AuthConfig {
        &self.director.auth
    }

    /// The next task that reaches its work ends `end` instead of doing it.
    pub fn fail_next_task(&self, end: TaskEnd) {
        self.director.knobs.fail_next(end);
    }

    /// Every task of `deployment` ends `end` (`None`: they work again).
    pub fn fail_deployment(&self, deployment: &str, end: Option<TaskEnd>) {
        self.director.knobs.fail_deployment(deployment, end);
    }

    /// Holds tasks in `processing` (after the "Preparing deployment" events) until
    /// [`FakeDirector::release_tasks`].
    pub fn hold_tasks(&self) {
        self.director.knobs.set_hold(true);
    }

    /// Lets held tasks go on.
    pub fn release_tasks(&self) {
        self.director.knobs.set_hold(false);
    }

    /// Sets the pause before each step of a task.
    pub fn set_step_delay(&self, delay: Duration) {
        self.director.knobs.set_step_delay(delay);
    }

    /// Sets the lifetime of the UAA tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.director.knobs.set_token_ttl(ttl);
    }

    /// Forgets every UAA token issued so far, as a UAA that revoked them: the next call
    /// with one is answered 401.
    pub fn revoke_tokens(&self) {
        self.director.revoke_tokens();
    }

    /// The next `POST /deployments` or `DELETE /deployments/<name>` makes its task (which
    /// runs) but is never answered: its client waits until its own timeout, or until
    /// [`FakeDirector::go_down`] breaks the connection, as when an answer is lost.
    pub fn leave_next_unanswered(&self) {
        self.director.knobs.leave_next_unanswered();
    }

    /// Every manifest posted, in order.
    pub fn manifests(&self) -> Vec<String> {
        self.director.manifests()
    }

    /// Every request received, in order of arrival (`Authorization` redacted), with the
    /// status it was answered with.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.director.requests()
    }

    /// Every task, newest first.
    pub fn tasks(&self) -> Vec<Task> {
        self.director.tasks()
    }

    /// A task's event output (JSON lines).
    pub fn task_events(&self, id: u64) -> Option<String> {
        self.director.task(id).map(|t| t.events)
    }

    /// Stops the listener (open connections are dropped); tasks and servers go on.
    pub async fn go_down(&self) {
        let handle = lock(&self.handle).take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Listens again on the same port after [`FakeDirector::go_down`].
    pub async fn come_back(&self) -> anyhow::Result<()> {
        if lock(&self.handle).is_some() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match serve(&self.director, self.tls.clone(), self.port) {
                Ok((_, handle)) => {
                    *lock(&self.handle) = Some(handle);
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for FakeDirector {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.handle).take() {
            // `stop` sends the command at once; the future only waits for completion.
            drop(handle.stop(false));
        }
        // No task may start a server after this.
        self.director.abort_tasks();
        for vm in self.director.all_vms() {
            vm.stop_now();
        }
    }
}

/// The Director's TLS: its certificate from the bundle in `dir`, no client certificates.
fn server_tls(dir: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain =
        CertificateDer::pem_file_iter(dir.join("director.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("director-key.pem"))?;
    Ok(
        rustls::ServerConfig::builder_with_provider(common::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?,
    )
}

/// Serves the Director on `127.0.0.1:port`; returns the bound port and the server's handle.
fn serve(
    director: &Arc<Director>,
    tls: rustls::ServerConfig,
    port: u16,
) -> anyhow::Result<(u16, ServerHandle)> {
    let data = web::Data::from(Arc::clone(director));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(auth::guard))
            .configure(routes::configure)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .bind_rustls_0_23(("127.0.0.1", port), tls)
    .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let port = server.addrs().first().context("no bound address")?.port();
    let server = server.run();
    let handle = server.handle();
    director.runtime.spawn(server);
    Ok((port, handle))
}
