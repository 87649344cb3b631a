//! Typed settings of an SPI: defaults as named consts, loaded in `main` through
//! [`common::settings::load`] with the SPI's environment prefix.

use crate::service::Catalog;
use common::settings::SettingsError;
use common::telemetry::LogFormat;
use common::tls::TlsFiles;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::Path;

/// Default listen address: loopback only, a port of the kernel's choosing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Default base URL of the dashboards.
pub const DEFAULT_DASHBOARD_BASE_URL: &str = "http://127.0.0.1:8080/dashboard";
/// Default directory of the PEM files (`ca.pem`, `<spi>.pem`, `<spi>-key.pem`).
pub const DEFAULT_CERT_DIR: &str = "certs";

/// Everything the SPI of data service `S` needs to run.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Settings<S> {
    /// Address to listen on, e.g. `127.0.0.1:8443`.
    pub listen: String,
    /// CA, certificate and key for mutual TLS.
    pub tls: TlsFiles,
    /// Base URL of the dashboards; an instance's is `<base>/instances/<instance_id>`.
    pub dashboard_base_url: String,
    /// Whether the offering declares `allow_context_updates`: the platform may then change an
    /// instance's context (e.g. a renamed space) with a context-only PATCH. Off for platforms
    /// whose context must stay as it was at provision time.
    pub allow_context_updates: bool,
    /// Log output format.
    pub log_format: LogFormat,
    /// The data service these settings are for: holds nothing, picks the defaults.
    #[serde(skip)]
    pub data_service: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for Settings<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("dashboard_base_url", &self.dashboard_base_url)
            .field("allow_context_updates", &self.allow_context_updates)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl<S: Catalog> Default for Settings<S> {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_string(),
            tls: TlsFiles::in_dir(Path::new(DEFAULT_CERT_DIR), S::SERVICE.spi_name),
            dashboard_base_url: DEFAULT_DASHBOARD_BASE_URL.to_string(),
            allow_context_updates: true,
            log_format: LogFormat::default(),
            data_service: PhantomData,
        }
    }
}

impl<S: Catalog> Settings<S> {
    /// The defaults, then `file` (if any), then the environment variables `<env_prefix>_…`.
    pub fn load(file: Option<&Path>, env_prefix: &str) -> Result<Self, SettingsError> {
        common::settings::load(&Self::default(), file, env_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::Demo;

    #[test]
    fn defaults_listen_on_loopback_only_with_the_spis_certificate() {
        let s = Settings::<Demo>::default();
        assert!(s.listen.starts_with("127.0.0.1:"));
        assert_eq!(s.tls.cert_file, Path::new("certs/spi-demo.pem"));
        assert_eq!(s.tls.key_file, Path::new("certs/spi-demo-key.pem"));
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
            &Settings::<Demo>::default(),
            Some(&path),
            "SPI_DEMO_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9443");
        assert_eq!(s.dashboard_base_url, "https://dash.example");
    }

    #[test]
    fn the_marker_shows_nowhere() {
        let s = Settings::<Demo>::default();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "listen": "127.0.0.1:0",
                "tls": {
                    "ca_file": "certs/ca.pem",
                    "cert_file": "certs/spi-demo.pem",
                    "key_file": "certs/spi-demo-key.pem",
                    "allowed_clients": ["broker"],
                },
                "dashboard_base_url": "http://127.0.0.1:8080/dashboard",
                "allow_context_updates": true,
                "log_format": "compact",
            })
        );
        assert!(!format!("{s:?}").contains("PhantomData"));
    }
}
