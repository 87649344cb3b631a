//! PostgreSQL in the process backend: `initdb` into `pgdata/`, the deployer's settings in
//! `pgdata/osb.conf` (included last from `postgresql.conf`), `postgres -D pgdata` as the server,
//! readiness as a real `SELECT 1` by the admin over TCP.

use super::{check_setting, BackendError, Instance, ProcessBackend};
use common::secret::SecretString;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PGDATA: &str = "pgdata";
/// Prefix of the directory `initdb` writes to; only a complete cluster is renamed to `pgdata`.
const PGDATA_INIT: &str = "pgdata.init";
const PWFILE: &str = ".initdb-password";
const CONFIG_FILE: &str = "osb.conf";
/// Longest path of a unix socket (`sun_path` is 108 bytes with the terminating zero).
const MAX_SOCKET_PATH: usize = 107;

/// Settings the deployer writes itself, or that would move files or sockets out from under it.
const MANAGED: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "include",
    "include_if_exists",
    "include_dir",
];

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
    let mut cmd = backend.command(&backend.settings.postgres_bin_dir.join("postgres"), dir);
    cmd.arg("-D").arg(dir.join(PGDATA));
    cmd
}

pub(crate) fn validate_settings(settings: &BTreeMap<String, String>) -> Result<(), String> {
    let valid_key = |k: &str| {
        !k.is_empty()
            && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    };
    for (key, value) in settings {
        check_setting(&key.to_ascii_lowercase(), value, valid_key, MANAGED)?;
    }
    Ok(())
}

/// `osb.conf`: the port, the listen address, the socket directory and the spec's settings.
pub(super) fn render_config(
    host: &str,
    port: u16,
    dir: &Path,
    settings: &BTreeMap<String, String>,
) -> String {
    let socket = dir.join(format!(".s.PGSQL.{port}"));
    // Too long a path would stop the server from starting: go without the unix socket then.
    let socket_dir = if socket.as_os_str().len() <= MAX_SOCKET_PATH {
        dir.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let mut out = String::from("# Written by the deployer on every apply; edits are lost.\n");
    let _ = writeln!(out, "port = {port}");
    let _ = writeln!(out, "listen_addresses = {}", quote(host));
    let _ = writeln!(out, "unix_socket_directories = {}", quote(&socket_dir));
    for (key, value) in settings {
        let _ = writeln!(out, "{key} = {}", quote(value));
    }
    out
}

/// A PostgreSQL configuration string literal.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
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
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(BackendError::Command {
            what: "initdb".into(),
            status: output.status.to_string(),
            output: lines[lines.len().saturating_sub(5)..].join(" | "),
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

/// The installed server's version, e.g. `15.18`.
pub(super) async fn installed_version(backend: &ProcessBackend) -> Result<String, BackendError> {
    let bin = backend.settings.postgres_bin_dir.join("postgres");
    let output = tokio::process::Command::new(&bin)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(BackendError::io(format!(
            "running {} --version",
            bin.display()
        )))?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(2)
        .map(str::to_string)
        .ok_or_else(|| BackendError::Server(format!("{} --version said nothing", bin.display())))
}

/// Connects as the admin and runs `SELECT 1`.
pub(crate) async fn probe(
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .password(password.expose())
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2));
    let attempt = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let connection = tokio::spawn(connection);
        let result = client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        drop(client);
        let _ = connection.await;
        result
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "no answer within 5s".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_quotes_values_and_keeps_the_socket_path_short() {
        let settings = BTreeMap::from([
            ("max_connections".to_string(), "50".to_string()),
            ("search_path".to_string(), "\"$user\", it's".to_string()),
        ]);
        let conf = render_config("127.0.0.1", 5433, Path::new("/d/pg-one"), &settings);
        assert!(conf.contains("port = 5433\n"));
        assert!(conf.contains("listen_addresses = '127.0.0.1'\n"));
        assert!(conf.contains("unix_socket_directories = '/d/pg-one'\n"));
        assert!(conf.contains("max_connections = '50'\n"));
        assert!(conf.contains("search_path = '\"$user\", it''s'\n"));

        let long = PathBuf::from(format!("/{}", "x".repeat(120)));
        let conf = render_config("127.0.0.1", 5433, &long, &BTreeMap::new());
        assert!(conf.contains("unix_socket_directories = ''\n"));
    }

    #[test]
    fn settings_the_deployer_owns_are_refused() {
        let ok = BTreeMap::from([("max_connections".to_string(), "50".to_string())]);
        assert!(validate_settings(&ok).is_ok());
        for key in ["port", "Listen_Addresses", "data_directory", "include_dir"] {
            let bad = BTreeMap::from([(key.to_string(), "x".to_string())]);
            assert!(validate_settings(&bad).is_err(), "{key}");
        }
    }
}
