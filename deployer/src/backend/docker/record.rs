//! The docker backend's record of a deployment: the image for its engine and version, the
//! host port (chosen once, at random from the configured range, and kept for good), and the
//! admin account of the first apply.

use super::{read_record, DockerBackend, Record};
use crate::backend::shared::{check_later_apply, recorded_ports, write_record, write_secret};
use crate::backend::BackendError;
use crate::engine;
use bollard::query_parameters::ListContainersOptions;
use common::deployer::{DeploymentSpec, Engine};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

impl DockerBackend {
    /// The image configured for the spec's engine and major version.
    pub(super) fn image_for(&self, engine: Engine, version: &str) -> Result<String, String> {
        let prefix = format!("{}-", engine::key(engine));
        let wanted = engine::major(version);
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
                engine::name(engine),
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
        let mut taken = recorded_ports(&self.root, |dir| {
            read_record(dir).ok().flatten().map(|r| r.host_port)
        });
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
    pub(super) async fn allocate_port(&self) -> Result<u16, BackendError> {
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

    /// Writes the deployment's record (mode 0600).
    pub(super) fn save_record(&self, dir: &Path, record: &Record) -> Result<(), BackendError> {
        write_record(dir, record, 0o600)
    }

    /// The deployment's record, created (with its directory, port and admin secret) on the
    /// first apply; later applies update its image and settings.
    pub(super) async fn prepare_record(
        &self,
        spec: &DeploymentSpec,
        image: String,
        dir: &Path,
    ) -> Result<(Record, Option<Record>), BackendError> {
        if let Some(previous) = read_record(dir)? {
            check_later_apply(spec, dir, previous.engine, &previous.admin_username)?;
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
}
