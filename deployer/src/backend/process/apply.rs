//! What the process backend does for an apply, a delete and a recovery: the deployment's
//! record and port, its engine's data and config, and starting, restarting or checking its
//! server.

use super::ports;
use super::{engines, read_instance, Instance, NotReady, ProcessBackend, START_ATTEMPTS};
use crate::backend::shared::{
    check_later_apply, read_secret, recorded_ports, remove_deployment_dir, write_record,
    write_secret,
};
use crate::backend::{BackendError, Progress};
use crate::engine;
use common::deployer::{DeploymentEndpoint, DeploymentSpec, Engine};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::Instant;

impl ProcessBackend {
    fn allocate_port(&self) -> Result<u16, BackendError> {
        // Ports of stopped deployments are free as far as the OS knows: skip them, since
        // those deployments come back on them.
        let taken = recorded_ports(&self.root, |dir| {
            read_instance(dir).ok().flatten().map(|i| i.port)
        });
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
            check_later_apply(spec, dir, instance.engine, &instance.admin_username)?;
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
        write_record(dir, &instance, 0o644)?;
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
        let (path, contents) =
            engines::config(&self.settings.advertise_host, dir, instance, settings);
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
        let path = engines::config_file(dir, instance.engine);
        if let Err(e) = self.write_user_file(&path, previous.as_bytes(), 0o600) {
            tracing::error!(path = %path.display(), error = %e, "could not restore the previous config");
        }
    }

    async fn check_version(&self, spec: &DeploymentSpec) -> Result<(), BackendError> {
        let installed = engines::installed_version(self, spec.engine).await?;
        let wanted = spec.version.trim();
        if wanted.is_empty() || engine::major(wanted) == engine::major(&installed) {
            Ok(())
        } else {
            Err(BackendError::Invalid(format!(
                "this deployer runs {} {installed}; version {wanted} is not available",
                engine::name(spec.engine)
            )))
        }
    }

    pub(super) async fn apply_spec(
        &self,
        spec: &DeploymentSpec,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let name = spec.name.as_str();
        self.check_version(spec).await?;
        let dir = self.dir(name);
        let instance = self.prepare_instance(spec, &dir)?;
        let password = read_secret(&dir)?;
        if !engines::is_initialized(&dir, instance.engine) {
            engines::initialize(self, &dir, &instance, &password, progress).await?;
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

    pub(super) async fn delete_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<(), BackendError> {
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
        remove_deployment_dir(&dir)
    }

    pub(super) async fn recover_deployment(
        &self,
        name: &str,
        progress: &Progress,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let dir = self.dir(name);
        let instance = read_instance(&dir)?
            .filter(|i| engines::is_initialized(&dir, i.engine))
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
