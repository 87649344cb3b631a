//! Settings of the `bosh` backend: the `[bosh]` section of `deployer.toml`, as the BOSH job
//! `deployer` renders it (`deploy/bosh/jobs/deployer/templates/deployer.toml.erb`).

use common::secret::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Default prefix of the BOSH deployment made for each deployment spec.
pub const DEFAULT_DEPLOYMENT_PREFIX: &str = "osb-";
/// Default longest time one Director task may run before the operation gives up on it.
pub const DEFAULT_TASK_TIMEOUT_SECS: u64 = 3_600;
/// Default longest time the Director may stay unreachable during an operation.
pub const DEFAULT_UNREACHABLE_SECS: u64 = 300;
/// Default pause between two looks at a running Director task.
pub const DEFAULT_POLL_MS: u64 = 1_000;
/// Default time a deployed server gets to answer the admin's query after its task is done.
pub const DEFAULT_READY_TIMEOUT_SECS: u64 = 120;
/// The template key used for a plan that has no template of its own.
pub const DEFAULT_PLAN: &str = "default";

/// The `[bosh]` section: which Director, how to log in, and one manifest template per engine,
/// major version and plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoshSettings {
    /// The Director, e.g. `https://10.0.0.6:25555` (HTTPS only).
    pub director_url: String,
    /// PEM file of the CA that signed the Director's (and its UAA's) certificate.
    pub ca_file: PathBuf,
    /// UAA client id, or the basic-auth user when the Director uses basic auth.
    pub client: String,
    /// The client's secret (or basic-auth password). Never logged.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the secret instead (its trailing newline is ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Prefix of the BOSH deployment names (`<prefix><deployment name>`).
    #[serde(default = "default_prefix")]
    pub deployment_prefix: String,
    /// Endpoints carry the instances' BOSH DNS names instead of their first IP.
    #[serde(default)]
    pub use_dns_addresses: bool,
    /// Manifest templates keyed `<engine>-<major>` (`postgresql-15`), then plan name (or
    /// [`DEFAULT_PLAN`]).
    #[serde(default)]
    pub templates: BTreeMap<String, BTreeMap<String, ManifestTemplate>>,
    /// Seconds one Director task may run before the operation fails (the task goes on).
    #[serde(default = "default_task_timeout")]
    pub task_timeout_secs: u64,
    /// Seconds the Director may stay unreachable (or answer 5xx) before a call gives up.
    #[serde(default = "default_unreachable")]
    pub unreachable_timeout_secs: u64,
    /// Milliseconds between two looks at a running task.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Seconds a deployed server gets to answer the admin's query once its task is done.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_secs: u64,
}

/// What a BOSH deployment of one engine and plan looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTemplate {
    /// Releases the deployment uses; the job's release is the first unless `job_release` says.
    pub releases: Vec<ReleaseRef>,
    /// The stemcell of every VM.
    pub stemcell: StemcellRef,
    /// A `vm_type` of the cloud config.
    pub vm_type: String,
    /// A `disk_type` of the cloud config.
    pub persistent_disk_type: String,
    /// Networks of the cloud config; the first one is the one endpoints use.
    pub networks: Vec<String>,
    /// Availability zones of the cloud config.
    pub azs: Vec<String>,
    /// How many VMs.
    pub instances: u32,
    /// The job running the server (default: `postgres` / `redis`).
    #[serde(default)]
    pub job: Option<String>,
    /// The release holding that job (default: the first release).
    #[serde(default)]
    pub job_release: Option<String>,
    /// The port the server listens on (default: the engine's).
    #[serde(default)]
    pub port: Option<u16>,
}

/// A release by name and version (`latest` lets the Director choose).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// Release name.
    pub name: String,
    /// Release version.
    #[serde(deserialize_with = "string_or_number")]
    pub version: String,
}

/// A stemcell by operating system and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StemcellRef {
    /// Operating system, e.g. `ubuntu-noble`.
    pub os: String,
    /// Version, or `latest`.
    #[serde(deserialize_with = "string_or_number")]
    pub version: String,
}

impl BoshSettings {
    /// Settings for the Director at `director_url` with defaults for the rest (tests, `osbctl`).
    pub fn new(director_url: &str, ca_file: PathBuf, client: &str, secret: SecretString) -> Self {
        Self {
            director_url: director_url.to_string(),
            ca_file,
            client: client.to_string(),
            client_secret: Some(secret),
            client_secret_file: None,
            deployment_prefix: default_prefix(),
            use_dns_addresses: false,
            templates: BTreeMap::new(),
            task_timeout_secs: DEFAULT_TASK_TIMEOUT_SECS,
            unreachable_timeout_secs: DEFAULT_UNREACHABLE_SECS,
            poll_interval_ms: DEFAULT_POLL_MS,
            ready_timeout_secs: DEFAULT_READY_TIMEOUT_SECS,
        }
    }

    /// The client secret: `client_secret`, else the content of `client_secret_file`.
    pub fn secret(&self) -> Result<SecretString, String> {
        if let Some(secret) = &self.client_secret {
            return Ok(secret.clone());
        }
        let Some(path) = &self.client_secret_file else {
            return Err("bosh.client_secret or bosh.client_secret_file must be set".into());
        };
        std::fs::read_to_string(path)
            .map(|s| SecretString::new(s.trim_end_matches(['\r', '\n'])))
            .map_err(|e| format!("reading bosh.client_secret_file {}: {e}", path.display()))
    }
}

fn default_prefix() -> String {
    DEFAULT_DEPLOYMENT_PREFIX.to_string()
}

fn default_task_timeout() -> u64 {
    DEFAULT_TASK_TIMEOUT_SECS
}

fn default_unreachable() -> u64 {
    DEFAULT_UNREACHABLE_SECS
}

fn default_poll() -> u64 {
    DEFAULT_POLL_MS
}

fn default_ready_timeout() -> u64 {
    DEFAULT_READY_TIMEOUT_SECS
}

/// A version written as a string (`"latest"`, `"1.2"`) or as a number (`48`).
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    Ok(match Form::deserialize(d)? {
        Form::Text(s) => s,
        Form::Integer(n) => n.to_string(),
        Form::Float(f) => f.to_string(),
    })
}
