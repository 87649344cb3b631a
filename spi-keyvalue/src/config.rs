//! Typed settings of the SPI: defaults as named consts, loaded in `main` through
//! [`common::settings::load`] with the environment prefix [`ENV_PREFIX`].

use common::telemetry::LogFormat;
use common::tls::TlsFiles;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Prefix of the environment variables that override settings (`SPI_KEYVALUE_LISTEN`, …).
pub const ENV_PREFIX: &str = "SPI_KEYVALUE";
/// Environment variable naming the config file when no CLI argument is given.
pub const CONFIG_ENV: &str = "SPI_KEYVALUE_CONFIG";
/// Default listen address: loopback only, a port of the kernel's choosing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Default base URL of the dashboards.
pub const DEFAULT_DASHBOARD_BASE_URL: &str = "http://127.0.0.1:8080/dashboard";
/// Default directory of the PEM files (`ca.pem`, `spi-keyvalue.pem`, `spi-keyvalue-key.pem`).
pub const DEFAULT_CERT_DIR: &str = "certs";
/// Name of this service's certificate in a bundle written by `common::certs::write_bundle`.
pub const CERT_NAME: &str = "spi-keyvalue";

/// Everything the SPI needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Address to listen on, e.g. `127.0.0.1:8443`.
    pub listen: String,
    /// CA, certificate and key for mutual TLS.
    pub tls: TlsFiles,
    /// Base URL of the dashboards; an instance's is `<base>/instances/<instance_id>`.
    pub dashboard_base_url: String,
    /// Log output format.
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_string(),
            tls: TlsFiles::in_dir(Path::new(DEFAULT_CERT_DIR), CERT_NAME),
            dashboard_base_url: DEFAULT_DASHBOARD_BASE_URL.to_string(),
            log_format: LogFormat::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_only() {
        let s = Settings::default();
        assert!(s.listen.starts_with("127.0.0.1:"));
        assert_eq!(s.tls.cert_file, Path::new("certs/spi-keyvalue.pem"));
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spi.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9443\"\ndashboard_base_url = \"https://dash.example\"\n",
        )
        .unwrap();
        let s = common::settings::load(
            &Settings::default(),
            Some(&path),
            "SPI_KEYVALUE_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9443");
        assert_eq!(s.dashboard_base_url, "https://dash.example");
    }
}
