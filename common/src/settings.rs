//! Layered configuration: a service's typed defaults, then an optional file, then environment
//! variables with the service's prefix and `__` nesting (`BROKER_DATABASE__URL`).
//!
//! A configuration error never echoes a value: the offending value is replaced by its kind
//! (`a string`), and every value of the service's environment variables and of its file is
//! removed from the message, since any of them may be a secret.

use config::ConfigError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// What stands in for a removed value in error messages.
pub const REDACTED: &str = "[redacted]";

/// Failure to load settings; the message names the key and the problem, never a value.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(String);

/// Loads `T`: `defaults` → `file` (TOML, optional) → environment variables `PREFIX_…` of the
/// process.
pub fn load<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, SettingsError> {
    load_with_env(defaults, file, env_prefix, None)
}

/// [`load`] with the environment taken from `env` (every variable, prefix included) instead of
/// the process's when it is given: tests use it to set variables without `set_var`.
pub fn load_with_env<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
    env_prefix: &str,
    env: Option<HashMap<String, String>>,
) -> Result<T, SettingsError> {
    let values = match &env {
        Some(map) => prefixed_values(map.iter(), env_prefix),
        None => prefixed_values(std::env::vars(), env_prefix),
    };
    let redact = |e: ConfigError| {
        let mut secrets = values.clone();
        if let Some(path) = file {
            secrets.extend(file_values(path));
        }
        SettingsError(scrub(&redact_error(e).to_string(), &secrets))
    };
    let mut builder =
        config::Config::builder().add_source(config::Config::try_from(defaults).map_err(redact)?);
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(env_prefix)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(env),
    );
    builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(redact)
}

/// The values of the variables whose name starts with `PREFIX_`.
fn prefixed_values<K: AsRef<str>, V: AsRef<str>>(
    vars: impl Iterator<Item = (K, V)>,
    prefix: &str,
) -> Vec<String> {
    let head = format!("{}_", prefix.to_ascii_uppercase());
    vars.filter(|(k, _)| k.as_ref().to_ascii_uppercase().starts_with(&head))
        .map(|(_, v)| v.as_ref().to_string())
        .collect()
}

/// Every quoted string of a TOML file (a rough but safe superset of its values).
fn file_values(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect()
}

/// Replaces every occurrence of a (non-trivial) value in `message`.
fn scrub(message: &str, values: &[String]) -> String {
    let mut out = message.to_string();
    let mut values: Vec<&String> = values.iter().filter(|v| v.len() >= 4).collect();
    // Longest first, so that a value containing another is removed whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        out = out.replace(v.as_str(), REDACTED);
    }
    out
}

/// The error with every value it carries replaced by its kind.
fn redact_error(e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Type {
            origin,
            unexpected,
            expected,
            key,
        } => {
            let mut m = format!("invalid type: {}, expected {expected}", kind(&unexpected));
            if let Some(key) = key {
                m.push_str(&format!(" for key `{key}`"));
            }
            if let Some(origin) = origin {
                m.push_str(&format!(" in {origin}"));
            }
            ConfigError::Message(m)
        }
        ConfigError::At { error, origin, key } => ConfigError::At {
            error: Box::new(redact_error(*error)),
            origin,
            key,
        },
        ConfigError::Message(m) => ConfigError::Message(redact_quoted(&m)),
        other => other,
    }
}

/// What kind of value was found, without the value: the part of its description before
/// the quoted value (`string "…"` → `string`, ``64-bit integer `5` `` → `64-bit integer`).
fn kind(unexpected: &impl std::fmt::Display) -> String {
    let text = unexpected.to_string();
    text.split(['"', '`'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Serde's messages quote the value they refuse (`invalid value: string "…"`): drop what is
/// between double quotes.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('"');
        out.push_str(if i % 2 == 0 { REDACTED } else { part });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Demo {
        port: u16,
        name: String,
        #[serde(default)]
        list: Vec<String>,
    }

    fn demo() -> Demo {
        Demo {
            port: 1,
            name: "x".into(),
            list: vec![],
        }
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.toml");
        std::fs::write(&path, "port = 9000\n").unwrap();
        let d = load(&demo(), Some(&path), "COMMON_SETTINGS_TEST_UNUSED").unwrap();
        assert_eq!(d.port, 9000);
        assert_eq!(d.name, "x");
    }

    #[test]
    fn a_given_environment_overrides_the_file() {
        let env = HashMap::from([("DEMO_NAME".to_string(), "from-env".to_string())]);
        let d = load_with_env(&demo(), None, "DEMO", Some(env)).unwrap();
        assert_eq!(d.name, "from-env");
    }

    #[test]
    fn an_error_about_an_environment_value_does_not_contain_it() {
        let secret = "c2VjcmV0LWtleS1ieXRlcy10aGF0LW11c3Qtbm90LWxlYWs=";
        for (var, value) in [("DEMO_LIST", secret), ("DEMO_PORT", secret)] {
            let env = HashMap::from([(var.to_string(), value.to_string())]);
            let err = load_with_env(&demo(), None, "DEMO", Some(env)).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains("c2VjcmV0"), "{text}");
            assert!(
                text.contains(var.strip_prefix("DEMO_").unwrap().to_lowercase().as_str()),
                "names the key: {text}"
            );
        }
    }

    #[test]
    fn an_error_about_a_file_value_does_not_contain_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.toml");
        std::fs::write(&path, "port = \"hunter2-is-my-password\"\n").unwrap();
        let err = load(&demo(), Some(&path), "COMMON_SETTINGS_TEST_UNUSED").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn quoted_values_are_dropped_from_messages() {
        assert_eq!(
            redact_quoted(r#"invalid value: string "abc", expected "x""#),
            r#"invalid value: string "[redacted]", expected "[redacted]""#
        );
    }
}
