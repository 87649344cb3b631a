//! Typed settings of the broker (env prefix `BROKER`), with their defaults as named constants.

pub use crate::domain::quota::QuotaSettings;
use common::secret::SecretString;
use common::telemetry::LogFormat;
use common::tls::TlsFiles;
pub use encryption::{EncryptionKey, EncryptionSettings, DEFAULT_KEY_ID};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod encryption;

/// Environment variable prefix (`BROKER_DATABASE__URL`, …).
pub const ENV_PREFIX: &str = "BROKER";
/// Default listen address of the OSB API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default Basic auth user name.
pub const DEFAULT_USERNAME: &str = "broker";
/// Default state database (a SQLite file in the working directory).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://broker.sqlite";
/// Default directory of the mTLS material (`osbctl certs` layout).
pub const DEFAULT_CERT_DIR: &str = "certs";
/// Default deployer URL.
pub const DEFAULT_DEPLOYER_URL: &str = "https://127.0.0.1:8443";
/// Default SPI of the PostgreSQL offering.
pub const DEFAULT_SPI_POSTGRES_URL: &str = "https://127.0.0.1:8444";
/// Default SPI of the key-value offering.
pub const DEFAULT_SPI_KEYVALUE_URL: &str = "https://127.0.0.1:8445";
/// How often the journal looks for operations to run or take over.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 200;
/// How long a worker's claim on an operation lasts without renewal.
pub const DEFAULT_LEASE_MS: u64 = 10_000;
/// `Retry-After` sent while an operation is in progress.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 2;
/// How long bind and unbind wait for their operation before answering 202.
pub const DEFAULT_SYNC_TIMEOUT_MS: u64 = 20_000;
/// How often the catalog is fetched again from the SPIs.
pub const DEFAULT_CATALOG_REFRESH_SECS: u64 = 30;
/// Timeout of one call to an SPI or the deployer.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
/// Longest an operation may run (a plan's shorter `maximum_polling_duration` wins).
pub const DEFAULT_MAX_OPERATION_SECS: u64 = 3_600;
/// Seconds between the running broker's reconciliation checks against the deployer.
pub const DEFAULT_RECONCILE_INTERVAL_SECS: u64 = 300;
/// Milliseconds a client has to send a whole request body.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// Connections one client address may hold open on the OSB listener at once.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// Everything the broker needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Address of the OSB API (`host:port`, port 0 picks a free one).
    pub listen: String,
    /// The URL platforms and users reach the broker at (`http(s)://host[:port][/prefix]`),
    /// when it differs from the listen address (a proxy, a public name). Dashboard URLs are
    /// built from it. None: `http://` and the address actually bound (a wildcard address
    /// reads as loopback).
    #[serde(default)]
    pub external_url: Option<String>,
    /// Basic auth credentials platforms must present.
    pub auth: AuthSettings,
    /// The state database.
    pub database: DatabaseSettings,
    /// Keys encrypting secrets at rest.
    #[serde(default)]
    pub encryption: EncryptionSettings,
    /// The broker's client identity for internal mTLS calls.
    pub tls: TlsFiles,
    /// The SPIs whose offerings form the catalog.
    #[serde(default)]
    pub spis: Vec<SpiSettings>,
    /// The deployer.
    pub deployer: DeployerSettings,
    /// Journal worker tuning.
    pub worker: WorkerSettings,
    /// Lifetime of binding credentials.
    #[serde(default)]
    pub bindings: BindingSettings,
    /// The periodic comparison of instances with the deployer's deployments.
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    /// Limits of the OSB listener against slow and greedy clients.
    #[serde(default)]
    pub http: HttpSettings,
    /// Callbacks (webhooks) on every operation's start and end.
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Most instances that may exist, globally, per offering, plan, organization and space
    /// (re-read with the SPI list at each catalog refresh).
    #[serde(default)]
    pub quotas: QuotaSettings,
    /// Seconds between catalog refreshes.
    pub catalog_refresh_secs: u64,
    /// Log output format.
    pub log_format: LogFormat,
    /// The file these settings were loaded from, if any (not a setting: [`Settings::load`]
    /// fills it in). The catalog refresh reads the `spis` list from it again.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// Basic auth credentials of the OSB API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// User name.
    pub username: String,
    /// Password (never logged).
    pub password: SecretString,
}

/// The state database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// A SQLite path, or `sqlite://path`.
    pub url: String,
}

/// One SPI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiSettings {
    /// Name used in logs and descriptions.
    pub name: String,
    /// Base URL (`https://host:port`).
    pub url: String,
}

/// The deployer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployerSettings {
    /// Base URL (`https://host:port`).
    pub url: String,
}

/// Journal worker tuning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSettings {
    /// Milliseconds between journal polls and deployer task polls.
    pub poll_interval_ms: u64,
    /// Milliseconds a claim lasts without renewal.
    pub lease_ms: u64,
    /// `Retry-After` seconds while an operation is in progress.
    pub retry_after_secs: u64,
    /// Milliseconds bind and unbind wait before answering 202.
    pub sync_timeout_ms: u64,
    /// Milliseconds one internal call may take.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Seconds an operation may run: the plan's `maximum_polling_duration` when it is
    /// shorter, else this.
    #[serde(default = "default_max_operation_secs")]
    pub max_operation_secs: u64,
    /// This broker's stable name among the brokers sharing the state database (unique per
    /// running broker, such as a pod name). When set, a restarted broker takes the leases of
    /// the operations it was running back at once instead of waiting for them to expire;
    /// unset, every start uses a fresh random identity.
    #[serde(default)]
    pub identity: Option<String>,
}

fn default_call_timeout_ms() -> u64 {
    DEFAULT_CALL_TIMEOUT_MS
}

fn default_max_operation_secs() -> u64 {
    DEFAULT_MAX_OPERATION_SECS
}

/// Limits of the OSB listener against slow and greedy clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Milliseconds a client has, once the handler starts reading, to send the whole request
    /// body; a slower one is answered 408 and its connection closed.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Connections one client IP address may hold open at once; a connection beyond it is
    /// answered 429 and closed. 0: no limit. Behind a proxy every platform shares one address.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
}

fn default_body_timeout_ms() -> u64 {
    DEFAULT_BODY_TIMEOUT_MS
}

fn default_max_connections_per_client() -> usize {
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

impl HttpSettings {
    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(100))
    }
}

/// Lifetime of binding credentials: when set, bindings carry `expires_at` / `renew_before`
/// metadata and the journal unbinds (revokes) each binding once it expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSettings {
    /// Seconds a binding's credentials are valid after it was created; none: no expiry.
    #[serde(default)]
    pub validity_secs: Option<u64>,
    /// Seconds before expiry from which the platform should rotate the binding; none: a fifth
    /// of the validity.
    #[serde(default)]
    pub renew_before_secs: Option<u64>,
}

/// The periodic reconciliation check (it only reports; `broker reconcile --delete-orphans`
/// removes orphans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileSettings {
    /// Seconds between checks; 0 turns the check off.
    pub interval_secs: u64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_secs: DEFAULT_RECONCILE_INTERVAL_SECS,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            lease_ms: DEFAULT_LEASE_MS,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            sync_timeout_ms: DEFAULT_SYNC_TIMEOUT_MS,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_operation_secs: DEFAULT_MAX_OPERATION_SECS,
            identity: None,
        }
    }
}

impl WorkerSettings {
    /// The journal poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.max(100))
    }

    /// The synchronous window of bind and unbind.
    pub fn sync_timeout(&self) -> Duration {
        Duration::from_millis(self.sync_timeout_ms)
    }

    /// The timeout of one internal call.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms.max(100))
    }
}

impl Default for Settings {
    fn default() -> Self {
        let cert_dir = Path::new(DEFAULT_CERT_DIR);
        Self {
            listen: DEFAULT_LISTEN.into(),
            external_url: None,
            auth: AuthSettings {
                username: DEFAULT_USERNAME.into(),
                password: SecretString::default(),
            },
            database: DatabaseSettings {
                url: DEFAULT_DATABASE_URL.into(),
            },
            encryption: EncryptionSettings::default(),
            tls: TlsFiles::in_dir(cert_dir, "broker"),
            spis: vec![
                SpiSettings {
                    name: "spi-postgres".into(),
                    url: DEFAULT_SPI_POSTGRES_URL.into(),
                },
                SpiSettings {
                    name: "spi-keyvalue".into(),
                    url: DEFAULT_SPI_KEYVALUE_URL.into(),
                },
            ],
            deployer: DeployerSettings {
                url: DEFAULT_DEPLOYER_URL.into(),
            },
            worker: WorkerSettings::default(),
            bindings: BindingSettings::default(),
            reconcile: ReconcileSettings::default(),
            http: HttpSettings::default(),
            webhooks: Default::default(),
            quotas: QuotaSettings::default(),
            catalog_refresh_secs: DEFAULT_CATALOG_REFRESH_SECS,
            log_format: LogFormat::default(),
            config_file: None,
        }
    }
}

/// The external base URL of a broker bound to `bound` with `configured` external URL:
/// the configured one (validated, without a trailing `/`), else `http://<bound>` with a
/// wildcard address replaced by loopback.
pub fn external_url(
    configured: Option<&str>,
    bound: std::net::SocketAddr,
) -> Result<String, String> {
    if let Some(url) = configured.map(str::trim).filter(|u| !u.is_empty()) {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("external_url {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "external_url {url:?} must be an http:// or https:// URL with a host"
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "external_url {url:?} must not have a query or a fragment"
            ));
        }
        return Ok(url.trim_end_matches('/').to_string());
    }
    let mut address = bound;
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{address}"))
}

impl Settings {
    /// Loads defaults → the optional TOML file → `BROKER_…` environment variables, and
    /// remembers the file.
    pub fn load(file: Option<&Path>) -> Result<Self, common::settings::SettingsError> {
        Self::load_with_env(file, None)
    }

    /// [`Settings::load`] with the environment taken from `env` instead of the process's when
    /// it is given (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, common::settings::SettingsError> {
        let mut settings: Self =
            common::settings::load_with_env(&Self::default(), file, ENV_PREFIX, env)?;
        settings.encryption.name_unnamed_keys();
        settings.config_file = file.map(Path::to_path_buf);
        Ok(settings)
    }
}

#[cfg(test)]
mod env_forms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/broker.toml");
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(settings.spis.len(), 2);
        assert_eq!(settings.encryption.current, "k1");
        assert_eq!(settings.worker, WorkerSettings::default());
        assert_eq!(settings.reconcile, ReconcileSettings::default());
        assert!(
            settings.encryption.keys.is_empty(),
            "no key in the example file"
        );
        assert_eq!(settings.config_file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn the_external_url_is_the_configured_one_else_the_bound_address() {
        let bound: std::net::SocketAddr = "0.0.0.0:4321".parse().unwrap();
        assert_eq!(external_url(None, bound).unwrap(), "http://127.0.0.1:4321");
        assert_eq!(
            external_url(None, "[::]:80".parse().unwrap()).unwrap(),
            "http://[::1]:80"
        );
        assert_eq!(
            external_url(None, "10.1.2.3:8080".parse().unwrap()).unwrap(),
            "http://10.1.2.3:8080"
        );
        assert_eq!(
            external_url(Some("https://osb.example.com/broker/"), bound).unwrap(),
            "https://osb.example.com/broker"
        );
        for bad in ["osb.example.com", "ftp://x", "https://x/?a=1"] {
            assert!(external_url(Some(bad), bound).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_spi_list_of_a_file_replaces_the_default_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(
            &path,
            "[[spis]]\nname = \"spi-postgres\"\nurl = \"https://localhost:1\"\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(
            settings.spis,
            [SpiSettings {
                name: "spi-postgres".into(),
                url: "https://localhost:1".into()
            }]
        );
    }
}
