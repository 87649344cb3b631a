//! What the bosh backend does for an apply, a delete and a recovery: one Director task each,
//! recorded before it is followed, and followed to its end with its events as progress.

use super::director::{Call, DirectorTask};
use super::events::{describe, EventReader};
use super::{director_error, manifest, read_record, Action, BoshBackend, InFlight, Record};
use crate::backend::shared::{
    check_later_apply, read_secret, remove_deployment_dir, write_record, write_secret,
};
use crate::backend::{BackendError, Progress};
use common::deployer::{AdminCredentials, DeploymentEndpoint, DeploymentSpec};
use reqwest::Method;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Mode of the record (it holds no secret, but nobody else needs it).
const RECORD_MODE: u32 = 0o600;

impl BoshBackend {
    /// Deploys `spec` (the same manifest again is a task that changes nothing), then answers
    /// the endpoints once the server answers the admin's query.
    pub(super) async fn apply_spec(
        &self,
        spec: &DeploymentSpec,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let template =
            manifest::template_for(&self.settings, spec).map_err(BackendError::Invalid)?;
        let name = spec.name.as_str();
        let dir = self.dir(name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(BackendError::io(format!("creating {}", dir.display())))?;
        let existing = read_record(&dir)?;
        let admin_username = match &existing {
            Some(record) => {
                check_later_apply(spec, &dir, record.engine, &record.admin_username)?;
                record.admin_username.clone()
            }
            None => {
                write_secret(&dir, &spec.admin.password)?;
                spec.admin.username.clone()
            }
        };
        // The admin account of the first apply stays.
        let effective = DeploymentSpec {
            admin: AdminCredentials {
                username: admin_username.clone(),
                password: read_secret(&dir)?,
            },
            ..spec.clone()
        };
        let shape = manifest::shape(spec, template);
        let mut record = Record {
            engine: spec.engine,
            admin_username,
            deployment: self.deployment_name(name),
            instance_group: shape.instance_group,
            network: shape.network,
            port: shape.port,
            in_flight: existing.and_then(|r| r.in_flight),
        };
        write_record(&dir, &record, RECORD_MODE)?;
        let manifest = manifest::render(&record.deployment, &effective, template)
            .map_err(BackendError::Server)?;
        let call = Call::new(Method::POST, "/deployments").with_body("text/yaml", manifest);
        self.run_task(&dir, &mut record, Action::Deploy, call, progress)
            .await?;
        let endpoints = self.endpoints(&record, true).await?;
        let password = read_secret(&dir)?;
        self.wait_ready(&record, &endpoints, &password, progress)
            .await?;
        Ok(endpoints)
    }

    /// Deletes the BOSH deployment (one the Director does not know is gone already) and the
    /// record.
    pub(super) async fn delete_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let dir = self.dir(name);
        let deployment = self.deployment_name(name);
        let call = Call::new(Method::DELETE, format!("/deployments/{deployment}"));
        match read_record(&dir)? {
            Some(mut record) => {
                self.run_task(&dir, &mut record, Action::Delete, call, progress)
                    .await?
            }
            None => {
                // No record (its directory was lost): nothing to resume; delete all the same.
                let context = context_id(progress);
                let running = self.refuse_if_busy(&deployment, &context).await?;
                let task = match running {
                    Some(task) => Some(task),
                    None => self.start(call, &context, Action::Delete).await?,
                };
                if let Some(task) = task {
                    self.follow(task, Action::Delete, &deployment, progress)
                        .await
                        .map_err(NotDone::into_error)?;
                }
            }
        }
        remove_deployment_dir(&dir)
    }

    /// After a deployer restart: follows a task left in flight to its end, then answers the
    /// endpoints of the deployment once its server answers.
    pub(super) async fn recover_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let dir = self.dir(name);
        let Some(mut record) = read_record(&dir)? else {
            return Err(BackendError::Invalid(format!(
                "deployment {name} has no BOSH record; apply it again"
            )));
        };
        if let Some(flight) = record.in_flight.clone() {
            let result = self
                .follow(flight.task, flight.action, &record.deployment, progress)
                .await;
            if !matches!(result, Err(NotDone::Unknown(_))) {
                record.in_flight = None;
                write_record(&dir, &record, RECORD_MODE)?;
            }
            result.map_err(NotDone::into_error)?;
        }
        let endpoints = self.endpoints(&record, true).await?;
        let password = read_secret(&dir)?;
        self.wait_ready(&record, &endpoints, &password, progress)
            .await?;
        Ok(endpoints)
    }

    /// Runs `call` as one Director task for `record`'s deployment: a task this deployer task
    /// started before a restart is followed again instead; one an earlier operation left in
    /// flight is waited for first; a task somebody else runs on the deployment refuses the
    /// operation. The task is recorded before it is followed.
    async fn run_task(
        &self,
        dir: &Path,
        record: &mut Record,
        action: Action,
        call: Call<'_>,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let context = context_id(progress);
        let deployment = record.deployment.clone();
        if let Some(flight) = record.in_flight.clone() {
            let ours = flight.context_id == context && flight.action == action;
            progress.set(&if ours {
                format!(
                    "following BOSH task {} (started before the deployer restarted)",
                    flight.task
                )
            } else {
                format!(
                    "waiting for BOSH task {} of an earlier operation to end",
                    flight.task
                )
            });
            let result = self
                .follow(flight.task, flight.action, &deployment, progress)
                .await;
            if let Err(NotDone::Unknown(e)) = result {
                return Err(e);
            }
            record.in_flight = None;
            write_record(dir, record, RECORD_MODE)?;
            if ours {
                return result.map_err(NotDone::into_error);
            }
            if let Err(e) = result {
                tracing::warn!(director.task = flight.task, error = %e.into_error(), "an earlier operation's Director task did not succeed");
            }
        }
        let task = match self.refuse_if_busy(&deployment, &context).await? {
            // Started by this deployer task just before a restart, not recorded yet.
            Some(adopted) => Some(adopted),
            None => self.start(call, &context, action).await?,
        };
        let Some(task) = task else {
            return Ok(());
        };
        record.in_flight = Some(InFlight {
            task,
            context_id: context,
            action,
        });
        write_record(dir, record, RECORD_MODE)?;
        let result = self.follow(task, action, &deployment, progress).await;
        // A task not seen to end stays recorded: the next operation waits for it.
        if !matches!(result, Err(NotDone::Unknown(_))) {
            record.in_flight = None;
            write_record(dir, record, RECORD_MODE)?;
        }
        result.map_err(NotDone::into_error)
    }

    /// Sends `call`; answers its task, or `None` when a delete finds no deployment.
    async fn start(
        &self,
        call: Call<'_>,
        context: &str,
        action: Action,
    ) -> Result<Option<u64>, BackendError> {
        let what = format!(
            "asking the BOSH Director to {} {}",
            action.verb(),
            call.path
        );
        match self.director.start_task(call, context).await {
            Ok(task) => {
                tracing::info!(
                    director.task = task,
                    action = action.verb(),
                    "Director task started"
                );
                Ok(Some(task))
            }
            Err(e) if action == Action::Delete && e.is_deployment_not_found() => Ok(None),
            Err(e) => Err(director_error(&what)(e)),
        }
    }

    /// Refuses when a task runs on `deployment` that this deployer task did not start; a
    /// running task it did start (context `context`) is answered to be followed.
    async fn refuse_if_busy(
        &self,
        deployment: &str,
        context: &str,
    ) -> Result<Option<u64>, BackendError> {
        let path =
            format!("/tasks?state=queued,processing,cancelling&deployment={deployment}&verbose=1");
        let running: Vec<DirectorTask> = self
            .director
            .get_json(&path)
            .await
            .map_err(director_error("asking the BOSH Director for running tasks"))?;
        let mut running = running.into_iter().filter(DirectorTask::is_running);
        let Some(task) = running.next() else {
            return Ok(None);
        };
        if task.context_id.as_deref() == Some(context) {
            return Ok(Some(task.id));
        }
        tracing::warn!(director.task = task.id, description = %task.description, "refused: a Director task runs on the deployment");
        Err(BackendError::Invalid(format!(
            "BOSH deployment {deployment} is busy with Director task {} ({}) that this operation did not start; try again when it has ended",
            task.id, task.description
        )))
    }

    /// Polls task `task` until it ends, its events (read with `Range`, only the new lines)
    /// reported as progress; a task ending `error`, `cancelled` or `timeout` fails with a
    /// description for people and the Director's error in the log.
    pub(super) async fn follow(
        &self,
        task: u64,
        action: Action,
        deployment: &str,
        progress: &Progress,
    ) -> Result<(), NotDone> {
        let deadline = Instant::now() + Duration::from_secs(self.settings.task_timeout_secs);
        let mut reader = EventReader::default();
        let what = format!("following Director task {task}");
        let lost = |e| NotDone::Unknown(director_error(&what)(e));
        loop {
            let state: DirectorTask = self
                .director
                .get_json(&format!("/tasks/{task}"))
                .await
                .map_err(lost)?;
            let bytes = self
                .director
                .events_from(task, reader.offset())
                .await
                .map_err(lost)?;
            if let Some(text) = reader.push(&bytes).iter().filter_map(describe).next_back() {
                progress.set(&text);
            }
            match state.state.as_str() {
                "done" => return Ok(()),
                "error" | "cancelled" | "timeout" => {
                    return Err(NotDone::Failed(task_failure(
                        &state, action, deployment, &reader,
                    )))
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(NotDone::Unknown(BackendError::Server(format!(
                    "BOSH task {task} ({} {deployment}) did not end within {} s; it goes on on the Director",
                    action.verb(),
                    self.settings.task_timeout_secs
                ))));
            }
            tokio::time::sleep(self.poll_interval()).await;
        }
    }
}

/// The failure of a task that ended `error`, `cancelled` or `timeout`: the Director's own
/// error goes to the log; the description says what failed and where.
fn task_failure(
    task: &DirectorTask,
    action: Action,
    deployment: &str,
    reader: &EventReader,
) -> BackendError {
    tracing::error!(
        director.task = task.id,
        state = %task.state,
        result = task.result.as_deref().unwrap_or(""),
        error = reader.last_error.as_ref().map(|e| e.message.as_str()).unwrap_or(""),
        error.code = reader.last_error.as_ref().map(|e| e.code).unwrap_or(0),
        "Director task failed"
    );
    let during = reader
        .last_step
        .as_ref()
        .and_then(describe)
        .map(|step| format!(" during \"{step}\""))
        .unwrap_or_default();
    let ended = match task.state.as_str() {
        "error" => "failed",
        "cancelled" => "was cancelled",
        _ => "timed out",
    };
    BackendError::Server(format!(
        "BOSH could not {} deployment {deployment}: Director task {} {ended}{during}; the operator log has the Director's error",
        action.verb(),
        task.id
    ))
}

/// Why following a task did not end in success.
pub(super) enum NotDone {
    /// The task ended `error`, `cancelled` or `timeout`.
    Failed(BackendError),
    /// The task was not seen to end (the Director stayed unreachable, or the operation's
    /// deadline passed): it stays recorded in flight, and the next operation waits for it.
    Unknown(BackendError),
}

impl NotDone {
    pub(super) fn into_error(self) -> BackendError {
        match self {
            Self::Failed(e) | Self::Unknown(e) => e,
        }
    }
}

/// The context id of the operation: the deployer task's id (a fresh id outside a task).
fn context_id(progress: &Progress) -> String {
    progress
        .task_id()
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
