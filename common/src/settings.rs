//! Layered configuration: a service's typed defaults, then an optional file, then environment
//! variables with the service's prefix and `__` nesting (`BROKER_DATABASE__URL`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Failure to load settings.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

/// Loads `T`: `defaults` → `file` (TOML, optional) → environment variables `PREFIX_…`.
pub fn load<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder().add_source(config::Config::try_from(defaults)?);
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(env_prefix)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true),
    );
    Ok(builder.build()?.try_deserialize()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Demo {
        port: u16,
        name: String,
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.toml");
        std::fs::write(&path, "port = 9000\n").unwrap();
        let d = load(
            &Demo {
                port: 1,
                name: "x".into(),
            },
            Some(&path),
            "COMMON_SETTINGS_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(
            d,
            Demo {
                port: 9000,
                name: "x".into()
            }
        );
    }
}
