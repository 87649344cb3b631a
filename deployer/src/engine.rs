//! The engines: what the deployer knows about PostgreSQL and Redis whatever orchestrator runs
//! them — which settings a spec may carry and how they are rendered, the admin account, the
//! health probe (a real query as the admin) and what must happen before a server stops. The
//! orchestrators in [`crate::backend`] ask these functions and never `match` on the engine for
//! any of it, so a new backend adds no copy of this knowledge.

pub mod postgres;
pub mod redis;

use crate::sys;
use common::deployer::{DeploymentSpec, Engine};
use common::secret::SecretString;
use std::collections::BTreeMap;

/// The engine's name for people ("PostgreSQL").
pub fn name(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "PostgreSQL",
        Engine::Redis => "Redis",
    }
}

/// The engine's name in configuration keys and labels ("postgresql").
pub fn key(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "postgresql",
        Engine::Redis => "redis",
    }
}

/// The port the engine's server listens on when nothing else is configured.
pub fn default_port(engine: Engine) -> u16 {
    match engine {
        Engine::Postgresql => 5432,
        Engine::Redis => 6379,
    }
}

/// The signal that stops the server quickly and cleanly.
pub fn stop_signal(engine: Engine) -> i32 {
    match engine {
        // Fast shutdown: roll back open transactions, checkpoint, exit.
        Engine::Postgresql => sys::SIGINT,
        // Save (append-only file is flushed) and exit.
        Engine::Redis => sys::SIGTERM,
    }
}

/// Checks a spec's admin account and settings (what every backend refuses alike).
pub fn validate_spec(spec: &DeploymentSpec) -> Result<(), String> {
    validate_admin(spec)?;
    match spec.engine {
        Engine::Postgresql => postgres::validate_settings(&spec.settings),
        Engine::Redis => redis::validate_settings(&spec.settings),
    }
}

/// The spec's settings as the server's command-line arguments (`-c key=value` for PostgreSQL,
/// `--key value` for Redis), for orchestrators that pass them on the command line.
pub fn settings_args(engine: Engine, settings: &BTreeMap<String, String>) -> Vec<String> {
    match engine {
        Engine::Postgresql => postgres::settings_args(settings),
        Engine::Redis => redis::settings_args(settings),
    }
}

/// Connects to the server at `host:port` as the admin and runs a real query (PostgreSQL:
/// `SELECT 1`; Redis: `AUTH` + `PING`). The error never holds the password.
pub async fn probe(
    engine: Engine,
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
) -> Result<(), String> {
    match engine {
        Engine::Postgresql => postgres::probe(host, port, user, password).await,
        Engine::Redis => redis::probe(host, port, user, password).await,
    }
}

/// Whether [`before_stop`] has anything to do for the engine.
pub fn saves_before_stop(engine: Engine) -> bool {
    engine == Engine::Redis
}

/// What must be saved before a planned stop: Redis keeps users added at run time (per-binding
/// ACL users) in memory until `ACL SAVE`; PostgreSQL needs nothing.
pub async fn before_stop(
    engine: Engine,
    host: &str,
    port: u16,
    user: &str,
    password: &SecretString,
) -> Result<(), String> {
    match engine {
        Engine::Postgresql => Ok(()),
        Engine::Redis => redis::save_acl(host, port, user, password).await,
    }
}

/// The major part of a version ("15" of "15.18").
pub fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version).trim()
}

/// Checks the spec's admin user name and password.
pub fn validate_admin(spec: &DeploymentSpec) -> Result<(), String> {
    let user = &spec.admin.username;
    let valid_user = !user.is_empty()
        && user.len() <= 63
        && user.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_user {
        return Err(format!(
            "admin user name {user:?} is invalid: 1 to 63 letters, digits, '_', '-' or '.', starting with a letter or '_'"
        ));
    }
    let password = spec.admin.password.expose();
    if password.is_empty() || password.len() > 1024 || password.chars().any(char::is_control) {
        return Err(
            "admin password must be 1 to 1024 characters without control characters".into(),
        );
    }
    Ok(())
}

/// Refuses a setting key that is not `pattern`-shaped or that the deployer manages itself.
fn check_setting(
    key: &str,
    value: &str,
    valid_key: impl Fn(&str) -> bool,
    managed: &[&str],
) -> Result<(), String> {
    if !valid_key(key) {
        return Err(format!("setting name {key:?} is invalid"));
    }
    if managed.iter().any(|m| {
        m.strip_suffix('*')
            .map_or(*m == key, |prefix| key.starts_with(prefix))
    }) {
        return Err(format!(
            "setting {key} is managed by the deployer and cannot be set"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "setting {key} has a control character in its value"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_major_version_ignores_the_minor_part() {
        assert_eq!(major("15.18"), "15");
        assert_eq!(major("15"), "15");
        assert_eq!(major("7.0.15"), "7");
    }

    #[test]
    fn managed_settings_and_odd_names_are_refused() {
        let key_ok = |k: &str| k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        assert!(check_setting("max_connections", "50", key_ok, &["port"]).is_ok());
        assert!(check_setting("port", "1", key_ok, &["port"])
            .unwrap_err()
            .contains("managed by the deployer"));
        assert!(check_setting("ssl_cert_file", "x", key_ok, &["ssl_*"]).is_err());
        assert!(check_setting("max connections", "1", key_ok, &[]).is_err());
        assert!(check_setting("work_mem", "4MB\nport = 1", key_ok, &[]).is_err());
    }

    #[test]
    fn settings_become_command_line_arguments_in_each_engines_form() {
        let settings = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert_eq!(settings_args(Engine::Postgresql, &settings), ["-c", "a=1"]);
        assert_eq!(settings_args(Engine::Redis, &settings), ["--a", "1"]);
    }
}
