//! What the docker backend does for an apply, a delete and a recovery, and how it waits for a
//! server to accept connections.

use super::{config_label, config_label_of, engine_error, is_not_found, is_running};
use super::{read_record, DockerBackend, Record, POLL};
use crate::backend::shared::{read_secret, remove_deployment_dir};
use crate::backend::{BackendError, Progress};
use crate::engine;
use common::deployer::{DeploymentEndpoint, DeploymentSpec};
use common::secret::SecretString;
use std::time::{Duration, Instant};

impl DockerBackend {
    /// Logs in as the admin and runs the engine's probe query.
    pub(super) async fn probe(
        &self,
        name: &str,
        record: &Record,
        password: &SecretString,
    ) -> Result<(), String> {
        let at = self.endpoint(name, record);
        engine::probe(
            record.engine,
            &at.host,
            at.port,
            &record.admin_username,
            password,
        )
        .await
    }

    /// Waits until the server answers a real query as the admin, its container stops, or the
    /// start timeout.
    pub(super) async fn wait_ready(
        &self,
        name: &str,
        record: &Record,
        password: &SecretString,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        progress.set(&format!(
            "waiting for {} to accept connections",
            engine::name(record.engine)
        ));
        let container = self.container_name(name);
        let deadline = Instant::now() + Duration::from_secs(self.settings.start_timeout_secs);
        loop {
            let last = match self.probe(name, record, password).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let state = self.inspect(name).await?.and_then(|c| c.state);
            let up = state
                .as_ref()
                .is_some_and(|s| s.running == Some(true) || s.restarting == Some(true));
            if !up {
                return Err(BackendError::Server(format!(
                    "the {} container {container} stopped while starting; its last output: {}",
                    engine::name(record.engine),
                    self.log_tail(&container).await
                )));
            }
            if Instant::now() >= deadline {
                return Err(BackendError::Server(format!(
                    "the {} container {container} did not accept connections within {}s (last error: {last}); its last output: {}",
                    engine::name(record.engine),
                    self.settings.start_timeout_secs,
                    self.log_tail(&container).await
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(super) async fn apply_spec(
        &self,
        spec: &DeploymentSpec,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let name = spec.name.as_str();
        let image = self
            .image_for(spec.engine, &spec.version)
            .map_err(BackendError::Invalid)?;
        let dir = self.dir(name);
        let (mut record, previous) = self.prepare_record(spec, image, &dir).await?;
        let password = read_secret(&dir)?;
        progress.set(&format!("checking image {}", record.image));
        self.ensure_image(&record.image, progress).await?;
        progress.set(&format!("creating volume {}", self.volume_name(name)));
        self.create_volume(name, record.engine).await?;

        let container = self.container_name(name);
        let wanted = self.container_body(name, &record);
        let existing = self.inspect(name).await?;
        match existing {
            None => {
                self.create_and_start(
                    name,
                    &dir,
                    &mut record,
                    previous.is_none(),
                    &password,
                    progress,
                )
                .await?;
                self.save_record(&dir, &record)?;
                self.wait_ready(name, &record, &password, progress).await?;
            }
            Some(current) if config_label(&current) == config_label_of(&wanted) => {
                if !is_running(&current) {
                    progress.set(&format!("starting container {container}"));
                    self.docker
                        .start_container(&container, None)
                        .await
                        .map_err(engine_error(format!("starting container {container}")))?;
                }
                self.save_record(&dir, &record)?;
                self.wait_ready(name, &record, &password, progress).await?;
            }
            Some(current) => {
                progress.set(&format!(
                    "replacing container {container} with new settings"
                ));
                let previous = previous.unwrap_or_else(|| record.clone());
                let running = is_running(&current);
                self.replace_container(name, &mut record, previous, running, &password, progress)
                    .await?;
            }
        }
        Ok(vec![self.endpoint(name, &record)])
    }

    /// Replaces the deployment's container by one with the record's new settings; if that one
    /// does not become ready, goes back to the `previous` settings and fails.
    async fn replace_container(
        &self,
        name: &str,
        record: &mut Record,
        previous: Record,
        running: bool,
        password: &SecretString,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let dir = self.dir(name);
        let container = self.container_name(name);
        self.stop_container(name, Some(&previous), running).await?;
        self.remove_container(&container).await?;
        let started = self
            .create_and_start(name, &dir, record, false, password, progress)
            .await;
        let ready = match started {
            Ok(()) => self.wait_ready(name, record, password, progress).await,
            Err(e) => Err(e),
        };
        if let Err(e) = ready {
            progress.set("restoring the previous settings");
            let mut restored = Record {
                seeded: record.seeded,
                ..previous
            };
            self.remove_container(&container).await?;
            if let Err(again) = self
                .create_and_start(name, &dir, &mut restored, false, password, progress)
                .await
            {
                tracing::error!(deployment.name = %name, error = %again, "the container does not start with its previous settings either");
            }
            self.save_record(&dir, &restored)?;
            return Err(e);
        }
        self.save_record(&dir, record)
    }

    pub(super) async fn delete_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let dir = self.dir(name);
        let record = read_record(&dir)?;
        let container = self.container_name(name);
        if let Some(current) = self.inspect(name).await? {
            progress.set(&format!("stopping container {container}"));
            self.stop_container(name, None, is_running(&current))
                .await?;
            progress.set(&format!("removing container {container}"));
            self.remove_container(&container).await?;
        }
        let volume = self.volume_name(name);
        progress.set(&format!("removing volume {volume}"));
        match self
            .docker
            .remove_volume(
                &volume,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(format!("removing volume {volume}"))(e)),
        }
        if record.is_some() || dir.exists() {
            remove_deployment_dir(&dir)?;
        }
        Ok(())
    }

    pub(super) async fn recover_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let dir = self.dir(name);
        let mut record = read_record(&dir)?.ok_or_else(|| {
            BackendError::Invalid(format!("deployment {name} has no record to start from"))
        })?;
        let password = read_secret(&dir)?;
        let container = self.container_name(name);
        match self.inspect(name).await? {
            Some(current) if is_running(&current) => {}
            Some(_) => {
                progress.set(&format!("starting container {container}"));
                self.docker
                    .start_container(&container, None)
                    .await
                    .map_err(engine_error(format!("starting container {container}")))?;
            }
            None => {
                tracing::warn!(deployment.name = %name, "container missing; recreating it on its volume");
                self.ensure_image(&record.image, progress).await?;
                self.create_volume(name, record.engine).await?;
                self.create_and_start(name, &dir, &mut record, false, &password, progress)
                    .await?;
            }
        }
        self.wait_ready(name, &record, &password, progress).await?;
        Ok(vec![self.endpoint(name, &record)])
    }
}
