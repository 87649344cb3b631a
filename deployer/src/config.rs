//! Typed settings of the deployer: defaults as named consts, loaded in `main` through
//! `common::settings::load` (defaults → TOML file → `DEPLOYER_…` environment variables).
//! The `bosh` backend's section is in [`bosh`].

pub mod bosh;

pub use bosh::BoshSettings;

use common::telemetry::LogFormat;
use common::tls::TlsFiles;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variable prefix (`DEPLOYER_PROCESS__RUN_AS_USER=postgres`).
pub const ENV_PREFIX: &str = "DEPLOYER";
/// Default listen address: loopback, a port of the OS's choosing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// Default data directory (deployments and the deployer's own state).
pub const DEFAULT_DATA_DIR: &str = "data/deployer";
/// Default directory of the PEM files `osbctl certs` writes.
pub const DEFAULT_CERT_DIR: &str = "certs";
/// Name of this service's certificate in the certificate directory.
pub const SERVICE_NAME: &str = "deployer";
/// Default directory of the PostgreSQL server binaries (`initdb`, `postgres`).
pub const DEFAULT_POSTGRES_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// Default `redis-server` binary (looked up on `PATH`).
pub const DEFAULT_REDIS_SERVER_BIN: &str = "redis-server";
/// Default host the servers listen on and that endpoints advertise.
pub const DEFAULT_ADVERTISE_HOST: &str = "127.0.0.1";
/// Default time a server gets to accept connections after it is started.
pub const DEFAULT_START_TIMEOUT_SECS: u64 = 60;

/// Everything the deployer needs to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Address to listen on (mTLS only), e.g. `127.0.0.1:8443`; port 0 picks a free one.
    pub listen: String,
    /// CA, certificate and key of this service.
    pub tls: TlsFiles,
    /// Root of `deployments/<name>/` (the servers' data) and `state/` (deployments and tasks).
    pub data_dir: PathBuf,
    /// Which orchestrator runs the servers.
    pub backend: BackendKind,
    /// Settings of the `process` backend.
    #[serde(default)]
    pub process: ProcessSettings,
    /// Settings of the `docker` backend.
    #[serde(default)]
    pub docker: DockerSettings,
    /// Settings of the `bosh` backend (required with `backend = "bosh"`).
    #[serde(default)]
    pub bosh: Option<BoshSettings>,
    /// How servers that die are restarted (process and docker backends).
    #[serde(default)]
    pub supervision: SupervisionSettings,
    /// Log output format.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// The orchestrator backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Servers as child processes under the data directory.
    #[default]
    Process,
    /// One container per deployment on a Docker Engine.
    Docker,
    /// One BOSH deployment (dedicated VMs) per deployment, through a BOSH Director.
    Bosh,
}

/// Default Docker Engine socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Default prefix of the names of the containers and volumes the docker backend creates.
pub const DEFAULT_DOCKER_NAME_PREFIX: &str = "osb-";
/// Default range of host ports the docker backend publishes deployments on.
pub const DEFAULT_DOCKER_HOST_PORTS: (u16, u16) = (41000, 41999);

/// Settings of the `docker` backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerSettings {
    /// The engine's unix socket.
    pub socket: PathBuf,
    /// Image per engine and major version, keyed `<engine>-<major>`
    /// (`postgresql-15 = "postgres:15"`, `redis-7 = "redis:7"`). An image that is not on the
    /// engine is pulled on first use.
    pub images: BTreeMap<String, String>,
    /// Prefix of container and volume names (`osb-<deployment>`, `osb-<deployment>-data`).
    pub name_prefix: String,
    /// Host address the deployments' ports are published on.
    pub publish_host: String,
    /// Inclusive range of host ports a deployment's port is chosen from (once; it stays).
    pub host_ports: (u16, u16),
    /// Host that endpoints advertise when `network` is unset (where `publish_host` is reached).
    pub advertise_host: String,
    /// A Docker network the containers join. Set: endpoints advertise the container name (a
    /// network alias) and the engine's own port, for clients on that network (docker-compose).
    pub network: Option<String>,
    /// Seconds a server gets to accept connections after its container is started.
    pub start_timeout_secs: u64,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_DOCKER_SOCKET),
            images: BTreeMap::from([
                ("postgresql-15".to_string(), "postgres:15".to_string()),
                ("redis-7".to_string(), "redis:7".to_string()),
            ]),
            name_prefix: DEFAULT_DOCKER_NAME_PREFIX.to_string(),
            publish_host: DEFAULT_ADVERTISE_HOST.to_string(),
            host_ports: DEFAULT_DOCKER_HOST_PORTS,
            advertise_host: DEFAULT_ADVERTISE_HOST.to_string(),
            network: None,
            start_timeout_secs: DEFAULT_START_TIMEOUT_SECS,
        }
    }
}

/// Default pause between two looks at the supervised servers.
pub const DEFAULT_SUPERVISION_CHECK_MS: u64 = 500;
/// Default pause before the second restart of a crash run; it doubles for each further one.
pub const DEFAULT_RESTART_BACKOFF_MS: u64 = 1_000;
/// Default longest pause between two restarts.
pub const DEFAULT_RESTART_BACKOFF_MAX_MS: u64 = 60_000;
/// Default number of restarts in a row after which a server is left down.
pub const DEFAULT_CRASH_LOOP_LIMIT: u32 = 5;
/// Default time a restarted server must stay up for its crash run to end.
pub const DEFAULT_STABLE_SECS: u64 = 60;

/// Supervision of the deployments' servers: a server that dies is started again at once, then
/// after a pause that doubles with each further death in a row ([`Self::restart_backoff_ms`]
/// up to [`Self::restart_backoff_max_ms`]); after [`Self::crash_loop_limit`] restarts in a row
/// (a restart that stays up [`Self::stable_secs`] ends the run) the deployment is reported
/// `down` and left alone until it is applied again or the deployer restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SupervisionSettings {
    /// Milliseconds between two looks at the servers (process backend).
    pub check_interval_ms: u64,
    /// Milliseconds before the second restart of a run; doubled for each further one.
    pub restart_backoff_ms: u64,
    /// Longest pause between two restarts, in milliseconds.
    pub restart_backoff_max_ms: u64,
    /// Restarts in a row after which the server is left down (0: never restarted).
    pub crash_loop_limit: u32,
    /// Seconds a restarted server must stay up for the next death to start a new run.
    pub stable_secs: u64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            check_interval_ms: DEFAULT_SUPERVISION_CHECK_MS,
            restart_backoff_ms: DEFAULT_RESTART_BACKOFF_MS,
            restart_backoff_max_ms: DEFAULT_RESTART_BACKOFF_MAX_MS,
            crash_loop_limit: DEFAULT_CRASH_LOOP_LIMIT,
            stable_secs: DEFAULT_STABLE_SECS,
        }
    }
}

/// Settings of the `process` backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSettings {
    /// Directory holding `initdb` and `postgres`.
    pub postgres_bin_dir: PathBuf,
    /// The `redis-server` binary (a path, or a name looked up on `PATH`).
    pub redis_server_bin: PathBuf,
    /// OS user the servers run as. Unset: when the deployer runs as root, `postgres` if that
    /// user exists, else `nobody`; otherwise the deployer's own user.
    #[serde(default)]
    pub run_as_user: Option<String>,
    /// Host the servers listen on and that endpoints advertise.
    pub advertise_host: String,
    /// Inclusive range of ports a deployment's server port is chosen from (once; it stays),
    /// e.g. `[40000, 40999]` for a firewall rule. Unset: a free port of the OS's choosing.
    #[serde(default)]
    pub port_range: Option<(u16, u16)>,
    /// Seconds a server gets to accept connections after it is started.
    pub start_timeout_secs: u64,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            postgres_bin_dir: PathBuf::from(DEFAULT_POSTGRES_BIN_DIR),
            redis_server_bin: PathBuf::from(DEFAULT_REDIS_SERVER_BIN),
            run_as_user: None,
            advertise_host: DEFAULT_ADVERTISE_HOST.to_string(),
            port_range: None,
            start_timeout_secs: DEFAULT_START_TIMEOUT_SECS,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new(
            PathBuf::from(DEFAULT_DATA_DIR),
            TlsFiles::in_dir(Path::new(DEFAULT_CERT_DIR), SERVICE_NAME),
        )
    }
}

impl Settings {
    /// Defaults for everything but where the data lives and which certificate to use: what
    /// tests and `osbctl up` build in code.
    pub fn new(data_dir: PathBuf, tls: TlsFiles) -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_string(),
            tls,
            data_dir,
            backend: BackendKind::default(),
            process: ProcessSettings::default(),
            docker: DockerSettings::default(),
            bosh: None,
            supervision: SupervisionSettings::default(),
            log_format: LogFormat::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_overrides_only_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployer.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/deployer\"\n[process]\nrun_as_user = \"nobody\"\nport_range = [40000, 40999]\n[supervision]\ncrash_loop_limit = 3\n",
        )
        .unwrap();
        let loaded = common::settings::load(
            &Settings::default(),
            Some(&path),
            "DEPLOYER_CONFIG_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(loaded.data_dir, PathBuf::from("/srv/deployer"));
        assert_eq!(loaded.process.run_as_user.as_deref(), Some("nobody"));
        assert_eq!(loaded.process.port_range, Some((40000, 40999)));
        assert_eq!(loaded.supervision.crash_loop_limit, 3);
        assert_eq!(
            loaded.supervision.restart_backoff_ms,
            DEFAULT_RESTART_BACKOFF_MS
        );
        assert_eq!(
            loaded.process.start_timeout_secs,
            DEFAULT_START_TIMEOUT_SECS
        );
        assert_eq!(loaded.backend, BackendKind::Process);
        assert_eq!(loaded.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn the_bosh_section_loads_with_its_templates_and_a_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployer.toml");
        let secret_file = dir.path().join("director-secret");
        std::fs::write(&secret_file, "from-a-file\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "backend = \"bosh\"\n[bosh]\ndirector_url = \"https://10.0.0.6:25555\"\nca_file = \"/ca.pem\"\n\
                 client = \"osb\"\nclient_secret_file = {:?}\nuse_dns_addresses = true\n\
                 templates = {{ \"postgresql-15\" = {{ \"small\" = {{ \"releases\" = [{{ \"name\" = \"postgres\", \"version\" = 48 }}], \
                 \"stemcell\" = {{ \"os\" = \"ubuntu-noble\", \"version\" = \"latest\" }}, \"vm_type\" = \"small\", \
                 \"persistent_disk_type\" = \"10GB\", \"networks\" = [\"default\"], \"azs\" = [\"z1\"], \"instances\" = 1 }} }} }}\n",
                secret_file.display().to_string()
            ),
        )
        .unwrap();
        let loaded = common::settings::load(
            &Settings::default(),
            Some(&path),
            "DEPLOYER_CONFIG_TEST_UNUSED",
        )
        .unwrap();
        assert_eq!(loaded.backend, BackendKind::Bosh);
        let bosh = loaded.bosh.unwrap();
        assert_eq!(bosh.secret().unwrap().expose(), "from-a-file");
        assert_eq!(bosh.deployment_prefix, bosh::DEFAULT_DEPLOYMENT_PREFIX);
        assert!(bosh.use_dns_addresses);
        let small = &bosh.templates["postgresql-15"]["small"];
        assert_eq!(small.releases[0].version, "48");
        assert_eq!(small.networks, ["default"]);
        assert_eq!(small.port, None);
        assert!(Settings::default().bosh.is_none());
    }
}
