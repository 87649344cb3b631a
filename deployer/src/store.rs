//! Durable state of the deployer: deployment records and tasks as JSON files under
//! `<data_dir>/state/`, each written atomically (temporary file, fsync, rename) and cached in
//! memory. Admin passwords are never part of these records: an apply task that has not run yet
//! keeps its spec's password in `tasks/<id>.secret` (mode 0600) until it ends.

use common::deployer::{
    Deployment, DeploymentEndpoint, DeploymentSpec, DeploymentState, Engine, Task,
};
use common::secret::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Failure to read or write the state files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A file holds something that is not a state record.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A deployment spec without its admin password: what the state files keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSpec {
    /// Deployment name.
    pub name: String,
    /// Server kind.
    pub engine: Engine,
    /// Major version.
    pub version: String,
    /// Server settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Admin user name.
    pub admin_username: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl StoredSpec {
    /// The spec minus its password.
    pub fn from_spec(spec: &DeploymentSpec) -> Self {
        Self {
            name: spec.name.to_string(),
            engine: spec.engine,
            version: spec.version.clone(),
            settings: spec.settings.clone(),
            admin_username: spec.admin.username.clone(),
            labels: spec.labels.clone(),
        }
    }

    /// The full spec again, given its password.
    pub fn with_password(&self, password: SecretString) -> DeploymentSpec {
        DeploymentSpec {
            name: self.name.clone().into(),
            engine: self.engine,
            version: self.version.clone(),
            settings: self.settings.clone(),
            admin: common::deployer::AdminCredentials {
                username: self.admin_username.clone(),
                password,
            },
            labels: self.labels.clone(),
        }
    }
}

/// What the deployer knows about one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The spec last asked for.
    pub spec: StoredSpec,
    /// Lifecycle state as of the last task.
    pub state: DeploymentState,
    /// Where the server listens.
    #[serde(default)]
    pub endpoints: Vec<DeploymentEndpoint>,
}

impl DeploymentRecord {
    /// The wire form, with `state` as given (the caller may have looked at the server).
    pub fn to_deployment(&self, state: DeploymentState) -> Deployment {
        Deployment {
            name: self.spec.name.clone().into(),
            engine: self.spec.engine,
            state,
            endpoints: self.endpoints.clone(),
            labels: self.spec.labels.clone(),
            health: None,
        }
    }
}

/// A task plus what it needs to be run again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task as clients see it.
    pub task: Task,
    /// Submission order; tasks are resumed in this order.
    pub seq: u64,
    /// For an apply: the spec to apply (its password is in the task's secret file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<StoredSpec>,
}

struct Inner {
    deployments: BTreeMap<String, DeploymentRecord>,
    tasks: HashMap<String, TaskRecord>,
    next_seq: u64,
}

/// The state files under one directory, cached in memory.
pub struct Store {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

const DEPLOYMENTS: &str = "deployments";
const TASKS: &str = "tasks";
const JSON: &str = "json";
const SECRET: &str = "secret";

impl Store {
    /// Opens (creating if needed) the state under `dir` and loads every record.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        for sub in [DEPLOYMENTS, TASKS] {
            let path = dir.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|source| StoreError::Io { path, source })?;
        }
        let deployments: BTreeMap<String, DeploymentRecord> =
            load_all::<DeploymentRecord>(&dir.join(DEPLOYMENTS))?
                .into_iter()
                .map(|r| (r.spec.name.clone(), r))
                .collect();
        let tasks: HashMap<String, TaskRecord> = load_all::<TaskRecord>(&dir.join(TASKS))?
            .into_iter()
            .map(|r| (r.task.id.to_string(), r))
            .collect();
        let next_seq = tasks.values().map(|t| t.seq + 1).max().unwrap_or(0);
        Ok(Self {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                deployments,
                tasks,
                next_seq,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written record: files are replaced
        // atomically and the map is updated after the file, so the data is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deployment_path(&self, name: &str) -> PathBuf {
        self.dir.join(DEPLOYMENTS).join(format!("{name}.{JSON}"))
    }

    fn task_path(&self, id: &str) -> PathBuf {
        self.dir.join(TASKS).join(format!("{id}.{JSON}"))
    }

    fn secret_path(&self, id: &str) -> PathBuf {
        self.dir.join(TASKS).join(format!("{id}.{SECRET}"))
    }

    /// Records a new task (with the next sequence number) and, for an apply, its password.
    pub fn insert_task(
        &self,
        task: Task,
        spec: Option<&DeploymentSpec>,
    ) -> Result<TaskRecord, StoreError> {
        let mut inner = self.lock();
        let record = TaskRecord {
            seq: inner.next_seq,
            spec: spec.map(StoredSpec::from_spec),
            task,
        };
        if let Some(spec) = spec {
            let path = self.secret_path(&record.task.id);
            write_atomic(&path, spec.admin.password.expose().as_bytes(), 0o600)
                .map_err(|source| StoreError::Io { path, source })?;
        }
        write_json(&self.task_path(&record.task.id), &record)?;
        inner.next_seq += 1;
        inner
            .tasks
            .insert(record.task.id.to_string(), record.clone());
        Ok(record)
    }

    /// Changes a task with `f` and persists it; `None` if there is no such task.
    pub fn update_task(
        &self,
        id: &str,
        f: impl FnOnce(&mut Task),
    ) -> Result<Option<Task>, StoreError> {
        let mut inner = self.lock();
        let Some(mut record) = inner.tasks.get(id).cloned() else {
            return Ok(None);
        };
        f(&mut record.task);
        record.task.updated_at_ms = now_ms();
        write_json(&self.task_path(id), &record)?;
        let task = record.task.clone();
        inner.tasks.insert(id.to_string(), record);
        Ok(Some(task))
    }

    /// One task.
    pub fn task(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|r| r.task.clone())
    }

    /// Tasks that have not ended, in submission order.
    pub fn unfinished_tasks(&self) -> Vec<TaskRecord> {
        let mut tasks: Vec<TaskRecord> = self
            .lock()
            .tasks
            .values()
            .filter(|r| !r.task.state.is_terminal())
            .cloned()
            .collect();
        tasks.sort_by_key(|r| r.seq);
        tasks
    }

    /// The password an unfinished apply task was submitted with.
    pub fn task_secret(&self, id: &str) -> Result<Option<SecretString>, StoreError> {
        let path = self.secret_path(id);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(SecretString::new(s))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Forgets a task's password (once the task has ended).
    pub fn remove_task_secret(&self, id: &str) -> Result<(), StoreError> {
        remove_if_exists(&self.secret_path(id))
    }

    /// One deployment.
    pub fn deployment(&self, name: &str) -> Option<DeploymentRecord> {
        self.lock().deployments.get(name).cloned()
    }

    /// Every deployment, by name.
    pub fn deployments(&self) -> Vec<DeploymentRecord> {
        self.lock().deployments.values().cloned().collect()
    }

    /// Creates or replaces a deployment record.
    pub fn put_deployment(&self, record: DeploymentRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        write_json(&self.deployment_path(&record.spec.name), &record)?;
        inner.deployments.insert(record.spec.name.clone(), record);
        Ok(())
    }

    /// Creates a deployment record unless one exists; returns whether it created one.
    pub fn create_deployment_if_absent(
        &self,
        record: DeploymentRecord,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.deployments.contains_key(&record.spec.name) {
            return Ok(false);
        }
        write_json(&self.deployment_path(&record.spec.name), &record)?;
        inner.deployments.insert(record.spec.name.clone(), record);
        Ok(true)
    }

    /// Changes a deployment's state, if the deployment exists.
    pub fn set_deployment_state(
        &self,
        name: &str,
        state: DeploymentState,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(mut record) = inner.deployments.get(name).cloned() else {
            return Ok(());
        };
        record.state = state;
        write_json(&self.deployment_path(name), &record)?;
        inner.deployments.insert(name.to_string(), record);
        Ok(())
    }

    /// Forgets a deployment.
    pub fn remove_deployment(&self, name: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        remove_if_exists(&self.deployment_path(name))?;
        inner.deployments.remove(name);
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn load_all<T: DeserializeOwned>(dir: &Path) -> Result<Vec<T>, StoreError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') && name.ends_with(".tmp") {
            // A write that did not reach its rename: the previous version is still in place.
            remove_if_exists(&path)?;
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some(JSON) {
            continue;
        }
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let record = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Corrupt { path, source })?;
        out.push(record);
    }
    Ok(out)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes, 0o600).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Replaces `path` with `contents` so that readers see the old or the new file, never a part.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::deployer::{AdminCredentials, TaskAction, TaskState};

    fn spec() -> DeploymentSpec {
        DeploymentSpec {
            name: "pg-one".into(),
            engine: Engine::Postgresql,
            version: "15".into(),
            settings: BTreeMap::new(),
            admin: AdminCredentials {
                username: "admin".into(),
                password: SecretString::new("s3cret-pw"),
            },
            labels: BTreeMap::new(),
        }
    }

    fn task(id: &str) -> Task {
        Task {
            id: id.into(),
            deployment: "pg-one".into(),
            action: TaskAction::Apply,
            state: TaskState::Queued,
            progress: "queued".into(),
            error: None,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
        }
    }

    #[test]
    fn records_survive_reopening_and_unfinished_tasks_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert_task(task("b"), Some(&spec())).unwrap();
            store.insert_task(task("a"), None).unwrap();
            store
                .update_task("b", |t| t.state = TaskState::Running)
                .unwrap();
            store
                .put_deployment(DeploymentRecord {
                    spec: StoredSpec::from_spec(&spec()),
                    state: DeploymentState::Pending,
                    endpoints: vec![],
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let ids: Vec<String> = store
            .unfinished_tasks()
            .into_iter()
            .map(|r| r.task.id.into())
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(store.task("b").unwrap().state, TaskState::Running);
        assert_eq!(
            store.task_secret("b").unwrap().unwrap().expose(),
            "s3cret-pw"
        );
        assert_eq!(store.deployments().len(), 1);
    }

    #[test]
    fn no_state_file_but_the_task_secret_holds_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_task(task("t"), Some(&spec())).unwrap();
        store
            .put_deployment(DeploymentRecord {
                spec: StoredSpec::from_spec(&spec()),
                state: DeploymentState::Running,
                endpoints: vec![],
            })
            .unwrap();
        for sub in [DEPLOYMENTS, TASKS] {
            for entry in fs::read_dir(dir.path().join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let text = fs::read_to_string(&path).unwrap();
                let is_secret = path.extension().unwrap() == SECRET;
                assert_eq!(text.contains("s3cret-pw"), is_secret, "{}", path.display());
            }
        }
        store.remove_task_secret("t").unwrap();
        assert!(store.task_secret("t").unwrap().is_none());
    }

    #[test]
    fn a_leftover_temporary_file_is_removed_and_the_record_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_task(task("t"), None).unwrap();
        let leftover = dir.path().join(TASKS).join(".t.json.123.tmp");
        fs::write(&leftover, b"{ half").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.task("t").is_some());
        assert!(!leftover.exists());
    }
}
