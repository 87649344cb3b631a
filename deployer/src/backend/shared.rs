//! What every backend keeps alike about a deployment, whatever runs its server: the directory
//! `<data_dir>/deployments/<name>/` with the backend's JSON record (`instance.json`) and the
//! admin secret (`admin.secret`, mode 0600: the deployment's own secret store, read to check
//! readiness after a restart), the rule that the admin account and engine of the first apply
//! stay, and the tail of a server's output for error messages.

use super::BackendError;
use crate::engine;
use crate::store::write_atomic;
use common::deployer::{DeploymentSpec, Engine};
use common::secret::SecretString;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Directory under the data dir holding one directory per deployment.
pub const DEPLOYMENTS_DIR: &str = "deployments";
/// A backend's record of a deployment, in its directory.
pub(crate) const INSTANCE_FILE: &str = "instance.json";
const SECRET_FILE: &str = "admin.secret";

/// The directory of deployment `name` under a deployer data dir.
pub fn deployment_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(DEPLOYMENTS_DIR).join(name)
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

/// Writes a deployment's record (`instance.json` in `dir`) atomically with `mode`.
pub(crate) fn write_record<T: serde::Serialize>(
    dir: &Path,
    record: &T,
    mode: u32,
) -> Result<(), BackendError> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| BackendError::Server(format!("encoding the instance record: {e}")))?;
    let path = dir.join(INSTANCE_FILE);
    write_atomic(&path, &bytes, mode)
        .map_err(BackendError::io(format!("writing {}", path.display())))
}

/// The deployment's admin password.
pub(crate) fn read_secret(dir: &Path) -> Result<SecretString, BackendError> {
    let path = dir.join(SECRET_FILE);
    fs::read_to_string(&path)
        .map(SecretString::new)
        .map_err(BackendError::io(format!("reading {}", path.display())))
}

/// Stores the deployment's admin password (mode 0600).
pub(crate) fn write_secret(dir: &Path, password: &SecretString) -> Result<(), BackendError> {
    let path = dir.join(SECRET_FILE);
    write_atomic(&path, password.expose().as_bytes(), 0o600)
        .map_err(BackendError::io(format!("writing {}", path.display())))
}

/// A later apply of a deployment recorded with `engine` and admin `admin_username`: the
/// engine cannot change; the admin account of the first apply stays (a changed name or
/// password is ignored and logged); a lost secret file is written again.
pub(crate) fn check_later_apply(
    spec: &DeploymentSpec,
    dir: &Path,
    engine: Engine,
    admin_username: &str,
) -> Result<(), BackendError> {
    if engine != spec.engine {
        return Err(BackendError::Invalid(format!(
            "deployment {} runs {}; it cannot become {} (delete it first)",
            spec.name,
            engine::name(engine),
            engine::name(spec.engine)
        )));
    }
    if admin_username != spec.admin.username {
        tracing::warn!(deployment.name = %spec.name, "admin user name change ignored: the admin of the first apply stays");
    }
    match read_secret(dir) {
        Ok(stored) if stored != spec.admin.password => {
            tracing::warn!(deployment.name = %spec.name, "admin password change ignored: the admin of the first apply stays");
        }
        Ok(_) => {}
        Err(_) => write_secret(dir, &spec.admin.password)?,
    }
    Ok(())
}

/// Before a planned stop, saves what the engine keeps only in memory (Redis: users added at
/// run time, the per-binding ACL users) by logging in as the admin at `host:port`; a failure
/// is logged and the stop goes on.
pub(crate) async fn save_before_stop(
    name: &str,
    dir: &Path,
    engine: Engine,
    at: (&str, u16),
    admin_username: &str,
) {
    if !engine::saves_before_stop(engine) {
        return;
    }
    match read_secret(dir) {
        Ok(password) => {
            let (host, port) = at;
            if let Err(e) = engine::before_stop(engine, host, port, admin_username, &password).await
            {
                tracing::warn!(deployment.name = %name, error = %e, "could not save the run-time users before stopping");
            }
        }
        Err(e) => {
            tracing::warn!(deployment.name = %name, error = %e, "no admin secret to save the run-time users with")
        }
    }
}

/// The ports recorded by the deployments under `root` (`port_of` reads one deployment's
/// directory): they come back on those deployments even while their servers are stopped.
pub(crate) fn recorded_ports(root: &Path, port_of: impl Fn(&Path) -> Option<u16>) -> HashSet<u16> {
    fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| port_of(&e.path()))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a deployment's directory; one that is already gone is fine.
pub(crate) fn remove_deployment_dir(dir: &Path) -> Result<(), BackendError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackendError::io(format!("removing {}", dir.display()))(e)),
    }
}

/// The last `n` non-empty lines of `text`, joined by ` | ` (for error messages).
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_skip_blank_ones() {
        assert_eq!(last_lines("a\n\nb\n  \nc\n", 2), "b | c");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn a_later_apply_keeps_the_engine_and_restores_a_lost_secret() {
        let dir = tempfile::tempdir().unwrap();
        let spec: DeploymentSpec = serde_json::from_value(serde_json::json!({
            "name": "kv", "engine": "redis", "version": "",
            "admin": {"username": "admin", "password": "pw"},
        }))
        .unwrap();
        let err = check_later_apply(&spec, dir.path(), Engine::Postgresql, "admin").unwrap_err();
        assert!(err.to_string().contains("cannot become Redis"), "{err}");
        check_later_apply(&spec, dir.path(), Engine::Redis, "other").unwrap();
        assert_eq!(read_secret(dir.path()).unwrap().expose(), "pw");
    }
}
