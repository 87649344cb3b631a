//! The `process` backend: each deployment is one server process started by the deployer and
//! run as an unprivileged OS user, with everything it owns under
//! `<data_dir>/deployments/<name>/`:
//!
//! | file | what |
//! |---|---|
//! | `instance.json` | engine, port (allocated once, never changes), admin user name |
//! | `admin.secret` | the admin password (mode 0600, owned by the deployer; see [`super::shared`]) |
//! | `server.log` | the server's stdout and stderr |
//! | engine files | PostgreSQL: `pgdata/` (with `osb.conf`); Redis: `redis.conf`, `users.acl`, `data/` |
//!
//! Servers run in their own process group (a Ctrl-C to the deployer does not reach them, and
//! they outlive a deployer restart). Every child is awaited by a reaper task, so a stopped
//! server leaves no zombie. The admin account is the one of the first apply: later changes of
//! the admin user name or password are ignored (and logged). A server that dies is started
//! again ([`supervise`]); its port comes from `port_range` when one is set ([`ports`]).
//!
//! What the engines need whatever runs them is in [`crate::engine`]; how this backend runs
//! each engine in [`engines`]; the servers' life in [`server`]; applies, deletes and
//! recoveries in [`apply`]; the server user in [`os_user`].

mod apply;
mod engines;
mod os_user;
mod ports;
mod postgres;
mod redis;
mod server;
mod supervise;

pub use os_user::default_run_as_user;
pub use server::stop_all_servers;

use super::shared::{read_json, DEPLOYMENTS_DIR, INSTANCE_FILE};
use super::{Backend, BackendError, BoxFuture, Progress};
use crate::config::{ProcessSettings, SupervisionSettings};
use crate::engine;
use crate::sys::OsUser;
use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Engine,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Left in the deployments directory by [`stop_all_servers`]: supervision restarts nothing
/// while it is there (a deployer still running must not bring back what was stopped on
/// purpose); the next deployer start removes it.
const SERVERS_STOPPED_MARKER: &str = ".servers-stopped";
const LOG_FILE: &str = "server.log";
/// How long a server gets to stop after the polite signal before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long a killed server gets to disappear.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How many times a server that exits while starting is started again (stale locks, a port
/// still held by a dying predecessor).
const START_ATTEMPTS: u32 = 5;
const POLL: Duration = Duration::from_millis(100);
/// First pause between readiness probes of a starting server; it doubles up to
/// [`READY_MAX_NAP`].
const READY_FIRST_NAP: Duration = Duration::from_millis(5);
/// Longest pause between readiness probes.
const READY_MAX_NAP: Duration = Duration::from_millis(200);

/// What the backend remembers about a deployment besides its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Instance {
    engine: Engine,
    port: u16,
    admin_username: String,
}

/// A server this backend started; `exited` turns true once the reaper has collected it.
#[derive(Debug, Clone)]
struct Child {
    pid: u32,
    exited: watch::Receiver<bool>,
}

enum NotReady {
    Exited,
    TimedOut(String),
}

/// Runs deployments as local server processes.
pub struct ProcessBackend {
    settings: ProcessSettings,
    supervision: SupervisionSettings,
    root: PathBuf,
    user: Option<OsUser>,
    children: Arc<Mutex<HashMap<String, Child>>>,
    supervisor: supervise::Supervisor,
    /// Held from choosing a new deployment's port until it is recorded, so that two
    /// deployments created at once do not get the same one.
    allocating: Mutex<()>,
}

impl ProcessBackend {
    /// A backend keeping deployments under `<data_dir>/deployments/`; checks that the server
    /// user exists and can reach that directory. Inside a tokio runtime it also starts
    /// supervising the servers that its applies and recoveries bring up.
    pub fn new(
        data_dir: &Path,
        settings: ProcessSettings,
        supervision: SupervisionSettings,
    ) -> Result<Arc<Self>, BackendError> {
        ports::validate_range(settings.port_range)?;
        let user = os_user::resolve_user(settings.run_as_user.as_deref())?;
        let data_dir = fs::canonicalize(data_dir)
            .map_err(BackendError::io(format!("data dir {}", data_dir.display())))?;
        let root = data_dir.join(DEPLOYMENTS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .create(&root)
            .map_err(BackendError::io(format!("creating {}", root.display())))?;
        match fs::remove_file(root.join(SERVERS_STOPPED_MARKER)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(BackendError::io("removing the servers-stopped marker")(e))
            }
            _ => {}
        }
        if let Some(user) = &user {
            // The server user needs to pass through the data dir (not read it) to reach its
            // own deployment directory; the deployer's state next to it stays 0700.
            os_user::add_mode(&data_dir, 0o001)?;
            os_user::add_mode(&root, 0o001)?;
            os_user::check_reachable(&root, user)?;
        }
        let backend = Arc::new(Self {
            settings,
            supervision,
            root,
            user,
            children: Arc::default(),
            supervisor: supervise::Supervisor::default(),
            allocating: Mutex::new(()),
        });
        backend.spawn_supervisor();
        Ok(backend)
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn start_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.start_timeout_secs)
    }

    fn endpoints(&self, instance: &Instance) -> Vec<DeploymentEndpoint> {
        vec![DeploymentEndpoint {
            host: self.settings.advertise_host.clone(),
            port: instance.port,
        }]
    }
}

impl Backend for ProcessBackend {
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String> {
        engine::validate_spec(spec)
    }

    fn apply<'a>(
        &'a self,
        spec: &'a DeploymentSpec,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>> {
        Box::pin(async move {
            let name = spec.name.as_str();
            let _operation = self.supervisor.operation(name).await;
            let result = self.apply_spec(spec, progress).await;
            match (&result, self.server_pid(name)) {
                // Up with the new settings, or still up with the old ones.
                (_, Some(pid)) => self.supervisor.started(name, Some(pid)),
                (Ok(_), None) => self.supervisor.started(name, None),
                (Err(e), None) => self.supervisor.down(
                    name,
                    format!("the server is down: the last apply failed: {e}"),
                ),
            }
            result
        })
    }

    fn delete<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let _operation = self.supervisor.operation(name).await;
            self.supervisor.forget(name);
            self.delete_deployment(name, progress).await
        })
    }

    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<DeploymentState, BackendError>> {
        Box::pin(async move {
            let dir = self.dir(name);
            Ok(match read_instance(&dir)? {
                Some(instance) if self.running_pid(name, &dir, &instance).is_some() => {
                    DeploymentState::Running
                }
                _ => DeploymentState::Stopped,
            })
        })
    }

    fn recover<'a>(
        &'a self,
        name: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<Vec<DeploymentEndpoint>, BackendError>> {
        Box::pin(async move {
            let _operation = self.supervisor.operation(name).await;
            let result = self.recover_deployment(name, progress).await;
            match &result {
                Ok(_) => self.supervisor.started(name, self.server_pid(name)),
                Err(e @ BackendError::Invalid(_)) => self
                    .supervisor
                    .down(name, format!("the server is down: {e}")),
                // Perhaps passing (a port still held): supervision tries again, backing off.
                Err(e) => self
                    .supervisor
                    .failed(&self.supervision, name, &e.to_string()),
            }
            result
        })
    }

    fn health<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<DeploymentHealth, BackendError>> {
        Box::pin(async move { Ok(self.server_health(name)) })
    }

    fn shutdown(&self) {
        self.supervisor.stop();
    }
}

impl Instance {
    /// The engine's name for people.
    fn engine_name(&self) -> &'static str {
        engine::name(self.engine)
    }
}

/// The deployment's record; `None` if it has none yet.
fn read_instance(dir: &Path) -> Result<Option<Instance>, BackendError> {
    read_json(&dir.join(INSTANCE_FILE))
}
