//! The `process` backend: each deployment is one server process started by the deployer and
//! run as an unprivileged OS user, with everything it owns under
//! `<data_dir>/deployments/<name>/`:
//!
//! | file | what |
//! |---|---|
//! | `instance.json` | engine, port (allocated once, never changes), admin user name |
//! | `admin.secret` | the admin password (mode 0600, owned by the deployer): the deployment's own secret store, read to check readiness after a restart |
//! | `server.log` | the server's stdout and stderr |
//! | engine files | PostgreSQL: `pgdata/` (with `osb.conf`); Redis: `redis.conf`, `users.acl`, `data/` |
//!
//! Servers run in their own process group (a Ctrl-C to the deployer does not reach them, and
//! they outlive a deployer restart). Every child is awaited by a reaper task, so a stopped
//! server leaves no zombie. The admin account is the one of the first apply: later changes of
//! the admin user name or password are ignored (and logged). A server that dies is started
//! again ([`supervise`]); its port comes from `port_range` when one is set ([`ports`]).

mod ports;
pub(crate) mod postgres;
pub(crate) mod redis;
mod supervise;

use super::{Backend, BackendError, BoxFuture, Progress};
use crate::config::{ProcessSettings, SupervisionSettings};
use crate::store::write_atomic;
use crate::sys::{self, OsUser};
use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Engine,
};
use common::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Directory under the data dir holding one directory per deployment.
pub const DEPLOYMENTS_DIR: &str = "deployments";
/// Left in the deployments directory by [`stop_all_servers`]: supervision restarts nothing
/// while it is there (a deployer still running must not bring back what was stopped on
/// purpose); the next deployer start removes it.
const SERVERS_STOPPED_MARKER: &str = ".servers-stopped";
const INSTANCE_FILE: &str = "instance.json";
const SECRET_FILE: &str = "admin.secret";
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

/// The OS user servers run as when none is configured: `None` (the deployer's own user) unless
/// the deployer runs as root, then `postgres` if that user exists, else `nobody`.
pub fn default_run_as_user() -> Option<String> {
    if sys::effective_uid() != 0 {
        return None;
    }
    match sys::lookup_user("postgres") {
        Ok(Some(_)) => Some("postgres".into()),
        _ => Some("nobody".into()),
    }
}

/// The directory of deployment `name` under a deployer data dir.
pub fn deployment_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(DEPLOYMENTS_DIR).join(name)
}

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
        let user = resolve_user(settings.run_as_user.as_deref())?;
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
            add_mode(&data_dir, 0o001)?;
            add_mode(&root, 0o001)?;
            check_reachable(&root, user)?;
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

    /// A command run as the server user, with a minimal environment, in `dir`.
    fn command(&self, program: &Path, dir: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(dir)
            .stdin(std::process::Stdio::null());
        if let Some(user) = &self.user {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    /// Hands `path` to the server user (a no-op when servers run as the deployer's user).
    fn give_to_user(&self, path: &Path) -> Result<(), BackendError> {
        if let Some(user) = &self.user {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(BackendError::io(format!("chown {}", path.display())))?;
        }
        Ok(())
    }

    /// Creates a directory (mode 0700) owned by the server user.
    fn create_user_dir(&self, path: &Path) -> Result<(), BackendError> {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BackendError::io(format!("creating {}", path.display()))(e)),
        }
        self.give_to_user(path)
    }

    /// Writes a file (atomically) owned by the server user.
    fn write_user_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), BackendError> {
        write_atomic(path, contents, mode)
            .map_err(BackendError::io(format!("writing {}", path.display())))?;
        self.give_to_user(path)
    }

    fn child(&self, name: &str) -> Option<Child> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The pid of the deployment's running server, if one runs (started by this backend or by
    /// an earlier deployer process).
    fn running_pid(&self, name: &str, dir: &Path, instance: &Instance) -> Option<u32> {
        if let Some(child) = self.child(name) {
            if !*child.exited.borrow() {
                return Some(child.pid);
            }
        }
        running_pid_from_files(dir, instance)
    }

    fn spawn_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
    ) -> Result<Child, BackendError> {
        let log_path = dir.join(LOG_FILE);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log_path)
            .map_err(BackendError::io(format!("opening {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(BackendError::io("duplicating the log file handle"))?;
        let mut cmd = match instance.engine {
            Engine::Postgresql => postgres::server_command(self, dir),
            Engine::Redis => redis::server_command(self, dir),
        };
        // Its own process group: signals meant for the deployer (Ctrl-C) do not reach the
        // server, and a kill of the group takes the server's own children with it.
        cmd.stdout(log)
            .stderr(log_err)
            .process_group(0)
            .kill_on_drop(false);
        let mut process = cmd.spawn().map_err(BackendError::io(format!(
            "starting the {} server",
            instance.engine_name()
        )))?;
        let pid = process
            .id()
            .ok_or_else(|| BackendError::Server("the server exited at once".into()))?;
        let (tx, rx) = watch::channel(false);
        let child = Child { pid, exited: rx };
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), child.clone());
        let children = Arc::clone(&self.children);
        let reaped_name = name.to_string();
        // The reaper: without it a stopped server would stay a zombie until the deployer exits.
        tokio::spawn(async move {
            let status = process.wait().await;
            tracing::info!(deployment.name = %reaped_name, pid, ?status, "server process exited");
            let _ = tx.send(true);
            let mut children = children.lock().unwrap_or_else(|e| e.into_inner());
            if children.get(&reaped_name).is_some_and(|c| c.pid == pid) {
                children.remove(&reaped_name);
            }
        });
        tracing::info!(deployment.name = %name, pid, port = instance.port, "server process started");
        Ok(child)
    }

    async fn probe(&self, instance: &Instance, password: &SecretString) -> Result<(), String> {
        let host = &self.settings.advertise_host;
        match instance.engine {
            Engine::Postgresql => {
                postgres::probe(host, instance.port, &instance.admin_username, password).await
            }
            Engine::Redis => {
                redis::probe(host, instance.port, &instance.admin_username, password).await
            }
        }
    }

    /// Waits until the server answers a real query as the admin, it exits, or `deadline`.
    async fn wait_ready(
        &self,
        instance: &Instance,
        password: &SecretString,
        pid: u32,
        child: Option<&Child>,
        deadline: Instant,
    ) -> Result<(), NotReady> {
        // Short naps first: a Redis server answers within milliseconds of its start.
        let mut nap = READY_FIRST_NAP;
        loop {
            let gone = match child {
                Some(c) => *c.exited.borrow(),
                None => !sys::is_alive(pid),
            };
            if gone {
                return Err(NotReady::Exited);
            }
            let last = match self.probe(instance, password).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(NotReady::TimedOut(last));
            }
            tokio::time::sleep(nap).await;
            nap = (nap * 2).min(READY_MAX_NAP);
        }
    }

    /// Starts the server and waits until it is ready, trying again (up to `attempts` starts in
    /// all) if it exits while starting.
    async fn start_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
        password: &SecretString,
        attempts: u32,
    ) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.start_timeout();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let child = self.spawn_server(name, dir, instance)?;
            let reason = match self
                .wait_ready(instance, password, child.pid, Some(&child), deadline)
                .await
            {
                Ok(()) => return Ok(()),
                Err(NotReady::Exited)
                    if attempt < attempts && Instant::now() + Duration::from_secs(1) < deadline =>
                {
                    tracing::warn!(deployment.name = %name, attempt, "server exited while starting; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(NotReady::Exited) => "exited while starting".to_string(),
                Err(NotReady::TimedOut(last)) => {
                    self.stop_pid(name, child.pid, instance.engine).await;
                    format!(
                        "did not accept connections within {}s (last error: {last})",
                        self.settings.start_timeout_secs
                    )
                }
            };
            return Err(BackendError::Server(format!(
                "the {} server of {name} {reason}; end of {}: {}",
                instance.engine_name(),
                dir.join(LOG_FILE).display(),
                log_tail(&dir.join(LOG_FILE))
            )));
        }
    }

    /// Stops the deployment's server if it runs: the engine's polite signal, then a kill of
    /// its process group if it is still there after [`STOP_GRACE`].
    async fn stop_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
    ) -> Result<(), BackendError> {
        let Some(pid) = self.running_pid(name, dir, instance) else {
            return Ok(());
        };
        if instance.engine == Engine::Redis {
            // Users added at run time (per-binding ACL users) live in memory until saved.
            match read_secret(dir) {
                Ok(password) => {
                    if let Err(e) = redis::save_acl(
                        &self.settings.advertise_host,
                        instance.port,
                        &instance.admin_username,
                        &password,
                    )
                    .await
                    {
                        tracing::warn!(deployment.name = %name, error = %e, "could not save the ACL users before stopping");
                    }
                }
                Err(e) => {
                    tracing::warn!(deployment.name = %name, error = %e, "no admin secret to save the ACL users with")
                }
            }
        }
        if self.stop_pid(name, pid, instance.engine).await {
            Ok(())
        } else {
            Err(BackendError::Server(format!(
                "the server of {name} (pid {pid}) did not stop"
            )))
        }
    }

    /// Signals `pid` to stop and waits until it is gone (reaped, if it is our child).
    async fn stop_pid(&self, name: &str, pid: u32, engine: Engine) -> bool {
        let child = self.child(name).filter(|c| c.pid == pid);
        if let Err(e) = sys::send_signal(pid, stop_signal(engine)) {
            tracing::debug!(deployment.name = %name, pid, error = %e, "stop signal not delivered");
        }
        if wait_gone(pid, child.as_ref(), STOP_GRACE).await {
            return true;
        }
        tracing::warn!(deployment.name = %name, pid, "server did not stop in time; killing it");
        let _ = sys::send_signal_to_group(pid, sys::SIGKILL);
        wait_gone(pid, child.as_ref(), KILL_GRACE).await
    }

    fn allocate_port(&self) -> Result<u16, BackendError> {
        // Ports of stopped deployments are free as far as the OS knows: skip them, since
        // those deployments come back on them.
        let taken: HashSet<u16> = fs::read_dir(&self.root)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| read_instance(&e.path()).ok().flatten())
                    .map(|i| i.port)
                    .collect()
            })
            .unwrap_or_default();
        ports::allocate(
            &self.settings.advertise_host,
            self.settings.port_range,
            &taken,
        )
    }

    /// The deployment's instance record, created (with its directory, port and admin secret)
    /// on the first apply.
    fn prepare_instance(
        &self,
        spec: &DeploymentSpec,
        dir: &Path,
    ) -> Result<Instance, BackendError> {
        if let Some(instance) = read_instance(dir)? {
            if instance.engine != spec.engine {
                return Err(BackendError::Invalid(format!(
                    "deployment {} runs {}; it cannot become {} (delete it first)",
                    spec.name,
                    instance.engine_name(),
                    engine_name(spec.engine)
                )));
            }
            if instance.admin_username != spec.admin.username {
                tracing::warn!(deployment.name = %spec.name, "admin user name change ignored: the admin of the first apply stays");
            }
            match read_secret(dir) {
                Ok(stored) if stored != spec.admin.password => {
                    tracing::warn!(deployment.name = %spec.name, "admin password change ignored: the admin of the first apply stays");
                }
                Ok(_) => {}
                Err(_) => write_secret(dir, &spec.admin.password)?,
            }
            return Ok(instance);
        }
        self.create_user_dir(dir)?;
        write_secret(dir, &spec.admin.password)?;
        let _allocating = self.allocating.lock().unwrap_or_else(|e| e.into_inner());
        let instance = Instance {
            engine: spec.engine,
            port: self.allocate_port()?,
            admin_username: spec.admin.username.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&instance)
            .map_err(|e| BackendError::Server(format!("encoding the instance record: {e}")))?;
        let path = dir.join(INSTANCE_FILE);
        write_atomic(&path, &bytes, 0o644)
            .map_err(BackendError::io(format!("writing {}", path.display())))?;
        Ok(instance)
    }

    /// Writes the engine's config for `settings`; returns `Some(previous contents)` if it
    /// changed (`Some(None)`: there was none), `None` if it is the same.
    fn write_config(
        &self,
        dir: &Path,
        instance: &Instance,
        settings: &BTreeMap<String, String>,
    ) -> Result<Option<Option<String>>, BackendError> {
        let host = &self.settings.advertise_host;
        let (path, contents) = match instance.engine {
            Engine::Postgresql => (
                postgres::config_file(dir),
                postgres::render_config(host, instance.port, dir, settings),
            ),
            Engine::Redis => (
                redis::config_file(dir),
                redis::render_config(host, instance.port, dir, settings),
            ),
        };
        let previous = match fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(BackendError::io(format!("reading {}", path.display()))(e)),
        };
        if previous.as_deref() == Some(contents.as_str()) {
            return Ok(None);
        }
        self.write_user_file(&path, contents.as_bytes(), 0o600)?;
        Ok(Some(previous))
    }

    fn restore_config(&self, dir: &Path, instance: &Instance, previous: &str) {
        let path = match instance.engine {
            Engine::Postgresql => postgres::config_file(dir),
            Engine::Redis => redis::config_file(dir),
        };
        if let Err(e) = self.write_user_file(&path, previous.as_bytes(), 0o600) {
            tracing::error!(path = %path.display(), error = %e, "could not restore the previous config");
        }
    }

    async fn check_version(&self, spec: &DeploymentSpec) -> Result<(), BackendError> {
        let installed = match spec.engine {
            Engine::Postgresql => postgres::installed_version(self).await?,
            Engine::Redis => redis::installed_version(self).await?,
        };
        let wanted = spec.version.trim();
        if wanted.is_empty() || major(wanted) == major(&installed) {
            Ok(())
        } else {
            Err(BackendError::Invalid(format!(
                "this deployer runs {} {installed}; version {wanted} is not available",
                engine_name(spec.engine)
            )))
        }
    }

    async fn apply_spec(
        &self,
        spec: &DeploymentSpec,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let name = spec.name.as_str();
        self.check_version(spec).await?;
        let dir = self.dir(name);
        let instance = self.prepare_instance(spec, &dir)?;
        let password = read_secret(&dir)?;
        if !is_initialized(&dir, instance.engine) {
            match instance.engine {
                Engine::Postgresql => {
                    progress.set("running initdb");
                    postgres::initialize(self, &dir, &instance, &password).await?;
                }
                Engine::Redis => {
                    progress.set("creating the data directory");
                    redis::initialize(self, &dir, &instance, &password)?;
                }
            }
        }
        let changed = self.write_config(&dir, &instance, &spec.settings)?;
        match (self.running_pid(name, &dir, &instance), changed) {
            (Some(_), Some(previous)) => {
                progress.set("restarting server with new settings");
                self.stop_server(name, &dir, &instance).await?;
                if let Err(e) = self
                    .start_server(name, &dir, &instance, &password, START_ATTEMPTS)
                    .await
                {
                    if let Some(previous) = previous {
                        progress.set("restoring the previous settings");
                        self.restore_config(&dir, &instance, &previous);
                        if let Err(again) = self
                            .start_server(name, &dir, &instance, &password, START_ATTEMPTS)
                            .await
                        {
                            tracing::error!(deployment.name = %name, error = %again, "server does not start with its previous settings either");
                        }
                    }
                    return Err(e);
                }
            }
            (Some(pid), None) => {
                progress.set("checking server");
                let child = self.child(name).filter(|c| c.pid == pid);
                let deadline = Instant::now() + self.start_timeout();
                if let Err(e) = self
                    .wait_ready(&instance, &password, pid, child.as_ref(), deadline)
                    .await
                {
                    let reason = match e {
                        NotReady::Exited => "exited".to_string(),
                        NotReady::TimedOut(last) => format!("does not answer: {last}"),
                    };
                    return Err(BackendError::Server(format!(
                        "the server of {name} {reason}"
                    )));
                }
            }
            (None, _) => {
                progress.set("starting server");
                self.start_server(name, &dir, &instance, &password, START_ATTEMPTS)
                    .await?;
            }
        }
        Ok(self.endpoints(&instance))
    }

    async fn delete_deployment(&self, name: &str, progress: &Progress) -> Result<(), BackendError> {
        let dir = self.dir(name);
        if !dir.exists() {
            return Ok(());
        }
        progress.set("stopping server");
        match read_instance(&dir)? {
            Some(instance) => self.stop_server(name, &dir, &instance).await?,
            None => {
                // Created but never got as far as a server; a child can only be ours.
                if let Some(child) = self.child(name) {
                    self.stop_pid(name, child.pid, Engine::Postgresql).await;
                }
            }
        }
        progress.set("removing data");
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::io(format!("removing {}", dir.display()))(e)),
        }
    }

    async fn recover_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let dir = self.dir(name);
        let instance = read_instance(&dir)?
            .filter(|i| is_initialized(&dir, i.engine))
            .ok_or_else(|| {
                BackendError::Invalid(format!("deployment {name} has no data to start from"))
            })?;
        if self.running_pid(name, &dir, &instance).is_none() {
            progress.set("starting server");
            let password = read_secret(&dir)?;
            self.start_server(name, &dir, &instance, &password, START_ATTEMPTS)
                .await?;
        }
        Ok(self.endpoints(&instance))
    }
}

impl Backend for ProcessBackend {
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String> {
        validate_spec(spec)
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

/// Stops every server of the deployments under `data_dir` and waits until they are gone:
/// for test guards and tools that must not leave servers behind (servers otherwise outlive the
/// deployer, on purpose). Returns how many servers were running.
pub fn stop_all_servers(data_dir: &Path) -> usize {
    let root = data_dir.join(DEPLOYMENTS_DIR);
    let Ok(entries) = fs::read_dir(&root) else {
        return 0;
    };
    let _ = fs::write(root.join(SERVERS_STOPPED_MARKER), b"");
    let mut running = Vec::new();
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let Ok(Some(instance)) = read_instance(&dir) else {
            continue;
        };
        if let Some(pid) = running_pid_from_files(&dir, &instance) {
            let _ = sys::send_signal(pid, stop_signal(instance.engine));
            running.push(pid);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while running.iter().any(|pid| sys::is_alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    for pid in running.iter().filter(|pid| sys::is_alive(**pid)) {
        let _ = sys::send_signal_to_group(*pid, sys::SIGKILL);
    }
    let deadline = Instant::now() + KILL_GRACE;
    while running.iter().any(|pid| sys::is_alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    running.len()
}

impl Instance {
    fn engine_name(&self) -> &'static str {
        engine_name(self.engine)
    }
}

pub(crate) fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "PostgreSQL",
        Engine::Redis => "Redis",
    }
}

fn stop_signal(engine: Engine) -> i32 {
    match engine {
        // Fast shutdown: roll back open transactions, checkpoint, exit.
        Engine::Postgresql => sys::SIGINT,
        // Save (append-only file is flushed) and exit.
        Engine::Redis => sys::SIGTERM,
    }
}

fn is_initialized(dir: &Path, engine: Engine) -> bool {
    match engine {
        Engine::Postgresql => postgres::is_initialized(dir),
        Engine::Redis => redis::is_initialized(dir),
    }
}

/// The pid in the engine's pid file, if that process is alive and is this deployment's server.
fn running_pid_from_files(dir: &Path, instance: &Instance) -> Option<u32> {
    let pid = match instance.engine {
        Engine::Postgresql => postgres::pidfile_pid(dir),
        Engine::Redis => redis::pidfile_pid(dir),
    }?;
    let cmdline = sys::cmdline(pid)?;
    let ours = match instance.engine {
        Engine::Postgresql => postgres::is_server_cmdline(&cmdline, dir),
        Engine::Redis => redis::is_server_cmdline(&cmdline, instance.port),
    };
    (ours && sys::is_alive(pid)).then_some(pid)
}

async fn wait_gone(pid: u32, child: Option<&Child>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // Our own child is gone once reaped; anyone else's once the pid is free.
        let gone = match child {
            Some(c) => *c.exited.borrow(),
            None => !sys::is_alive(pid),
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks a spec's admin account and settings (what every backend refuses alike).
pub(crate) fn validate_spec(spec: &DeploymentSpec) -> Result<(), String> {
    validate_admin(spec)?;
    match spec.engine {
        Engine::Postgresql => postgres::validate_settings(&spec.settings),
        Engine::Redis => redis::validate_settings(&spec.settings),
    }
}

fn read_instance(dir: &Path) -> Result<Option<Instance>, BackendError> {
    read_json(&dir.join(INSTANCE_FILE))
}

/// A backend's JSON record of a deployment; `None` if there is none yet.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, BackendError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BackendError::Server(format!("{} is corrupt: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackendError::io(format!("reading {}", path.display()))(e)),
    }
}

pub(crate) fn read_secret(dir: &Path) -> Result<SecretString, BackendError> {
    let path = dir.join(SECRET_FILE);
    fs::read_to_string(&path)
        .map(SecretString::new)
        .map_err(BackendError::io(format!("reading {}", path.display())))
}

pub(crate) fn write_secret(dir: &Path, password: &SecretString) -> Result<(), BackendError> {
    let path = dir.join(SECRET_FILE);
    write_atomic(&path, password.expose().as_bytes(), 0o600)
        .map_err(BackendError::io(format!("writing {}", path.display())))
}

/// The last few lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let Ok(bytes) = fs::read(path) else {
        return "(no log)".into();
    };
    let start = bytes.len().saturating_sub(2048);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

pub(crate) fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version).trim()
}

pub(crate) fn validate_admin(spec: &DeploymentSpec) -> Result<(), String> {
    let user = &spec.admin.username;
    let valid_user = !user.is_empty()
        && user.len() <= 63
        && user.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_user {
        return Err(format!(
            "admin user name {user:?} is invalid: 1 to 63 letters, digits, '_', '-' or '.', starting with a letter or '_'"
        ));
    }
    let password = spec.admin.password.expose();
    if password.is_empty() || password.len() > 1024 || password.chars().any(char::is_control) {
        return Err(
            "admin password must be 1 to 1024 characters without control characters".into(),
        );
    }
    Ok(())
}

/// Refuses a setting key that is not `pattern`-shaped or that the deployer manages itself.
fn check_setting(
    key: &str,
    value: &str,
    valid_key: impl Fn(&str) -> bool,
    managed: &[&str],
) -> Result<(), String> {
    if !valid_key(key) {
        return Err(format!("setting name {key:?} is invalid"));
    }
    if managed.iter().any(|m| {
        m.strip_suffix('*')
            .map_or(*m == key, |prefix| key.starts_with(prefix))
    }) {
        return Err(format!(
            "setting {key} is managed by the deployer and cannot be set"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "setting {key} has a control character in its value"
        ));
    }
    Ok(())
}

fn resolve_user(configured: Option<&str>) -> Result<Option<OsUser>, BackendError> {
    let Some(name) = configured.map(str::to_string).or_else(default_run_as_user) else {
        return Ok(None);
    };
    let user = sys::lookup_user(&name)
        .map_err(BackendError::io("reading /etc/passwd"))?
        .ok_or_else(|| BackendError::Invalid(format!("no OS user {name} in /etc/passwd")))?;
    let me = sys::effective_uid();
    if user.uid == me {
        return Ok(None);
    }
    if me != 0 {
        return Err(BackendError::Invalid(format!(
            "running servers as {name} needs the deployer to run as root"
        )));
    }
    if user.uid == 0 {
        return Err(BackendError::Invalid(
            "servers must not run as root (PostgreSQL refuses to)".into(),
        ));
    }
    Ok(Some(user))
}

fn add_mode(path: &Path, bits: u32) -> Result<(), BackendError> {
    let meta = fs::metadata(path).map_err(BackendError::io(format!("stat {}", path.display())))?;
    let mode = meta.permissions().mode();
    if mode & bits != bits {
        fs::set_permissions(path, fs::Permissions::from_mode(mode | bits))
            .map_err(BackendError::io(format!("chmod {}", path.display())))?;
    }
    Ok(())
}

/// Checks that `user` can traverse every directory from `/` down to `path`.
fn check_reachable(path: &Path, user: &OsUser) -> Result<(), BackendError> {
    for dir in path.ancestors() {
        let meta =
            fs::metadata(dir).map_err(BackendError::io(format!("stat {}", dir.display())))?;
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(BackendError::Invalid(format!(
                "servers run as {}, who cannot reach {}: make it traversable (chmod o+x) or move the data dir",
                user.name,
                dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_major_version_ignores_the_minor_part() {
        assert_eq!(major("15.18"), "15");
        assert_eq!(major("15"), "15");
        assert_eq!(major("7.0.15"), "7");
    }

    #[test]
    fn managed_settings_and_odd_names_are_refused() {
        let key_ok = |k: &str| k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        assert!(check_setting("max_connections", "50", key_ok, &["port"]).is_ok());
        assert!(check_setting("port", "1", key_ok, &["port"])
            .unwrap_err()
            .contains("managed by the deployer"));
        assert!(check_setting("ssl_cert_file", "x", key_ok, &["ssl_*"]).is_err());
        assert!(check_setting("max connections", "1", key_ok, &[]).is_err());
        assert!(check_setting("work_mem", "4MB\nport = 1", key_ok, &[]).is_err());
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\nd\ne\nf\ng\n").unwrap();
        assert_eq!(log_tail(&path), "c | d | e | f | g");
    }
}
