//! The docker backend's engine objects: the image (pulled when missing), the data volume, and
//! the container — its body (labelled with a hash of everything that shapes it), the files
//! seeded into it, creating, starting, stopping and removing it.

use super::image;
use super::{
    engine_error, is_not_found, is_port_taken, status_of, DockerBackend, Record, LABEL_CONFIG,
    LABEL_DEPLOYMENT, LABEL_MANAGED, PORT_ATTEMPTS, STOP_TIMEOUT_SECS,
};
use crate::backend::shared::save_before_stop;
use crate::backend::{BackendError, Progress};
use crate::engine;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use common::deployer::Engine;
use common::secret::SecretString;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::Path;

impl DockerBackend {
    /// Makes sure the image is on the engine, pulling it if it is not.
    pub(super) async fn ensure_image(
        &self,
        image: &str,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(format!("inspecting image {image}"))(e)),
        }
        progress.set(&format!("pulling image {image}"));
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut pull = self.docker.create_image(Some(options), None, None);
        while let Some(step) = pull.next().await {
            step.map_err(|e| {
                BackendError::Server(format!(
                    "image {image} is not on the engine and cannot be pulled: {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// The deployment's container, if there is one; one of the same name that this deployer
    /// did not create is an error.
    pub(super) async fn inspect(
        &self,
        name: &str,
    ) -> Result<Option<ContainerInspectResponse>, BackendError> {
        let container = self.container_name(name);
        match self.docker.inspect_container(&container, None).await {
            Ok(c) => {
                let labels = c.config.as_ref().and_then(|c| c.labels.as_ref());
                let ours = labels.is_some_and(|l| {
                    l.get(LABEL_MANAGED).map(String::as_str) == Some("true")
                        && l.get(LABEL_DEPLOYMENT).map(String::as_str) == Some(name)
                });
                if ours {
                    Ok(Some(c))
                } else {
                    Err(BackendError::Invalid(format!(
                        "a container named {container} exists that this deployer did not create; remove or rename it"
                    )))
                }
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine_error(format!("inspecting container {container}"))(e)),
        }
    }

    /// The labels of everything this backend creates for deployment `name`.
    fn labels(&self, name: &str, engine: Engine) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_DEPLOYMENT.to_string(), name.to_string()),
            ("osb.engine".to_string(), engine::key(engine).to_string()),
        ])
    }

    /// The container for `record`, labelled with a hash of everything that shapes it.
    pub(super) fn container_body(&self, name: &str, record: &Record) -> ContainerCreateBody {
        let port_key = format!("{}/tcp", engine::default_port(record.engine));
        let image::ServerRun {
            env,
            cmd,
            data,
            stop_signal,
        } = image::server_run(record);
        let mut labels = self.labels(name, record.engine);
        let fingerprint = serde_json::json!({
            "image": record.image, "env": env, "cmd": cmd, "port": record.host_port,
            "publish": self.settings.publish_host, "network": self.settings.network,
        });
        labels.insert(
            LABEL_CONFIG.to_string(),
            sha256_hex(&fingerprint.to_string()),
        );
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(self.settings.publish_host.clone()),
                    host_port: Some(record.host_port.to_string()),
                }]),
            )])),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            mounts: Some(vec![Mount {
                target: Some(data.to_string()),
                source: Some(self.volume_name(name)),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            network_mode: self.settings.network.clone(),
            ..Default::default()
        };
        let networking_config = self
            .settings
            .network
            .as_ref()
            .map(|network| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![self.container_name(name)]),
                        ..Default::default()
                    },
                )])),
            });
        ContainerCreateBody {
            image: Some(record.image.clone()),
            cmd: Some(cmd),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key]),
            stop_timeout: Some(i64::from(STOP_TIMEOUT_SECS)),
            stop_signal,
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        }
    }

    /// Copies the files the server needs at its first start into the created container: the
    /// PostgreSQL admin password file (every container), Redis' first `users.acl` (once per
    /// volume).
    async fn seed(
        &self,
        container: &str,
        record: &Record,
        password: &SecretString,
    ) -> Result<bool, BackendError> {
        let Some((archive, path)) = image::seed_files(record, password).map_err(
            BackendError::io("building the archive of the server's files"),
        )?
        else {
            return Ok(false);
        };
        let options = UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(engine_error(format!(
                "copying the server's files into {container}"
            )))?;
        Ok(image::seeds_volume(record.engine))
    }

    /// Creates the deployment's container and starts it; a port taken meanwhile (by someone
    /// else on the host) is replaced by another one if the deployment never ran.
    pub(super) async fn create_and_start(
        &self,
        name: &str,
        dir: &Path,
        record: &mut Record,
        first: bool,
        password: &SecretString,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let container = self.container_name(name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            progress.set(&format!("creating container {container}"));
            let options = CreateContainerOptions {
                name: Some(container.clone()),
                ..Default::default()
            };
            self.docker
                .create_container(Some(options), self.container_body(name, record))
                .await
                .map_err(engine_error(format!("creating container {container}")))?;
            if self.seed(&container, record, password).await? {
                record.seeded = true;
                self.save_record(dir, record)?;
            }
            progress.set(&format!("starting container {container}"));
            match self.docker.start_container(&container, None).await {
                Ok(()) => return Ok(()),
                Err(e) if first && attempt < PORT_ATTEMPTS && is_port_taken(&e) => {
                    tracing::warn!(deployment.name = %name, port = record.host_port, "host port taken meanwhile; choosing another");
                    self.remove_container(&container).await?;
                    record.host_port = self.allocate_port().await?;
                    self.save_record(dir, record)?;
                }
                Err(e) => return Err(engine_error(format!("starting container {container}"))(e)),
            }
        }
    }

    /// Removes a container (forcibly); one that is gone already is fine.
    pub(super) async fn remove_container(&self, container: &str) -> Result<(), BackendError> {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(format!("removing container {container}"))(e)),
        }
    }

    /// Stops the container politely (the engine kills it after [`STOP_TIMEOUT_SECS`]); Redis
    /// saves its run-time users first.
    pub(super) async fn stop_container(
        &self,
        name: &str,
        record: Option<&Record>,
        running: bool,
    ) -> Result<(), BackendError> {
        let container = self.container_name(name);
        if !running {
            return Ok(());
        }
        if let Some(record) = record {
            let at = self.endpoint(name, record);
            save_before_stop(
                name,
                &self.dir(name),
                record.engine,
                (&at.host, at.port),
                &record.admin_username,
            )
            .await;
        }
        let options = StopContainerOptions {
            t: Some(STOP_TIMEOUT_SECS),
            ..Default::default()
        };
        match self.docker.stop_container(&container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) || status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(engine_error(format!("stopping container {container}"))(e)),
        }
    }

    /// The end of the container's output, for error messages.
    pub(super) async fn log_tail(&self, container: &str) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "5".into(),
            ..Default::default()
        };
        let mut logs = self.docker.logs(container, Some(options));
        let mut out = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            out.push_str(&chunk.to_string());
        }
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            "(no output)".into()
        } else {
            lines.join(" | ")
        }
    }

    /// Creates the deployment's data volume (the same again is a no-op on the engine).
    pub(super) async fn create_volume(
        &self,
        name: &str,
        engine: Engine,
    ) -> Result<(), BackendError> {
        let volume = self.volume_name(name);
        let request = VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(self.labels(name, engine)),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(engine_error(format!("creating volume {volume}")))
    }
}

/// The SHA-256 of `text`, in hex.
fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
