//! Helpers for test harnesses that use the deployer's docker backend on a machine without a
//! registry: whether an engine answers, the local images (`scripts/docker-images`), settings
//! that use them, and removal of everything a run created.

use deployer::config::DockerSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs the docker CLI; returns whether it succeeded and its trimmed stdout.
pub fn docker(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// The repository's `scripts/docker-images`.
pub fn images_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-images")
}

/// `Ok` when an engine answers and the local data images are built (once per process);
/// `Err(reason)` when no engine answers. An engine whose images cannot be built panics: that
/// is a failure, not a reason to skip.
pub fn engine_with_data_images() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let socket = deployer::config::DEFAULT_DOCKER_SOCKET;
            if !Path::new(socket).exists() {
                return Err(format!("no Docker engine socket at {socket}"));
            }
            if !docker(&["info"]).0 {
                return Err("the Docker engine does not answer `docker info`".into());
            }
            let script = images_script();
            let status = Command::new(&script)
                .arg("data")
                .status()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(status.success(), "{} data failed", script.display());
            Ok(())
        })
        .clone()
}

/// Docker backend settings with the local images and a name prefix of its own.
pub fn local_image_settings() -> DockerSettings {
    DockerSettings {
        images: BTreeMap::from([
            ("postgresql-15".to_string(), "osb/postgres:15".to_string()),
            ("redis-7".to_string(), "osb/redis:7".to_string()),
        ]),
        name_prefix: format!("osbt-{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        start_timeout_secs: 120,
        ..DockerSettings::default()
    }
}

/// Removes every container and volume whose name starts with `prefix`.
pub fn remove_all(prefix: &str) {
    let filter = format!("name={prefix}");
    let (_, containers) = docker(&["ps", "-aq", "--filter", &filter]);
    for id in containers.lines() {
        docker(&["rm", "-f", "-v", id]);
    }
    let (_, volumes) = docker(&["volume", "ls", "-q", "--filter", &filter]);
    for volume in volumes.lines().filter(|v| v.starts_with(prefix)) {
        docker(&["volume", "rm", "-f", volume]);
    }
}

/// Whether the engine has a `kind` (`container`, `volume`, `image`, `network`) named `name`.
pub fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).0
}
