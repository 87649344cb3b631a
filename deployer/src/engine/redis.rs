//! Redis, whatever runs it: the settings a spec may carry, `redis.conf`, settings as `--key
//! value` arguments, the first ACL (the default user off, the admin with a SHA-256 password
//! hash: no plaintext password in any file), the probe (`AUTH` + `PING` over TCP) and
//! `ACL SAVE`.
//!
//! Users added at run time (per-binding ACL users) are saved to `users.acl` with `ACL SAVE`
//! before every planned stop; their creator should also run `ACL SAVE` after changing them,
//! so that a crash does not lose them.

use super::check_setting;
use common::secret::SecretString;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where the server keeps its data, under its directory.
pub const DATA: &str = "data";
/// The users file, under the server's directory (and in its data volume in a container).
pub const ACL_FILE: &str = "users.acl";
/// The server's pid file, under its directory.
pub const PID_FILE: &str = "redis.pid";

/// Settings the deployer writes itself, or that would let a spec escape the deployment.
const MANAGED: &[&str] = &[
    "port",
    "bind",
    "bind-source-addr",
    "dir",
    "pidfile",
    "logfile",
    "daemonize",
    "supervised",
    "aclfile",
    "user",
    "requirepass",
    "masterauth",
    "masteruser",
    "replicaof",
    "slaveof",
    "include",
    "loadmodule",
    "rename-command",
    "unixsocket",
    "unixsocketperm",
    "protected-mode",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "syslog-*",
    "tls-*",
];

/// Checks a spec's Redis settings.
pub fn validate_settings(settings: &BTreeMap<String, String>) -> Result<(), String> {
    let valid_key = |k: &str| {
        k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    for (key, value) in settings {
        check_setting(&key.to_ascii_lowercase(), value, valid_key, MANAGED)?;
    }
    Ok(())
}

/// The settings as `redis-server` arguments: `--key value` each.
pub fn settings_args(settings: &BTreeMap<String, String>) -> Vec<String> {
    let mut args = Vec::new();
    for (key, value) in settings {
        args.push(format!("--{key}"));
        args.push(value.clone());
    }
    args
}

/// `redis.conf`: network, files, persistence and the spec's settings; no user, no password.
pub fn render_config(
    host: &str,
    port: u16,
    dir: &Path,
    settings: &BTreeMap<String, String>,
) -> String {
    let path = |name: &str| quote(&dir.join(name).to_string_lossy());
    let mut out = String::from("# Written by the deployer on every apply; edits are lost.\n");
    let _ = writeln!(out, "port {port}");
    let _ = writeln!(out, "bind {}", quote(host));
    let _ = writeln!(out, "protected-mode yes");
    let _ = writeln!(out, "daemonize no");
    let _ = writeln!(out, "logfile \"\"");
    let _ = writeln!(out, "dir {}", path(DATA));
    let _ = writeln!(out, "pidfile {}", path(PID_FILE));
    let _ = writeln!(out, "aclfile {}", path(ACL_FILE));
    let _ = writeln!(out, "appendonly yes");
    for (key, value) in settings {
        let _ = writeln!(out, "{key} {}", quote(value));
    }
    out
}

/// A double-quoted Redis config argument.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The first ACL: the default user off, the admin with every right and a hashed password.
pub fn render_acl(admin: &str, password: &SecretString) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, password.expose().as_bytes());
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("user default off\nuser {admin} on #{hash} ~* &* +@all\n")
}

/// Authenticates as the admin and checks the server answers `PING`.
pub async fn probe(
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
) -> Result<(), String> {
    admin_command(host, port, user, password, &["PING"], "+PONG").await
}

/// Saves the users to `users.acl` (`ACL SAVE`).
pub async fn save_acl(
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
) -> Result<(), String> {
    admin_command(host, port, user, password, &["ACL", "SAVE"], "+OK").await
}

/// Sends `AUTH` then `args` over one connection and expects `expected` as the reply.
async fn admin_command(
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
    args: &[&str],
    expected: &str,
) -> Result<(), String> {
    let attempt = async {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(stream);
        roundtrip(&mut stream, &["AUTH", user, password.expose()], "+OK").await?;
        roundtrip(&mut stream, args, expected).await
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "no answer within 5s".to_string())?
}

async fn roundtrip(
    stream: &mut BufReader<TcpStream>,
    args: &[&str],
    expected: &str,
) -> Result<(), String> {
    stream
        .get_mut()
        .write_all(&encode(args))
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let reply = line.trim_end();
    if reply == expected {
        Ok(())
    } else if reply.is_empty() {
        Err("connection closed".into())
    } else {
        // Error replies ("-WRONGPASS …", "-LOADING …") never echo the password.
        Err(format!("{} answered {reply}", args[0]))
    }
}

/// A RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The version in the server binary's `--version` output.
pub fn version_from(output: &str) -> Option<String> {
    // "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=…"
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_encoded_as_resp_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&["AUTH", "admin", "pä"]),
            b"*3\r\n$4\r\nAUTH\r\n$5\r\nadmin\r\n$3\r\np\xc3\xa4\r\n".to_vec()
        );
    }

    #[test]
    fn the_acl_holds_a_hash_and_never_the_password() {
        let acl = render_acl("admin", &SecretString::new("hunter2"));
        assert!(acl.starts_with("user default off\n"));
        assert!(acl.contains(
            "user admin on #f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7 ~* &* +@all"
        ));
        assert!(!acl.contains("hunter2"));
    }

    #[test]
    fn the_config_has_no_user_and_quotes_values() {
        let settings = BTreeMap::from([
            ("maxmemory".to_string(), "64mb".to_string()),
            ("maxmemory-policy".to_string(), "allkeys-lru".to_string()),
        ]);
        let conf = render_config("127.0.0.1", 6400, Path::new("/d/kv"), &settings);
        assert!(conf.contains("port 6400\n"));
        assert!(conf.contains("aclfile \"/d/kv/users.acl\"\n"));
        assert!(conf.contains("maxmemory \"64mb\"\n"));
        assert!(conf.contains("maxmemory-policy \"allkeys-lru\"\n"));
        assert!(!conf.contains("\nuser "));
    }

    #[test]
    fn settings_that_escape_the_deployment_are_refused() {
        for key in ["loadmodule", "dir", "tls-port", "rename-command", "Port"] {
            let bad = BTreeMap::from([(key.to_string(), "x".to_string())]);
            assert!(validate_settings(&bad).is_err(), "{key}");
        }
        let ok = BTreeMap::from([("maxclients".to_string(), "100".to_string())]);
        assert!(validate_settings(&ok).is_ok());
    }

    #[test]
    fn the_version_is_read_from_the_version_output() {
        assert_eq!(
            version_from(
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1\n"
            )
            .as_deref(),
            Some("7.0.15")
        );
        assert_eq!(version_from(""), None);
    }
}
