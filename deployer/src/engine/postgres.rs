//! PostgreSQL, whatever runs it: the settings a spec may carry, `osb.conf` (the deployer's
//! settings file, included last from `postgresql.conf`), settings as `-c` arguments, and the
//! probe (a real `SELECT 1` by the admin over TCP).

use super::check_setting;
use common::secret::SecretString;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

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

/// Checks a spec's PostgreSQL settings.
pub fn validate_settings(settings: &BTreeMap<String, String>) -> Result<(), String> {
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

/// The settings as `postgres` arguments: `-c key=value` each.
pub fn settings_args(settings: &BTreeMap<String, String>) -> Vec<String> {
    let mut args = Vec::new();
    for (key, value) in settings {
        args.push("-c".into());
        args.push(format!("{key}={value}"));
    }
    args
}

/// `osb.conf`: the port, the listen address, the socket directory and the spec's settings.
pub fn render_config(
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

/// Connects as the admin and runs `SELECT 1`.
pub async fn probe(
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

/// The version in the server binary's `--version` output.
pub fn version_from(output: &str) -> Option<String> {
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    output.split_whitespace().nth(2).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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

    #[test]
    fn the_version_is_read_from_the_version_output() {
        assert_eq!(
            version_from("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15.18")
        );
        assert_eq!(version_from(""), None);
    }
}
