//! PostgreSQL in the process backend: `initdb` into `pgdata/`, the deployer's settings in
//! `pgdata/osb.conf` (rendered by [`crate::engine::postgres`], included last from
//! `postgresql.conf`), `postgres -D pgdata` as the server, found again by its pid file.

use super::{BackendError, Instance, ProcessBackend};
use crate::backend::shared::last_lines;
use common::secret::SecretString;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

const PGDATA: &str = "pgdata";
/// Prefix of the directory `initdb` writes to; only a complete cluster is renamed to `pgdata`.
const PGDATA_INIT: &str = "pgdata.init";
const PWFILE: &str = ".initdb-password";
const CONFIG_FILE: &str = "osb.conf";

pub(super) fn is_initialized(dir: &Path) -> bool {
    dir.join(PGDATA).join("PG_VERSION").is_file()
}

pub(super) fn config_file(dir: &Path) -> PathBuf {
    dir.join(PGDATA).join(CONFIG_FILE)
}

pub(super) fn pidfile_pid(dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(dir.join(PGDATA).join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

pub(super) fn is_server_cmdline(cmdline: &str, dir: &Path) -> bool {
    cmdline.contains(&*dir.join(PGDATA).to_string_lossy())
}

pub(super) fn server_command(backend: &ProcessBackend, dir: &Path) -> tokio::process::Command {
    let mut cmd = backend.command(&server_bin(backend), dir);
    cmd.arg("-D").arg(dir.join(PGDATA));
    cmd
}

/// `initdb` with the admin as superuser (password from a file that is removed right after),
/// SCRAM authentication everywhere, and `osb.conf` included last.
pub(super) async fn initialize(
    backend: &ProcessBackend,
    dir: &Path,
    instance: &Instance,
    password: &SecretString,
) -> Result<(), BackendError> {
    remove_interrupted_inits(dir);
    // A fresh directory each time: the bootstrap backend of an initdb that was cut short may
    // still be writing into the old one for a moment.
    let init = dir.join(format!("{PGDATA_INIT}-{}", uuid::Uuid::new_v4().simple()));
    let pwfile = dir.join(PWFILE);
    backend.write_user_file(&pwfile, password.expose().as_bytes(), 0o600)?;
    let output = backend
        .command(&backend.settings.postgres_bin_dir.join("initdb"), dir)
        .arg("-D")
        .arg(&init)
        .arg("-U")
        .arg(&instance.admin_username)
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        .kill_on_drop(true)
        .output()
        .await;
    let _ = fs::remove_file(&pwfile);
    let output = output.map_err(BackendError::io("running initdb"))?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return Err(BackendError::Command {
            what: "initdb".into(),
            status: output.status.to_string(),
            output: last_lines(&text, 5),
        });
    }
    // Password authentication for every connection; which addresses are reachable at all is
    // decided by listen_addresses.
    backend.write_user_file(
        &init.join("pg_hba.conf"),
        b"# Written by the deployer.\nlocal all all scram-sha-256\nhost all all all scram-sha-256\n",
        0o600,
    )?;
    let conf = init.join("postgresql.conf");
    let append = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new().append(true).open(&conf)?;
        f.write_all(b"\n# Settings managed by the deployer.\ninclude_if_exists = 'osb.conf'\n")
    };
    append().map_err(BackendError::io(format!("appending to {}", conf.display())))?;
    let pgdata = dir.join(PGDATA);
    fs::rename(&init, &pgdata).map_err(BackendError::io(format!(
        "renaming {} to {}",
        init.display(),
        pgdata.display()
    )))
}

/// Removes what initdb runs that were interrupted (deployer restart) left behind.
fn remove_interrupted_inits(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let leftover = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PGDATA_INIT));
        if leftover {
            if let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an interrupted initdb's directory");
            }
        }
    }
}

/// The server binary, whose `--version` tells the installed version.
pub(super) fn server_bin(backend: &ProcessBackend) -> PathBuf {
    backend.settings.postgres_bin_dir.join("postgres")
}
