//! The `docker` backend: each deployment is one container on a Docker Engine, with its data in
//! a named volume:
//!
//! | engine object | name | what |
//! |---|---|---|
//! | container | `<prefix><deployment>` | the server; labels `osb.managed=true`, `osb.deployment=<name>`, `osb.config=<hash of its settings>`; restart policy `unless-stopped` |
//! | volume | `<prefix><deployment>-data` | the server's data (PGDATA, Redis' `/data` with `users.acl`) |
//!
//! What the deployer keeps under `<data_dir>/deployments/<name>/`: `instance.json` (engine,
//! image, the host port — chosen once and published on every container the deployment ever
//! gets —, admin user name, settings) and `admin.secret` (mode 0600: readiness checks after a
//! restart log in with it). A restarted deployer finds its containers by name and label and
//! adopts them; a missing container is recreated on the same volume and port.
//!
//! Images behave like the public `postgres` and `redis` images (the local test images mimic
//! them): PostgreSQL reads the admin from `POSTGRES_USER` and `POSTGRES_PASSWORD_FILE` (a file
//! copied into the container before it starts, never an environment variable that `docker
//! inspect` would show) and takes settings as `-c key=value`; Redis takes settings as
//! `--key value` and its admin from `users.acl` (a SHA-256 hash, copied into the volume once).
//! A settings change replaces the container (same volume, same port).

mod health;

use super::process::{engine_name, major, read_json, read_secret, validate_spec, write_secret};
use super::process::{postgres, redis};
use super::{Backend, BackendError, BoxFuture, Progress};
use crate::config::DockerSettings;
use crate::store::write_atomic;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use common::deployer::{
    DeploymentEndpoint, DeploymentHealth, DeploymentSpec, DeploymentState, Engine,
};
use common::secret::SecretString;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::process::DEPLOYMENTS_DIR;

const INSTANCE_FILE: &str = "instance.json";
/// Label on everything this backend creates.
pub const LABEL_MANAGED: &str = "osb.managed";
/// Label naming the deployment a container or volume belongs to.
pub const LABEL_DEPLOYMENT: &str = "osb.deployment";
/// Label holding a hash of the container's settings: a different hash means "replace it".
const LABEL_CONFIG: &str = "osb.config";
/// The user the public `postgres` and `redis` images run their servers as (the local images
/// use the same); files copied into a container belong to it.
const SERVER_UID: u64 = 999;
/// Where the PostgreSQL admin password file is copied in the container.
const PG_PASSWORD_DIR: &str = "osb";
const PG_PASSWORD_FILE: &str = "/osb/admin-password";
const PG_DATA: &str = "/var/lib/postgresql/data";
const REDIS_DATA: &str = "/data";
const REDIS_ACL: &str = "users.acl";
/// Seconds the engine gives a server to stop before it kills it.
const STOP_TIMEOUT_SECS: i32 = 30;
/// How often a container whose port was taken meanwhile is created again on another port.
const PORT_ATTEMPTS: u32 = 5;
const POLL: Duration = Duration::from_millis(250);
/// Timeout of one engine API call (image pulls stream and are not cut by it).
const API_TIMEOUT_SECS: u64 = 120;

/// What the backend remembers about a deployment besides its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    engine: Engine,
    image: String,
    /// The host port, chosen on the first apply and kept for good.
    host_port: u16,
    admin_username: String,
    /// The settings of the current container (to recreate it as it was).
    #[serde(default)]
    settings: BTreeMap<String, String>,
    /// Whether the volume got its first files (Redis' `users.acl`).
    #[serde(default)]
    seeded: bool,
}

/// Runs deployments as containers on a Docker Engine.
pub struct DockerBackend {
    docker: Docker,
    settings: DockerSettings,
    root: PathBuf,
}

impl DockerBackend {
    /// Connects to the engine (negotiating the API version) and keeps the deployments'
    /// records under `<data_dir>/deployments/`.
    pub async fn connect(data_dir: &Path, settings: DockerSettings) -> Result<Self, BackendError> {
        let docker = connect(&settings.socket).await?;
        let root = data_dir.join(DEPLOYMENTS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(BackendError::io(format!("creating {}", root.display())))?;
        if settings.host_ports.0 == 0 || settings.host_ports.0 > settings.host_ports.1 {
            return Err(BackendError::Invalid(format!(
                "docker.host_ports {:?} is not a range of ports",
                settings.host_ports
            )));
        }
        Ok(Self {
            docker,
            settings,
            root,
        })
    }

    /// The container of deployment `name`.
    pub fn container_name(&self, name: &str) -> String {
        format!("{}{name}", self.settings.name_prefix)
    }

    /// The data volume of deployment `name`.
    pub fn volume_name(&self, name: &str) -> String {
        format!("{}{name}-data", self.settings.name_prefix)
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn endpoint(&self, name: &str, record: &Record) -> DeploymentEndpoint {
        match &self.settings.network {
            Some(_) => DeploymentEndpoint {
                host: self.container_name(name),
                port: engine_port(record.engine),
            },
            None => DeploymentEndpoint {
                host: self.settings.advertise_host.clone(),
                port: record.host_port,
            },
        }
    }

    /// The image configured for the spec's engine and major version.
    fn image_for(&self, engine: Engine, version: &str) -> Result<String, String> {
        let prefix = format!("{}-", engine_key(engine));
        let wanted = major(version);
        let mut offered = self
            .settings
            .images
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix));
        let found = if wanted.is_empty() {
            // No version asked: the highest major offered.
            offered.max_by_key(|(k, _)| k[prefix.len()..].parse::<u32>().unwrap_or(0))
        } else {
            offered.find(|(k, _)| &k[prefix.len()..] == wanted)
        };
        found.map(|(_, image)| image.clone()).ok_or_else(|| {
            let keys: Vec<&str> = self
                .settings
                .images
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .map(String::as_str)
                .collect();
            format!(
                "{} {version} is not available from this deployer (images: {})",
                engine_name(engine),
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            )
        })
    }

    /// Host ports already promised to a deployment of this deployer or published by a
    /// container on the engine.
    async fn ports_in_use(&self) -> HashSet<u16> {
        let mut taken: HashSet<u16> = fs::read_dir(&self.root)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| read_record(&e.path()).ok().flatten())
                    .map(|r| r.host_port)
                    .collect()
            })
            .unwrap_or_default();
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        if let Ok(containers) = self.docker.list_containers(Some(options)).await {
            taken.extend(
                containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| p.public_port),
            );
        }
        taken
    }

    /// A free host port from the configured range, picked at random (several deployers may
    /// share one engine).
    async fn allocate_port(&self) -> Result<u16, BackendError> {
        let taken = self.ports_in_use().await;
        let (low, high) = self.settings.host_ports;
        let span = u128::from(high - low) + 1;
        for _ in 0..64 {
            let offset = uuid::Uuid::new_v4().as_u128() % span;
            let port = low + u16::try_from(offset).unwrap_or(0);
            if taken.contains(&port) {
                continue;
            }
            // Free here as well (when the deployer runs on the engine's host).
            if std::net::TcpListener::bind((self.settings.publish_host.as_str(), port)).is_ok() {
                return Ok(port);
            }
        }
        Err(BackendError::Server(format!(
            "no free host port in {low}-{high}"
        )))
    }

    fn save_record(&self, dir: &Path, record: &Record) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| BackendError::Server(format!("encoding the instance record: {e}")))?;
        let path = dir.join(INSTANCE_FILE);
        write_atomic(&path, &bytes, 0o600)
            .map_err(BackendError::io(format!("writing {}", path.display())))
    }

    /// The deployment's record, created (with its directory, port and admin secret) on the
    /// first apply; later applies update its image and settings.
    async fn prepare_record(
        &self,
        spec: &DeploymentSpec,
        image: String,
        dir: &Path,
    ) -> Result<(Record, Option<Record>), BackendError> {
        if let Some(previous) = read_record(dir)? {
            if previous.engine != spec.engine {
                return Err(BackendError::Invalid(format!(
                    "deployment {} runs {}; it cannot become {} (delete it first)",
                    spec.name,
                    engine_name(previous.engine),
                    engine_name(spec.engine)
                )));
            }
            if previous.admin_username != spec.admin.username {
                tracing::warn!(deployment.name = %spec.name, "admin user name change ignored: the admin of the first apply stays");
            }
            match read_secret(dir) {
                Ok(stored) if stored != spec.admin.password => {
                    tracing::warn!(deployment.name = %spec.name, "admin password change ignored: the admin of the first apply stays");
                }
                Ok(_) => {}
                Err(_) => write_secret(dir, &spec.admin.password)?,
            }
            let record = Record {
                image,
                settings: spec.settings.clone(),
                ..previous.clone()
            };
            return Ok((record, Some(previous)));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(BackendError::io(format!("creating {}", dir.display())))?;
        write_secret(dir, &spec.admin.password)?;
        let record = Record {
            engine: spec.engine,
            image,
            host_port: self.allocate_port().await?,
            admin_username: spec.admin.username.clone(),
            settings: spec.settings.clone(),
            seeded: false,
        };
        self.save_record(dir, &record)?;
        Ok((record, None))
    }

    /// Makes sure the image is on the engine, pulling it if it is not.
    async fn ensure_image(&self, image: &str, progress: &Progress) -> Result<(), BackendError> {
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

    async fn inspect(&self, name: &str) -> Result<Option<ContainerInspectResponse>, BackendError> {
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

    fn labels(&self, name: &str, engine: Engine) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_DEPLOYMENT.to_string(), name.to_string()),
            ("osb.engine".to_string(), engine_key(engine).to_string()),
        ])
    }

    /// The container for `record`, labelled with a hash of everything that shapes it.
    fn container_body(&self, name: &str, record: &Record) -> ContainerCreateBody {
        let port_key = format!("{}/tcp", engine_port(record.engine));
        let (env, cmd, data) = match record.engine {
            Engine::Postgresql => {
                let mut cmd = vec!["postgres".to_string()];
                for (key, value) in &record.settings {
                    cmd.push("-c".into());
                    cmd.push(format!("{key}={value}"));
                }
                let env = vec![
                    format!("POSTGRES_USER={}", record.admin_username),
                    format!("POSTGRES_PASSWORD_FILE={PG_PASSWORD_FILE}"),
                    format!("PGDATA={PG_DATA}"),
                ];
                (env, cmd, PG_DATA)
            }
            Engine::Redis => {
                let mut cmd: Vec<String> = [
                    "redis-server",
                    "--port",
                    "6379",
                    "--dir",
                    REDIS_DATA,
                    "--aclfile",
                    &format!("{REDIS_DATA}/{REDIS_ACL}"),
                    "--appendonly",
                    "yes",
                    "--protected-mode",
                    "no",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                for (key, value) in &record.settings {
                    cmd.push(format!("--{key}"));
                    cmd.push(value.clone());
                }
                (Vec::new(), cmd, REDIS_DATA)
            }
        };
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
            // PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
            stop_signal: (record.engine == Engine::Postgresql).then(|| "SIGINT".to_string()),
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
        let archive = match record.engine {
            Engine::Postgresql => tar_archive(&[
                (PG_PASSWORD_DIR, None, 0o700),
                (
                    &PG_PASSWORD_FILE[1..],
                    Some(password.expose().as_bytes()),
                    0o400,
                ),
            ]),
            Engine::Redis if !record.seeded => {
                let acl = redis::render_acl(&record.admin_username, password);
                tar_archive(&[(REDIS_ACL, Some(acl.as_bytes()), 0o600)])
            }
            Engine::Redis => return Ok(false),
        }
        .map_err(BackendError::io(
            "building the archive of the server's files",
        ))?;
        let path = match record.engine {
            Engine::Postgresql => "/",
            Engine::Redis => REDIS_DATA,
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
        Ok(record.engine == Engine::Redis)
    }

    /// Creates the deployment's container and starts it; a port taken meanwhile (by someone
    /// else on the host) is replaced by another one if the deployment never ran.
    async fn create_and_start(
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

    async fn remove_container(&self, container: &str) -> Result<(), BackendError> {
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
    async fn stop_container(
        &self,
        name: &str,
        record: Option<&Record>,
        running: bool,
    ) -> Result<(), BackendError> {
        let container = self.container_name(name);
        if !running {
            return Ok(());
        }
        if let Some(record) = record.filter(|r| r.engine == Engine::Redis) {
            if let Ok(password) = read_secret(&self.dir(name)) {
                let at = self.endpoint(name, record);
                if let Err(e) =
                    redis::save_acl(&at.host, at.port, &record.admin_username, &password).await
                {
                    tracing::warn!(deployment.name = %name, error = %e, "could not save the ACL users before stopping");
                }
            }
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
    async fn log_tail(&self, container: &str) -> String {
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

    async fn probe(
        &self,
        name: &str,
        record: &Record,
        password: &SecretString,
    ) -> Result<(), String> {
        let at = self.endpoint(name, record);
        match record.engine {
            Engine::Postgresql => {
                postgres::probe(&at.host, at.port, &record.admin_username, password).await
            }
            Engine::Redis => {
                redis::probe(&at.host, at.port, &record.admin_username, password).await
            }
        }
    }

    /// Waits until the server answers a real query as the admin, its container stops, or the
    /// start timeout.
    async fn wait_ready(
        &self,
        name: &str,
        record: &Record,
        password: &SecretString,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        progress.set(&format!(
            "waiting for {} to accept connections",
            engine_name(record.engine)
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
                    engine_name(record.engine),
                    self.log_tail(&container).await
                )));
            }
            if Instant::now() >= deadline {
                return Err(BackendError::Server(format!(
                    "the {} container {container} did not accept connections within {}s (last error: {last}); its last output: {}",
                    engine_name(record.engine),
                    self.settings.start_timeout_secs,
                    self.log_tail(&container).await
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn create_volume(&self, name: &str, engine: Engine) -> Result<(), BackendError> {
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

    async fn apply_spec(
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
                self.stop_container(name, Some(&previous), is_running(&current))
                    .await?;
                self.remove_container(&container).await?;
                let started = self
                    .create_and_start(name, &dir, &mut record, false, &password, progress)
                    .await;
                let ready = match started {
                    Ok(()) => self.wait_ready(name, &record, &password, progress).await,
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
                        .create_and_start(name, &dir, &mut restored, false, &password, progress)
                        .await
                    {
                        tracing::error!(deployment.name = %name, error = %again, "the container does not start with its previous settings either");
                    }
                    self.save_record(&dir, &restored)?;
                    return Err(e);
                }
                self.save_record(&dir, &record)?;
            }
        }
        Ok(vec![self.endpoint(name, &record)])
    }

    async fn delete_deployment(&self, name: &str, progress: &Progress) -> Result<(), BackendError> {
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
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackendError::io(format!("removing {}", dir.display()))(e)),
            }
        }
        Ok(())
    }

    async fn recover_deployment(
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

impl Backend for DockerBackend {
    fn validate(&self, spec: &DeploymentSpec) -> Result<(), String> {
        validate_spec(spec)?;
        self.image_for(spec.engine, &spec.version).map(|_| ())
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
            let running = self.inspect(name).await?.is_some_and(|c| is_running(&c));
            if !running {
                return Ok(DeploymentState::Stopped);
            }
            // A container that runs may hold a server that is still starting (or restarting).
            let dir = self.dir(name);
            let answers = match (read_record(&dir)?, read_secret(&dir)) {
                (Some(record), Ok(password)) => self.probe(name, &record, &password).await.is_ok(),
                _ => false,
            };
            Ok(if answers {
                DeploymentState::Running
            } else {
                DeploymentState::Stopped
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
        Box::pin(async move { Ok(health::health_of(self.inspect(name).await?.as_ref())) })
    }
}

/// A client of the engine at `socket`, speaking the highest API version both sides know.
pub async fn connect(socket: &Path) -> Result<Docker, BackendError> {
    let path = socket.to_string_lossy();
    let docker = Docker::connect_with_unix(&path, API_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        .map_err(engine_error(format!("connecting to {path}")))?;
    docker
        .negotiate_version()
        .await
        .map_err(engine_error(format!("talking to the engine at {path}")))
}

fn engine_key(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "postgresql",
        Engine::Redis => "redis",
    }
}

fn engine_port(engine: Engine) -> u16 {
    match engine {
        Engine::Postgresql => 5432,
        Engine::Redis => 6379,
    }
}

fn is_running(container: &ContainerInspectResponse) -> bool {
    container
        .state
        .as_ref()
        .is_some_and(|s| s.running == Some(true))
}

fn config_label(container: &ContainerInspectResponse) -> Option<&str> {
    container
        .config
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_CONFIG)
        .map(String::as_str)
}

fn config_label_of(body: &ContainerCreateBody) -> Option<&str> {
    body.labels.as_ref()?.get(LABEL_CONFIG).map(String::as_str)
}

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

fn is_port_taken(e: &DockerError) -> bool {
    let text = e.to_string();
    text.contains("port is already allocated") || text.contains("address already in use")
}

fn engine_error(context: impl Into<String>) -> impl FnOnce(DockerError) -> BackendError {
    let context = context.into();
    move |e| BackendError::Server(format!("{context}: {e}"))
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar archive of directories (`None`) and files owned by the server user.
fn tar_archive(entries: &[(&str, Option<&[u8]>, u32)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents, mode) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_mode(*mode);
        header.set_uid(SERVER_UID);
        header.set_gid(SERVER_UID);
        header.set_mtime(0);
        match contents {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                header.set_cksum();
                builder.append(&header, *bytes)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, io::empty())?;
            }
        }
    }
    builder.into_inner()
}

fn read_record(dir: &Path) -> Result<Option<Record>, BackendError> {
    read_json(&dir.join(INSTANCE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_files_owned_by_the_server_user() {
        let bytes =
            tar_archive(&[("osb", None, 0o700), ("osb/pw", Some(b"s3cret"), 0o400)]).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u64, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("osb".to_string(), SERVER_UID, 0o700, 0),
                ("osb/pw".to_string(), SERVER_UID, 0o400, 6)
            ]
        );
    }
}
