//! The broker↔deployer contract, version 1, under `/deployer/v1`, and its typed client.
//!
//! | call | answer |
//! |---|---|
//! | `PUT /deployer/v1/deployments/{name}` body [`DeploymentSpec`] | 202 [`Task`] (idempotent by name: same spec again → a task that finds nothing to change); 409 envelope if the name belongs to a deployment of another instance ([`OWNER_LABEL`]) |
//! | `DELETE /deployer/v1/deployments/{name}[?instance_id=…]` | 202 [`Task`]; 404 envelope if unknown; 409 envelope if `instance_id` is given and the deployment belongs to another instance |
//! | `GET /deployer/v1/deployments/{name}` | 200 [`Deployment`] (with its server's [`DeploymentHealth`] since the deployer supervises its servers); 404 envelope if unknown |
//! | `GET /deployer/v1/deployments` | 200 `Vec<Deployment>` |
//! | `GET /deployer/v1/tasks/{id}` | 200 [`Task`]; 404 envelope if unknown |
//!
//! Errors use [`crate::envelope::ErrorEnvelope`]. Task ids survive a deployer restart.

use crate::client::{CallContext, ClientError, InternalClient};
use crate::ids::{DeploymentName, InstanceId, TaskId};
use crate::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Path prefix of this contract version.
pub const PREFIX: &str = "/deployer/v1";

/// The label naming the instance that owns a deployment. The deployer never hands a name
/// owned by one instance to a spec or a delete of another.
pub const OWNER_LABEL: &str = "instance_id";

/// The label naming the plan a spec was made for; an orchestrator may choose how to run it by
/// plan (the `bosh` backend's manifest templates).
pub const PLAN_LABEL: &str = "plan";

/// Query parameter of a DELETE naming the instance the caller deletes for.
pub const OWNER_QUERY: &str = "instance_id";

/// Which server a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// A PostgreSQL server.
    Postgresql,
    /// A Redis server.
    Redis,
}

/// The admin account the deployment is created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCredentials {
    /// Admin user name.
    pub username: String,
    /// Admin password (never logged).
    pub password: SecretString,
}

/// What to run: produced by an SPI, stored (encrypted) by the broker, applied by the deployer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// Deterministic, DNS- and path-safe name (`[a-z0-9-]`, ≤ 63 chars).
    pub name: DeploymentName,
    /// Server kind.
    pub engine: Engine,
    /// Major version, e.g. `"15"`.
    pub version: String,
    /// Server settings written to its config (e.g. `max_connections`, `shared_buffers`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Admin account created with the server.
    pub admin: AdminCredentials,
    /// Free-form labels (owner instance id, plan) for reconciliation.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Lifecycle of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Being created or changed.
    Pending,
    /// Server up.
    Running,
    /// Server down (crashed or stopped).
    Stopped,
    /// Last apply failed.
    Failed,
    /// Being deleted.
    Deleting,
}

/// How a deployment's server is doing, as its backend's supervision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The server runs (and answered when it was last started).
    Healthy,
    /// The server died and the backend is starting it again (or waits to, backing off).
    Restarting,
    /// The server is not running and will not be restarted on its own: it crashed too often
    /// in a row, or could not be brought up. An apply (update) or a deployer restart tries
    /// again.
    Down,
}

impl Health {
    /// The wire name (`healthy`, `restarting`, `down`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Restarting => "restarting",
            Self::Down => "down",
        }
    }
}

/// The health of a deployment's server with a message for people (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    /// Healthy, restarting or down.
    pub status: Health,
    /// What happened ("restarted after it exited (1 restart)", "exited 5 times in a row …").
    #[serde(default)]
    pub message: String,
}

impl DeploymentHealth {
    /// A health with a message.
    pub fn new(status: Health, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Whether the server is up.
    pub fn is_healthy(&self) -> bool {
        self.status == Health::Healthy
    }
}

/// A network address of a running deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentEndpoint {
    /// Host or IP the server listens on.
    pub host: String,
    /// TCP port; stable across restarts.
    pub port: u16,
}

/// A deployment as the deployer reports it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Name.
    pub name: DeploymentName,
    /// Server kind.
    pub engine: Engine,
    /// Current state.
    pub state: DeploymentState,
    /// Where to reach it.
    pub endpoints: Vec<DeploymentEndpoint>,
    /// Labels from the spec.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The server's health (absent from deployers before supervision, and while a deployment
    /// is being created or deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<DeploymentHealth>,
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskAction {
    /// Create or change a deployment.
    Apply,
    /// Stop and remove a deployment and its data.
    Delete,
}

/// State of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Accepted, not started.
    Queued,
    /// Under way.
    Running,
    /// Done.
    Succeeded,
    /// Ended with an error (see `error`).
    Failed,
}

impl TaskState {
    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// An asynchronous deployer task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Id (survives a deployer restart).
    pub id: TaskId,
    /// Deployment it acts on.
    pub deployment: DeploymentName,
    /// Apply or delete.
    pub action: TaskAction,
    /// Current state.
    pub state: TaskState,
    /// What is happening now, for people ("running initdb", "starting server", "ready").
    pub progress: String,
    /// Why it failed (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
}

/// Typed client of the deployer. Its calls take a name or id as its newtype or, from code that
/// holds it as text (tests, a command line), as a `&str` or `&String`.
#[derive(Debug, Clone)]
pub struct DeployerClient {
    inner: InternalClient,
}

impl DeployerClient {
    /// Wraps an internal client pointed at the deployer's base URL.
    pub fn new(inner: InternalClient) -> Self {
        Self { inner }
    }

    /// `PUT /deployer/v1/deployments/{name}`.
    pub async fn put_deployment(
        &self,
        spec: &DeploymentSpec,
        ctx: &CallContext,
    ) -> Result<Task, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::PUT, &deployment_path(&spec.name))
            .json(spec);
        self.inner.send(req, ctx).await
    }

    /// `DELETE /deployer/v1/deployments/{name}`.
    pub async fn delete_deployment(
        &self,
        name: impl Into<DeploymentName>,
        ctx: &CallContext,
    ) -> Result<Task, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::DELETE, &deployment_path(&name.into()));
        self.inner.send(req, ctx).await
    }

    /// `DELETE /deployer/v1/deployments/{name}?instance_id={owner}`: deletes the deployment
    /// only if it belongs to `owner` (409 otherwise).
    pub async fn delete_owned_deployment(
        &self,
        name: impl Into<DeploymentName>,
        owner: impl Into<InstanceId>,
        ctx: &CallContext,
    ) -> Result<Task, ClientError> {
        let owner: InstanceId = owner.into();
        let req = self
            .inner
            .request(reqwest::Method::DELETE, &deployment_path(&name.into()))
            .query(&[(OWNER_QUERY, owner.as_str())]);
        self.inner.send(req, ctx).await
    }

    /// `GET /deployer/v1/deployments/{name}`.
    pub async fn get_deployment(
        &self,
        name: impl Into<DeploymentName>,
        ctx: &CallContext,
    ) -> Result<Deployment, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::GET, &deployment_path(&name.into()));
        self.inner.send(req, ctx).await
    }

    /// `GET /deployer/v1/deployments`.
    pub async fn list_deployments(
        &self,
        ctx: &CallContext,
    ) -> Result<Vec<Deployment>, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::GET, &format!("{PREFIX}/deployments"));
        self.inner.send(req, ctx).await
    }

    /// `GET /deployer/v1/tasks/{id}`.
    pub async fn get_task(
        &self,
        id: impl Into<TaskId>,
        ctx: &CallContext,
    ) -> Result<Task, ClientError> {
        let id = id.into();
        let req = self
            .inner
            .request(reqwest::Method::GET, &format!("{PREFIX}/tasks/{id}"));
        self.inner.send(req, ctx).await
    }
}

/// The path of one deployment.
fn deployment_path(name: &DeploymentName) -> String {
    format!("{PREFIX}/deployments/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_spec_wire_format_is_stable() {
        let spec = DeploymentSpec {
            name: "pg-abc".into(),
            engine: Engine::Postgresql,
            version: "15".into(),
            settings: BTreeMap::from([("max_connections".into(), "50".into())]),
            admin: AdminCredentials {
                username: "admin".into(),
                password: SecretString::new("pw"),
            },
            labels: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"name":"pg-abc","engine":"postgresql","version":"15",
                   "settings":{"max_connections":"50"},
                   "admin":{"username":"admin","password":"pw"},"labels":{}})
        );
        assert!(!format!("{spec:?}").contains("pw\""));
    }

    #[test]
    fn a_deployment_without_health_still_reads_and_health_is_written_in_snake_case() {
        let old = json!({"name":"kv-1","engine":"redis","state":"running",
                         "endpoints":[{"host":"127.0.0.1","port":1}]});
        let read: Deployment = serde_json::from_value(old).unwrap();
        assert_eq!(read.health, None);
        let with = Deployment {
            health: Some(DeploymentHealth::new(Health::Restarting, "exited")),
            ..read
        };
        let value = serde_json::to_value(&with).unwrap();
        assert_eq!(
            value["health"],
            json!({"status":"restarting","message":"exited"})
        );
    }
}
