//! Redis in the process backend: `redis-server redis.conf` with an append-only file in
//! `data/` and users in `users.acl` (both rendered by [`crate::engine::redis`]), found again
//! by its pid file and process title.

use super::{BackendError, Instance, ProcessBackend};
use crate::engine::redis::{render_acl, ACL_FILE, DATA, PID_FILE};
use common::secret::SecretString;
use std::fs;
use std::path::{Path, PathBuf};

const CONFIG_FILE: &str = "redis.conf";

pub(super) fn is_initialized(dir: &Path) -> bool {
    dir.join(DATA).is_dir() && dir.join(ACL_FILE).is_file()
}

pub(super) fn config_file(dir: &Path) -> PathBuf {
    dir.join(CONFIG_FILE)
}

pub(super) fn pidfile_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Redis renames its process to `redis-server <addr>:<port>`.
pub(super) fn is_server_cmdline(cmdline: &str, port: u16) -> bool {
    cmdline.contains("redis") && cmdline.contains(&format!(":{port}"))
}

pub(super) fn server_command(backend: &ProcessBackend, dir: &Path) -> tokio::process::Command {
    let mut cmd = backend.command(&server_bin(backend), dir);
    cmd.arg(dir.join(CONFIG_FILE));
    cmd
}

/// Creates `data/` and the first `users.acl`.
pub(super) fn initialize(
    backend: &ProcessBackend,
    dir: &Path,
    instance: &Instance,
    password: &SecretString,
) -> Result<(), BackendError> {
    backend.create_user_dir(&dir.join(DATA))?;
    let acl = render_acl(&instance.admin_username, password);
    backend.write_user_file(&dir.join(ACL_FILE), acl.as_bytes(), 0o600)
}

/// The server binary, whose `--version` tells the installed version.
pub(super) fn server_bin(backend: &ProcessBackend) -> PathBuf {
    backend.settings.redis_server_bin.clone()
}
