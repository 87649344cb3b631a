//! Each engine as the process backend runs it: one function per question (which command
//! starts the server, where its config and pid file are, whether its data exists, how it is
//! initialized, which version is installed), each the only `match` on the engine for it.
//! What does not depend on the orchestrator lives in [`crate::engine`].

use super::{postgres, redis, Instance, ProcessBackend};
use crate::backend::BackendError;
use crate::engine;
use crate::sys;
use common::deployer::Engine;
use common::secret::SecretString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The command that runs the deployment's server in the foreground.
pub(super) fn server_command(
    backend: &ProcessBackend,
    dir: &Path,
    engine: Engine,
) -> tokio::process::Command {
    match engine {
        Engine::Postgresql => postgres::server_command(backend, dir),
        Engine::Redis => redis::server_command(backend, dir),
    }
}

/// Whether the deployment's data was initialized completely.
pub(super) fn is_initialized(dir: &Path, engine: Engine) -> bool {
    match engine {
        Engine::Postgresql => postgres::is_initialized(dir),
        Engine::Redis => redis::is_initialized(dir),
    }
}

/// Initializes the deployment's data with its admin account, telling `progress` what runs.
pub(super) async fn initialize(
    backend: &ProcessBackend,
    dir: &Path,
    instance: &Instance,
    password: &SecretString,
    progress: &crate::backend::Progress,
) -> Result<(), BackendError> {
    match instance.engine {
        Engine::Postgresql => {
            progress.set("running initdb");
            postgres::initialize(backend, dir, instance, password).await
        }
        Engine::Redis => {
            progress.set("creating the data directory");
            redis::initialize(backend, dir, instance, password)
        }
    }
}

/// The path of the server's config file and its contents for `settings`.
pub(super) fn config(
    host: &str,
    dir: &Path,
    instance: &Instance,
    settings: &BTreeMap<String, String>,
) -> (PathBuf, String) {
    match instance.engine {
        Engine::Postgresql => (
            postgres::config_file(dir),
            engine::postgres::render_config(host, instance.port, dir, settings),
        ),
        Engine::Redis => (
            redis::config_file(dir),
            engine::redis::render_config(host, instance.port, dir, settings),
        ),
    }
}

/// The path of the server's config file.
pub(super) fn config_file(dir: &Path, engine: Engine) -> PathBuf {
    match engine {
        Engine::Postgresql => postgres::config_file(dir),
        Engine::Redis => redis::config_file(dir),
    }
}

/// The installed server's version, e.g. `15.18`, from its `--version`.
pub(super) async fn installed_version(
    backend: &ProcessBackend,
    engine: Engine,
) -> Result<String, BackendError> {
    let (bin, version_from): (PathBuf, fn(&str) -> Option<String>) = match engine {
        Engine::Postgresql => (
            postgres::server_bin(backend),
            engine::postgres::version_from,
        ),
        Engine::Redis => (redis::server_bin(backend), engine::redis::version_from),
    };
    let output = tokio::process::Command::new(&bin)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(BackendError::io(format!(
            "running {} --version",
            bin.display()
        )))?;
    version_from(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| BackendError::Server(format!("{} --version said nothing", bin.display())))
}

/// The pid in the engine's pid file, if that process is alive and is this deployment's server.
pub(super) fn running_pid_from_files(dir: &Path, instance: &Instance) -> Option<u32> {
    let pid = match instance.engine {
        Engine::Postgresql => postgres::pidfile_pid(dir),
        Engine::Redis => redis::pidfile_pid(dir),
    }?;
    let cmdline = sys::cmdline(pid)?;
    let ours = match instance.engine {
        Engine::Postgresql => postgres::is_server_cmdline(&cmdline, dir),
        Engine::Redis => redis::is_server_cmdline(&cmdline, instance.port),
    };
    (ours && sys::is_alive(pid)).then_some(pid)
}
