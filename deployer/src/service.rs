//! The deployer's task runner: accepts applies and deletes as durable tasks, runs them on the
//! backend one at a time per deployment (in the order they were accepted, each deployment in
//! parallel with the others), and after a restart resumes unfinished tasks and brings the
//! deployments that should run back up.

use crate::backend::{Backend, Progress};
use crate::store::{now_ms, DeploymentRecord, Store, StoreError, StoredSpec};
use common::deployer::{
    Deployment, DeploymentSpec, DeploymentState, Task, TaskAction, TaskState, OWNER_LABEL,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

/// Longest deployment name (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// Why a request was refused or could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; the message is for the client.
    #[error("{0}")]
    Invalid(String),
    /// No deployment of that name.
    #[error("deployment {0} does not exist")]
    DeploymentNotFound(String),
    /// The name belongs to a deployment of another instance; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// The state files could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Job {
    Apply {
        task_id: String,
        spec: Box<DeploymentSpec>,
    },
    Delete {
        task_id: String,
    },
    Recover,
}

/// One deployment's queue and the worker draining it.
struct Queue {
    jobs: mpsc::UnboundedSender<Job>,
    worker: AbortHandle,
}

/// Deployments and their tasks.
pub struct Deployer {
    store: Arc<Store>,
    backend: Arc<dyn Backend>,
    queues: Mutex<HashMap<String, Queue>>,
    /// Held while a request checks who owns a name and records its task, so that two
    /// instances racing for one name cannot both pass the check.
    admission: Mutex<()>,
    /// Where the workers run: the runtime that built the deployer, not the HTTP worker thread
    /// that happened to accept a request (those stop with the HTTP server).
    runtime: tokio::runtime::Handle,
}

impl Deployer {
    /// A deployer over `store` running deployments on `backend`; call it inside the tokio
    /// runtime its tasks should run on.
    pub fn new(store: Store, backend: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::new(store),
            backend,
            queues: Mutex::default(),
            admission: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts `spec` for deployment `name`: a queued apply task.
    pub fn apply(self: &Arc<Self>, name: &str, spec: DeploymentSpec) -> Result<Task, ServiceError> {
        validate_name(name)?;
        if spec.name != name {
            return Err(ServiceError::Invalid(format!(
                "the spec names deployment {:?} but was sent for {name:?}",
                spec.name
            )));
        }
        self.backend
            .validate(&spec)
            .map_err(ServiceError::Invalid)?;
        let _admission = self.admission.lock().unwrap_or_else(|e| e.into_inner());
        self.check_owner(name, spec.labels.get(OWNER_LABEL).map(String::as_str))?;
        let task = self
            .store
            .insert_task(new_task(name, TaskAction::Apply), Some(&spec))?
            .task;
        self.store.create_deployment_if_absent(DeploymentRecord {
            spec: StoredSpec::from_spec(&spec),
            state: DeploymentState::Pending,
            endpoints: Vec::new(),
        })?;
        tracing::info!(deployment.name = %name, task.id = %task.id, "apply accepted");
        self.enqueue(
            name,
            Job::Apply {
                task_id: task.id.to_string(),
                spec: Box::new(spec),
            },
        );
        Ok(task)
    }

    /// Accepts the deletion of deployment `name`: a queued delete task.
    pub fn delete(self: &Arc<Self>, name: &str) -> Result<Task, ServiceError> {
        self.delete_owned(name, None)
    }

    /// Accepts the deletion of deployment `name` for instance `owner` (any owner when `None`):
    /// a queued delete task; a deployment of another instance is refused and kept.
    pub fn delete_owned(
        self: &Arc<Self>,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Task, ServiceError> {
        let _admission = self.admission.lock().unwrap_or_else(|e| e.into_inner());
        if self.store.deployment(name).is_none() {
            return Err(ServiceError::DeploymentNotFound(name.to_string()));
        }
        if let Some(owner) = owner {
            self.check_owner(name, Some(owner))?;
        }
        let task = self
            .store
            .insert_task(new_task(name, TaskAction::Delete), None)?
            .task;
        tracing::info!(deployment.name = %name, task.id = %task.id, "delete accepted");
        self.enqueue(
            name,
            Job::Delete {
                task_id: task.id.to_string(),
            },
        );
        Ok(task)
    }

    /// Refuses when deployment `name` exists and its owner label differs from `owner` (a
    /// deployment without an owner label can be claimed by anyone, as before labels).
    fn check_owner(&self, name: &str, owner: Option<&str>) -> Result<(), ServiceError> {
        let Some(record) = self.store.deployment(name) else {
            return Ok(());
        };
        match record.spec.labels.get(OWNER_LABEL) {
            Some(current) if Some(current.as_str()) != owner => {
                tracing::warn!(deployment.name = %name, "refused: the name belongs to another instance");
                Err(ServiceError::Conflict(format!(
                    "deployment {name} belongs to another instance; its name is not handed to a second one"
                )))
            }
            _ => Ok(()),
        }
    }

    /// One task.
    pub fn task(&self, id: &str) -> Option<Task> {
        self.store.task(id)
    }

    /// One deployment; a deployment recorded as running whose server is down shows `stopped`,
    /// and its `health` says whether supervision is restarting it or has given up.
    pub async fn deployment(&self, name: &str) -> Option<Deployment> {
        let record = self.store.deployment(name)?;
        Some(self.observe(&record).await)
    }

    /// Every deployment, by name.
    pub async fn deployments(&self) -> Vec<Deployment> {
        let mut out = Vec::new();
        for record in self.store.deployments() {
            out.push(self.observe(&record).await);
        }
        out
    }

    /// The record as the server is now: a deployment that should run shows whether its server
    /// does (`running` / `stopped`) and, with every deployment that has a server, its health.
    async fn observe(&self, record: &DeploymentRecord) -> Deployment {
        let name = &record.spec.name;
        let state = match record.state {
            // Stopped: a recovery failed, and supervision may have brought it back since.
            DeploymentState::Running | DeploymentState::Stopped => {
                match self.backend.status(name).await {
                    Ok(state) => state,
                    Err(e) => {
                        tracing::warn!(deployment.name = %name, error = %e, "cannot look at the server");
                        record.state
                    }
                }
            }
            other => other,
        };
        let health = match record.state {
            DeploymentState::Pending | DeploymentState::Deleting => None,
            _ => match self.backend.health(name).await {
                Ok(health) => Some(health),
                Err(e) => {
                    tracing::warn!(deployment.name = %name, error = %e, "cannot tell the server's health");
                    None
                }
            },
        };
        Deployment {
            health,
            ..record.to_deployment(state)
        }
    }

    /// After a restart: queues every unfinished task again (in the order they were
    /// accepted) and a recovery for every deployment that should run and has no task.
    pub fn resume(self: &Arc<Self>) {
        let mut busy = HashSet::new();
        for record in self.store.unfinished_tasks() {
            let name = record.task.deployment.clone();
            let task_id = record.task.id.to_string();
            busy.insert(name.clone());
            let span = tracing::info_span!("task", task.id = %task_id, deployment.name = %name);
            let _entered = span.enter();
            let job = match (record.task.action, record.spec) {
                (TaskAction::Delete, _) => Job::Delete { task_id },
                (TaskAction::Apply, Some(stored)) => match self.store.task_secret(&task_id) {
                    Ok(Some(password)) => Job::Apply {
                        task_id,
                        spec: Box::new(stored.with_password(password)),
                    },
                    other => {
                        if let Err(e) = other {
                            tracing::error!(error = %e, "cannot read the task's secret");
                        }
                        self.finish(
                            &task_id,
                            Err("the task's admin secret was lost; apply again".into()),
                        );
                        continue;
                    }
                },
                (TaskAction::Apply, None) => {
                    self.finish(
                        &task_id,
                        Err("the task's spec was lost; apply again".into()),
                    );
                    continue;
                }
            };
            tracing::info!("resuming task");
            self.enqueue(&name, job);
        }
        for record in self.store.deployments() {
            let name = &record.spec.name;
            if !busy.contains(name.as_str()) && record.state != DeploymentState::Deleting {
                self.enqueue(name, Job::Recover);
            }
        }
    }

    /// Stops every worker (their tasks stay unfinished and are resumed by the next start);
    /// the servers keep running.
    pub fn shutdown(&self) {
        self.backend.shutdown();
        for (_, queue) in self.queues().drain() {
            queue.worker.abort();
        }
    }

    fn enqueue(self: &Arc<Self>, name: &str, job: Job) {
        let mut queues = self.queues();
        let job = match queues.get(name) {
            None => job,
            Some(queue) => match queue.jobs.send(job) {
                Ok(()) => return,
                // The worker was aborted by a shutdown: start a new one.
                Err(mpsc::error::SendError(job)) => job,
            },
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // Cannot fail: the receiver is alive until it is moved into the worker below.
        let _ = tx.send(job);
        let worker = self
            .runtime
            .spawn(Arc::clone(self).work(name.to_string(), rx))
            .abort_handle();
        queues.insert(name.to_string(), Queue { jobs: tx, worker });
    }

    /// Runs the jobs of one deployment in order, then removes its queue.
    async fn work(self: Arc<Self>, name: String, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            let job = match jobs.try_recv() {
                Ok(job) => job,
                Err(_) => {
                    // Decide to stop under the map lock, so that no job can be queued between
                    // the last look and the removal of the queue.
                    let mut queues = self.queues();
                    match jobs.try_recv() {
                        Ok(job) => job,
                        Err(_) => {
                            queues.remove(&name);
                            return;
                        }
                    }
                }
            };
            self.run(&name, job).await;
        }
    }

    async fn run(&self, name: &str, job: Job) {
        match job {
            Job::Apply { task_id, spec } => {
                let span = tracing::info_span!("task", task.id = %task_id, deployment.name = %name, task.action = "apply");
                self.run_apply(&task_id, *spec).instrument(span).await;
            }
            Job::Delete { task_id } => {
                let span = tracing::info_span!("task", task.id = %task_id, deployment.name = %name, task.action = "delete");
                self.run_delete(name, &task_id).instrument(span).await;
            }
            Job::Recover => {
                let span = tracing::info_span!("recover", deployment.name = %name);
                self.run_recover(name).instrument(span).await;
            }
        }
    }

    async fn run_apply(&self, task_id: &str, spec: DeploymentSpec) {
        let progress = self.start(task_id);
        let mut record = self
            .store
            .deployment(&spec.name)
            .unwrap_or_else(|| DeploymentRecord {
                spec: StoredSpec::from_spec(&spec),
                state: DeploymentState::Pending,
                endpoints: Vec::new(),
            });
        record.spec = StoredSpec::from_spec(&spec);
        record.state = DeploymentState::Pending;
        self.persist(|s| s.put_deployment(record.clone()));
        let result = self.backend.apply(&spec, &progress).await;
        match &result {
            Ok(endpoints) => {
                record.state = DeploymentState::Running;
                record.endpoints = endpoints.clone();
            }
            Err(_) => record.state = DeploymentState::Failed,
        }
        self.persist(|s| s.put_deployment(record));
        self.finish(task_id, result.map(|_| ()).map_err(|e| e.to_string()));
    }

    async fn run_delete(&self, name: &str, task_id: &str) {
        let progress = self.start(task_id);
        self.persist(|s| s.set_deployment_state(name, DeploymentState::Deleting));
        let result = self.backend.delete(name, &progress).await;
        match &result {
            Ok(()) => self.persist(|s| s.remove_deployment(name)),
            Err(_) => self.persist(|s| s.set_deployment_state(name, DeploymentState::Failed)),
        }
        self.finish(task_id, result.map_err(|e| e.to_string()));
    }

    async fn run_recover(&self, name: &str) {
        let Some(mut record) = self.store.deployment(name) else {
            return;
        };
        if matches!(
            self.backend.status(name).await,
            Ok(DeploymentState::Stopped)
        ) {
            // Not `running` until it answers again.
            self.persist(|s| s.set_deployment_state(name, DeploymentState::Pending));
        }
        match self.backend.recover(name, &Progress::discard()).await {
            Ok(endpoints) => {
                tracing::info!("deployment is running");
                record.state = DeploymentState::Running;
                record.endpoints = endpoints;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not bring the deployment back up");
                if record.state == DeploymentState::Running {
                    record.state = DeploymentState::Stopped;
                }
                // Otherwise keep what it was (failed, pending from an interrupted apply).
            }
        }
        self.persist(|s| s.put_deployment(record));
    }

    /// Marks a task running; returns the progress reporter that updates it.
    fn start(&self, task_id: &str) -> Progress {
        tracing::info!("task started");
        self.persist(|s| {
            s.update_task(task_id, |t| {
                t.state = TaskState::Running;
                t.progress = "started".into();
            })
            .map(|_| ())
        });
        let store = Arc::clone(&self.store);
        let id = task_id.to_string();
        Progress::for_task(task_id, move |message| {
            tracing::info!(progress = message, "task progress");
            if let Err(e) = store.update_task(&id, |t| t.progress = message.to_string()) {
                tracing::error!(error = %e, "cannot record task progress");
            }
        })
    }

    /// Ends a task: `Ok` succeeded, `Err(message)` failed. Call it inside the task's span.
    fn finish(&self, task_id: &str, result: Result<(), String>) {
        match &result {
            Ok(()) => tracing::info!("task succeeded"),
            Err(e) => tracing::error!(error = %e, "task failed"),
        }
        self.persist(|s| {
            s.update_task(task_id, |t| match result {
                Ok(()) => {
                    t.state = TaskState::Succeeded;
                    t.progress = match t.action {
                        TaskAction::Apply => "ready",
                        TaskAction::Delete => "deleted",
                    }
                    .into();
                    t.error = None;
                }
                Err(message) => {
                    t.state = TaskState::Failed;
                    t.error = Some(message);
                }
            })
            .map(|_| ())
        });
        self.persist(|s| s.remove_task_secret(task_id));
    }

    /// Writes state from a background task, where nobody can be told of a failure but the log.
    fn persist(&self, write: impl FnOnce(&Store) -> Result<(), StoreError>) {
        if let Err(e) = write(&self.store) {
            tracing::error!(error = %e, "cannot write deployer state");
        }
    }
}

fn new_task(name: &str, action: TaskAction) -> Task {
    let now = now_ms();
    Task {
        id: uuid::Uuid::new_v4().to_string().into(),
        deployment: name.into(),
        action,
        state: TaskState::Queued,
        progress: "queued".into(),
        error: None,
        created_at_ms: now,
        updated_at_ms: now,
    }
}

/// A deployment name: `[a-z0-9-]`, 1 to 63 characters, not starting or ending with `-`.
pub fn validate_name(name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "deployment name {name:?} is invalid: 1 to {MAX_NAME_LEN} characters a-z, 0-9 or '-', not starting or ending with '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_are_dns_labels() {
        for good in ["pg-1", "a", &"x".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a/b", "..", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
