//! The OS user the process backend's servers run as: commands started as that user, the
//! files and directories handed to it, and the checks that it exists and can reach the
//! deployments directory.

use super::ProcessBackend;
use crate::backend::BackendError;
use crate::store::write_atomic;
use crate::sys::{self, OsUser};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

impl ProcessBackend {
    /// A command run as the server user, with a minimal environment, in `dir`.
    pub(super) fn command(&self, program: &Path, dir: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(dir)
            .stdin(std::process::Stdio::null());
        if let Some(user) = &self.user {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    /// Hands `path` to the server user (a no-op when servers run as the deployer's user).
    pub(super) fn give_to_user(&self, path: &Path) -> Result<(), BackendError> {
        if let Some(user) = &self.user {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(BackendError::io(format!("chown {}", path.display())))?;
        }
        Ok(())
    }

    /// Creates a directory (mode 0700) owned by the server user.
    pub(super) fn create_user_dir(&self, path: &Path) -> Result<(), BackendError> {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BackendError::io(format!("creating {}", path.display()))(e)),
        }
        self.give_to_user(path)
    }

    /// Writes a file (atomically) owned by the server user.
    pub(super) fn write_user_file(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        write_atomic(path, contents, mode)
            .map_err(BackendError::io(format!("writing {}", path.display())))?;
        self.give_to_user(path)
    }
}

/// The OS user servers run as when none is configured: `None` (the deployer's own user) unless
/// the deployer runs as root, then `postgres` if that user exists, else `nobody`.
pub fn default_run_as_user() -> Option<String> {
    if sys::effective_uid() != 0 {
        return None;
    }
    match sys::lookup_user("postgres") {
        Ok(Some(_)) => Some("postgres".into()),
        _ => Some("nobody".into()),
    }
}

pub(super) fn resolve_user(configured: Option<&str>) -> Result<Option<OsUser>, BackendError> {
    let Some(name) = configured.map(str::to_string).or_else(default_run_as_user) else {
        return Ok(None);
    };
    let user = sys::lookup_user(&name)
        .map_err(BackendError::io("reading /etc/passwd"))?
        .ok_or_else(|| BackendError::Invalid(format!("no OS user {name} in /etc/passwd")))?;
    let me = sys::effective_uid();
    if user.uid == me {
        return Ok(None);
    }
    if me != 0 {
        return Err(BackendError::Invalid(format!(
            "running servers as {name} needs the deployer to run as root"
        )));
    }
    if user.uid == 0 {
        return Err(BackendError::Invalid(
            "servers must not run as root (PostgreSQL refuses to)".into(),
        ));
    }
    Ok(Some(user))
}

pub(super) fn add_mode(path: &Path, bits: u32) -> Result<(), BackendError> {
    let meta = fs::metadata(path).map_err(BackendError::io(format!("stat {}", path.display())))?;
    let mode = meta.permissions().mode();
    if mode & bits != bits {
        fs::set_permissions(path, fs::Permissions::from_mode(mode | bits))
            .map_err(BackendError::io(format!("chmod {}", path.display())))?;
    }
    Ok(())
}

/// Checks that `user` can traverse every directory from `/` down to `path`.
pub(super) fn check_reachable(path: &Path, user: &OsUser) -> Result<(), BackendError> {
    for dir in path.ancestors() {
        let meta =
            fs::metadata(dir).map_err(BackendError::io(format!("stat {}", dir.display())))?;
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(BackendError::Invalid(format!(
                "servers run as {}, who cannot reach {}: make it traversable (chmod o+x) or move the data dir",
                user.name,
                dir.display()
            )));
        }
    }
    Ok(())
}
