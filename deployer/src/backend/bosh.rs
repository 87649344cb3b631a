//! The `bosh` backend: each deployment is one BOSH deployment (dedicated VMs) made by a BOSH
//! Director, named `<deployment_prefix><deployment name>`, its manifest rendered from the
//! template configured for the spec's engine, major version and plan ([`manifest`]).
//!
//! What the deployer keeps under `<data_dir>/deployments/<name>/`: `instance.json` (engine,
//! admin user name, BOSH deployment name, instance group, network and port, and the Director
//! task in flight) and `admin.secret` (mode 0600: the readiness and health probes log in with
//! it). The in-flight task is recorded before the deployer polls it, so a deployer restarted
//! during a task follows that same task again instead of sending the manifest twice; its
//! context id (`X-Bosh-Context-Id`) is the deployer task's id.
//!
//! The Director client is in [`director`] (login in [`auth`], its answers in [`api`]); a task's events and the
//! progress text made of them in [`events`]; applies, deletes and the following of a task in
//! [`operation`]; endpoints, readiness and health in [`instances`]. An update is a re-deploy
//! with the new manifest; a delete of a deployment the Director does not know is done.

pub mod api;
mod auth;
pub mod director;
pub mod events;
mod instances;
pub mod manifest;
mod operation;

use super::shared::{read_json, DEPLOYMENTS_DIR, INSTANCE_FILE};
use super::{Backend, BackendError, BoxFuture, Progress};
use crate::config::BoshSettings;
use crate::engine;
use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Engine, Health,
};
use director::{Director, DirectorError};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the backend remembers about a deployment besides the admin secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    engine: Engine,
    admin_username: String,
    /// The BOSH deployment's name.
    deployment: String,
    /// The instance group running the server.
    instance_group: String,
    /// The network endpoints are on.
    network: String,
    /// The server's port.
    port: u16,
    /// The Director task this backend started and has not seen end.
    #[serde(default)]
    in_flight: Option<InFlight>,
}

/// A Director task in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    /// Director task id.
    task: u64,
    /// The `X-Bosh-Context-Id` it was started with (the deployer task's id).
    context_id: String,
    /// What it does.
    action: Action,
}

/// What a Director task of this backend does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Deploy,
    Delete,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Delete => "delete",
        }
    }
}

/// Runs deployments as BOSH deployments through a Director.
pub struct BoshBackend {
    director: Director,
    settings: BoshSettings,
    root: PathBuf,
}

impl BoshBackend {
    /// A backend talking to the Director in `settings` (nothing is called before the first
    /// operation) and keeping its records under `<data_dir>/deployments/`.
    pub fn new(data_dir: &Path, settings: BoshSettings) -> Result<Self, BackendError> {
        let director = Director::new(&settings).map_err(BackendError::Invalid)?;
        for (key, plans) in &settings.templates {
            for (plan, template) in plans {
                manifest::check_template(template).map_err(|e| {
                    BackendError::Invalid(format!("bosh.templates.{key}.{plan}: {e}"))
                })?;
            }
        }
        let root = data_dir.join(DEPLOYMENTS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(BackendError::io(format!("creating {}", root.display())))?;
        Ok(Self {
            director,
            settings,
            root,
        })
    }

    /// The BOSH deployment of deployment `name`.
    pub fn deployment_name(&self, name: &str) -> String {
        format!("{}{name}", self.settings.deployment_prefix)
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.settings.poll_interval_ms)
    }
}

impl Backend for BoshBackend {
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String> {
        engine::validate_spec(spec)?;
        manifest::template_for(&self.settings, spec).map(|_| ())
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
            Ok(match self.server_health(name).await?.status {
                Health::Healthy => DeploymentState::Running,
                _ => DeploymentState::Stopped,
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
        Box::pin(self.server_health(name))
    }
}

/// The deployment's record; `None` if it has none yet.
fn read_record(dir: &Path) -> Result<Option<Record>, BackendError> {
    read_json(&dir.join(INSTANCE_FILE))
}

/// A Director failure as the operation's error (no secret: the Director's answers hold none
/// of ours, and its descriptions name deployments and tasks).
fn director_error(context: &str) -> impl FnOnce(DirectorError) -> BackendError + '_ {
    move |e| BackendError::Server(format!("{context}: {e}"))
}
