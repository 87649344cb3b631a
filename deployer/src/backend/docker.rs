//! The `docker` backend: each deployment is one container on a Docker Engine, with its data in
//! a named volume:
//!
//! | engine object | name | what |
//! |---|---|---|
//! | container | `<prefix><deployment>` | the server; labels `osb.managed=true`, `osb.deployment=<name>`, `osb.config=<hash of its settings>`; restart policy `unless-stopped` |
//! | volume | `<prefix><deployment>-data` | the server's data (PGDATA, Redis' `/data` with `users.acl`) |
//!
//! What the deployer keeps under `<data_dir>/deployments/<name>/`: `instance.json` (engine,
//! image, the host port — chosen once and published on every container the deployment ever
//! gets —, admin user name, settings) and `admin.secret` (mode 0600: readiness checks after a
//! restart log in with it). A restarted deployer finds its containers by name and label and
//! adopts them; a missing container is recreated on the same volume and port.
//!
//! What the images expect of each engine is in [`image`]; the deployment's record and host
//! port in [`record`]; the engine objects in [`container`]; applies, deletes and recoveries in
//! [`apply`]; the health report in [`health`]. A settings change replaces the container (same
//! volume, same port).

mod apply;
mod container;
mod health;
mod image;
mod record;

use super::shared::{read_json, read_secret, DEPLOYMENTS_DIR, INSTANCE_FILE};
use super::{Backend, BackendError, BoxFuture, Progress};
use crate::config::DockerSettings;
use crate::engine;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse};
use bollard::Docker;
use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Engine,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Label on everything this backend creates.
pub const LABEL_MANAGED: &str = "osb.managed";
/// Label naming the deployment a container or volume belongs to.
pub const LABEL_DEPLOYMENT: &str = "osb.deployment";
/// Label holding a hash of the container's settings: a different hash means "replace it".
const LABEL_CONFIG: &str = "osb.config";
/// Seconds the engine gives a server to stop before it kills it.
const STOP_TIMEOUT_SECS: i32 = 30;
/// How often a container whose port was taken meanwhile is created again on another port.
const PORT_ATTEMPTS: u32 = 5;
const POLL: Duration = Duration::from_millis(250);
/// Timeout of one engine API call (image pulls stream and are not cut by it).
const API_TIMEOUT_SECS: u64 = 120;

/// What the backend remembers about a deployment besides its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    engine: Engine,
    image: String,
    /// The host port, chosen on the first apply and kept for good.
    host_port: u16,
    admin_username: String,
    /// The settings of the current container (to recreate it as it was).
    #[serde(default)]
    settings: BTreeMap<String, String>,
    /// Whether the volume got its first files (Redis' `users.acl`).
    #[serde(default)]
    seeded: bool,
}

/// Runs deployments as containers on a Docker Engine.
pub struct DockerBackend {
    docker: Docker,
    settings: DockerSettings,
    root: PathBuf,
}

impl DockerBackend {
    /// Connects to the engine (negotiating the API version) and keeps the deployments'
    /// records under `<data_dir>/deployments/`.
    pub async fn connect(data_dir: &Path, settings: DockerSettings) -> Result<Self, BackendError> {
        let docker = connect(&settings.socket).await?;
        let root = data_dir.join(DEPLOYMENTS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(BackendError::io(format!("creating {}", root.display())))?;
        if settings.host_ports.0 == 0 || settings.host_ports.0 > settings.host_ports.1 {
            return Err(BackendError::Invalid(format!(
                "docker.host_ports {:?} is not a range of ports",
                settings.host_ports
            )));
        }
        Ok(Self {
            docker,
            settings,
            root,
        })
    }

    /// The container of deployment `name`.
    pub fn container_name(&self, name: &str) -> String {
        format!("{}{name}", self.settings.name_prefix)
    }

    /// The data volume of deployment `name`.
    pub fn volume_name(&self, name: &str) -> String {
        format!("{}{name}-data", self.settings.name_prefix)
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn endpoint(&self, name: &str, record: &Record) -> DeploymentEndpoint {
        match &self.settings.network {
            Some(_) => DeploymentEndpoint {
                host: self.container_name(name),
                port: engine::default_port(record.engine),
            },
            None => DeploymentEndpoint {
                host: self.settings.advertise_host.clone(),
                port: record.host_port,
            },
        }
    }
}

impl Backend for DockerBackend {
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String> {
        engine::validate_spec(spec)?;
        self.image_for(spec.engine, &spec.version).map(|_| ())
    }

    fn apply<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>> {
        Box::pin(self.apply_spec(spec, progress))
    }

    fn delete<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.delete_deployment(name, progress))
    }

    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<DeploymentState, BackendError>> {
        Box::pin(async move {
            let running = self.inspect(name).await?.is_some_and(|c| is_running(&c));
            if !running {
                return Ok(DeploymentState::Stopped);
            }
            // A container that runs may hold a server that is still starting (or restarting).
            let dir = self.dir(name);
            let answers = match (read_record(&dir)?, read_secret(&dir)) {
                (Some(record), Ok(password)) => self.probe(name, &record, &password).await.is_ok(),
                _ => false,
            };
            Ok(if answers {
                DeploymentState::Running
            } else {
                DeploymentState::Stopped
            })
        })
    }

    fn recover<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>> {
        Box::pin(self.recover_deployment(name, progress))
    }

    fn health<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<DeploymentHealth, BackendError>> {
        Box::pin(async move { Ok(health::health_of(self.inspect(name).await?.as_ref())) })
    }
}

/// A client of the engine at `socket`, speaking the highest API version both sides know.
pub async fn connect(socket: &Path) -> Result<Docker, BackendError> {
    let path = socket.to_string_lossy();
    let docker = Docker::connect_with_unix(&path, API_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        .map_err(engine_error(format!("connecting to {path}")))?;
    docker
        .negotiate_version()
        .await
        .map_err(engine_error(format!("talking to the engine at {path}")))
}

fn is_running(container: &ContainerInspectResponse) -> bool {
    container
        .state
        .as_ref()
        .is_some_and(|s| s.running == Some(true))
}

fn config_label(container: &ContainerInspectResponse) -> Option<&str> {
    container
        .config
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_CONFIG)
        .map(String::as_str)
}

fn config_label_of(body: &ContainerCreateBody) -> Option<&str> {
    body.labels.as_ref()?.get(LABEL_CONFIG).map(String::as_str)
}

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

fn is_port_taken(e: &DockerError) -> bool {
    let text = e.to_string();
    text.contains("port is already allocated") || text.contains("address already in use")
}

fn engine_error(context: impl Into<String>) -> impl FnOnce(DockerError) -> BackendError {
    let context = context.into();
    move |e| BackendError::Server(format!("{context}: {e}"))
}

/// The deployment's record; `None` if it has none yet.
fn read_record(dir: &Path) -> Result<Option<Record>, BackendError> {
    read_json(&dir.join(INSTANCE_FILE))
}
