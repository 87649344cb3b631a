//! The orchestrator contract: a [`Backend`] turns a deployment spec into running servers and
//! removes them again. The deployer's task runner calls it one operation at a time per
//! deployment; a backend only has to make each operation idempotent. A backend also keeps
//! the servers it started running (restarting one that dies, within a crash-loop limit) and
//! reports their [`DeploymentHealth`].
//!
//! A backend holds only orchestration (how a server is started, stopped, found again and
//! supervised): what PostgreSQL and Redis need is in [`crate::engine`], and what every
//! backend keeps alike about a deployment (its directory, record and admin secret) in
//! [`shared`].

pub mod bosh;
pub mod docker;
pub mod process;
pub mod shared;

use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Health,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so that [`Backend`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a backend operation failed; the message is shown to clients and must hold no secret.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The spec cannot be applied as asked (engine change, unsupported version, bad setting).
    #[error("{0}")]
    Invalid(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (`initdb`, …) failed.
    #[error("{what} failed ({status}): {output}")]
    Command {
        /// Which command.
        what: String,
        /// Exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The server did not start, did not become ready, or did not stop.
    #[error("{0}")]
    Server(String),
}

impl BackendError {
    /// An [`BackendError::Io`] with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Lets a backend tell the task's client what it is doing ("running initdb", "ready"), and
/// names the deployer task it works for (an orchestrator may tag its own work with it).
#[derive(Clone)]
pub struct Progress {
    report: Arc<dyn Fn(&str) + Send + Sync>,
    task_id: Option<String>,
}

impl Progress {
    /// Progress reported to `report`, for no task in particular.
    pub fn new(report: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            report: Arc::new(report),
            task_id: None,
        }
    }

    /// Progress of deployer task `task_id`, reported to `report`.
    pub fn for_task(task_id: &str, report: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            task_id: Some(task_id.to_string()),
            ..Self::new(report)
        }
    }

    /// Progress nobody watches (recovery at start-up).
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    /// Reports what is happening now.
    pub fn set(&self, message: &str) {
        (self.report)(message);
    }

    /// The deployer task this progress belongs to, if any.
    pub fn task_id(&self) -> Option<&str> {
        self.task_id.as_deref()
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// An orchestrator that runs deployments.
pub trait Backend: Send + Sync {
    /// Checks a spec before it is accepted; the message explains a refusal to the client.
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String>;

    /// Creates the deployment or brings it to `spec`; the same spec again changes nothing.
    /// Returns where the server listens.
    fn apply<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>>;

    /// Stops the deployment's servers and removes its data; an unknown name is already gone.
    fn delete<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Whether the deployment's server is up (`Running`) or not (`Stopped`).
    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<DeploymentState, BackendError>>;

    /// Brings a deployment that was applied before back up (after a deployer restart), with
    /// the settings it last had. Returns where the server listens.
    fn recover<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>>;

    /// The health of a deployment's server: by default what [`Backend::status`] says
    /// (running → healthy, otherwise down); supervising backends say more.
    fn health<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<DeploymentHealth, BackendError>> {
        Box::pin(async move {
            Ok(match self.status(name).await? {
                DeploymentState::Running => DeploymentHealth::new(Health::Healthy, "running"),
                _ => DeploymentHealth::new(Health::Down, "the server is not running"),
            })
        })
    }

    /// Stops supervising (the deployer is stopping); the servers keep running.
    fn shutdown(&self) {}
}
