//! The whole stack in one process on loopback: deployer (process backend, or docker / bosh when
//! asked), both SPIs and the broker, wired with real mTLS from certificates generated on first
//! run, SQLite state and instance data under one data directory. Used by `osbctl up`, the
//! end-to-end tests and the benchmark.

use anyhow::Context;
use base64::Engine as _;
use common::secret::SecretString;
use common::tls::TlsFiles;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Broker listen address (`127.0.0.1:0` in tests).
    pub listen: String,
    /// Root of everything the stack keeps.
    pub data_dir: PathBuf,
    /// Broker Basic-auth user.
    pub username: String,
    /// Broker Basic-auth password; generated and kept in the data dir when `None`.
    pub password: Option<String>,
    /// Journal poll interval of the broker (ms).
    pub poll_interval_ms: u64,
    /// Lease of the broker's journal workers (ms).
    pub lease_ms: u64,
    /// Set: the deployer runs the data servers as containers on this Docker Engine setup
    /// instead of as local processes.
    pub docker: Option<deployer::config::DockerSettings>,
    /// Set: the deployer makes one BOSH deployment per instance through this Director.
    pub bosh: Option<deployer::config::BoshSettings>,
}

impl StackOptions {
    /// Defaults for a data dir: loopback port 0, user `admin`, generated password.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.into(),
            username: "admin".into(),
            password: None,
            poll_interval_ms: broker::config::DEFAULT_POLL_INTERVAL_MS,
            lease_ms: broker::config::DEFAULT_LEASE_MS,
            docker: None,
            bosh: None,
        }
    }
}

/// Where each piece of a stack keeps its files, derived from the data dir.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Root (absolute).
    pub root: PathBuf,
}

impl Layout {
    /// The certificate directory.
    pub fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }
    /// The secrets directory (encryption key, broker password).
    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }
    /// The deployer's data dir (`deployments/<name>/` holds each server's data).
    pub fn deployer(&self) -> PathBuf {
        self.root.join("deployer")
    }
    /// The broker's SQLite file.
    pub fn broker_db(&self) -> PathBuf {
        self.root.join("broker.sqlite")
    }
    /// TLS files of one service.
    pub fn tls(&self, service: &str) -> TlsFiles {
        TlsFiles::in_dir(&self.certs(), service)
    }
}

/// A running service of the stack.
struct Running {
    name: &'static str,
    /// Stops the service gracefully when awaited.
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs a service's server; logs `server ended` with its name when the server stops
    /// (whatever stopped it: the order of these lines is the order the services stopped).
    fn spawn(
        name: &'static str,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
        run: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        let task = tokio::spawn(async move {
            let ended = run.await;
            tracing::info!(service = name, "server ended");
            ended
        });
        Self {
            name,
            stop: Box::pin(stop),
            task,
        }
    }
}

/// A graceful stop of a server through its handle.
async fn stop_server(handle: actix_web::dev::ServerHandle) {
    handle.stop(true).await;
}

/// A running stack.
pub struct Stack {
    /// Broker base URL (`http://127.0.0.1:<port>`).
    pub broker_url: String,
    /// Broker Basic-auth user.
    pub username: String,
    /// Broker Basic-auth password.
    pub password: String,
    /// File layout.
    pub layout: Layout,
    /// Deployer base URL (mTLS).
    pub deployer_url: String,
    /// The broker's settings (tests start a second broker from them).
    pub broker_settings: broker::config::Settings,
    services: Vec<Running>,
}

/// The settings of the stack's broker: `opts`' listen address and user, its SQLite state in
/// `layout`, the local encryption key, and the two SPIs (`[postgres, keyvalue]` URLs) and the
/// deployer of this stack.
fn broker_settings(
    opts: &StackOptions,
    layout: &Layout,
    key: String,
    password: &str,
    [pg_url, kv_url]: [String; 2],
    deployer_url: &str,
) -> broker::config::Settings {
    let mut bs = broker::config::Settings {
        listen: opts.listen.clone(),
        tls: layout.tls("broker"),
        ..Default::default()
    };
    bs.auth.username = opts.username.clone();
    bs.auth.password = SecretString::new(password.to_string());
    bs.database.url = format!("sqlite://{}", layout.broker_db().display());
    bs.encryption = broker::config::EncryptionSettings {
        current: "local-1".into(),
        keys: vec![broker::config::EncryptionKey {
            id: "local-1".into(),
            key: SecretString::new(key),
        }],
    };
    bs.spis = vec![
        broker::config::SpiSettings {
            name: "spi-postgres".into(),
            url: pg_url,
        },
        broker::config::SpiSettings {
            name: "spi-keyvalue".into(),
            url: kv_url,
        },
    ];
    bs.deployer.url = deployer_url.to_string();
    bs.worker.poll_interval_ms = opts.poll_interval_ms;
    bs.worker.lease_ms = opts.lease_ms;
    // The one broker of this stack: after a crash it takes its own leases back at once.
    bs.worker.identity = Some("osbctl-local".into());
    bs
}

/// Makes the certificates, the encryption key and the password on first run; reuses them after.
fn prepare(opts: &StackOptions) -> anyhow::Result<(Layout, String, String)> {
    // Started as root, the deployer runs the data servers as another OS user, who must pass
    // through (not list) the data dir to reach their own directories: 0701.
    let local_servers = opts.docker.is_none() && opts.bosh.is_none();
    let servers_as_other_user = local_servers && deployer::default_run_as_user().is_some();
    let root = private_dir(
        &opts.data_dir,
        if servers_as_other_user { 0o701 } else { 0o700 },
    )?;
    let layout = Layout { root };
    if !layout.certs().join("ca.pem").exists() {
        common::certs::write_bundle(
            &layout.certs(),
            common::certs::SERVICE_NAMES,
            &common::certs::loopback_hosts(),
        )?;
    } else {
        // Certificates have a bounded lifetime: renew those near their end.
        common::certs::renew_bundle(
            common::certs::Layout::Flat,
            &layout.certs(),
            common::certs::SERVICE_NAMES,
            &common::certs::loopback_hosts(),
            false,
        )?;
    }
    private_dir(&layout.secrets(), 0o700)?;
    let key = read_or_create(&layout.secrets().join("encryption-key"), || {
        let bytes: [u8; 32] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })?;
    let password = match &opts.password {
        Some(p) => p.clone(),
        None => read_or_create(&layout.secrets().join("broker-password"), || {
            common::secret::random_password(24).expose().to_string()
        })?,
    };
    Ok((layout, key, password))
}

/// Creates `dir` (and its parents) if missing and sets its mode to `mode` (0700, or 0701 where
/// another OS user must pass through): the state, secrets and certificates beneath are the
/// stack's alone. Returns the absolute path.
pub fn private_dir(dir: &Path, mode: u32) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot make {} private (chmod {mode:o})", dir.display()))?;
    Ok(fs::canonicalize(dir)?)
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(s) = fs::read_to_string(path) {
        return Ok(s.trim().to_string());
    }
    let value = make();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(value.as_bytes())?;
    Ok(value)
}

impl Stack {
    /// Starts deployer, SPIs and broker; returns once all listen.
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let (layout, key, password) = prepare(&opts)?;
        let mut services = Vec::new();

        let mut deployer_settings =
            deployer::config::Settings::new(layout.deployer(), layout.tls("deployer"));
        if let Some(docker) = &opts.docker {
            deployer_settings.backend = deployer::config::BackendKind::Docker;
            deployer_settings.docker = docker.clone();
        }
        if let Some(bosh) = &opts.bosh {
            deployer_settings.backend = deployer::config::BackendKind::Bosh;
            deployer_settings.bosh = Some(bosh.clone());
        }
        let app = deployer::startup::Application::build(deployer_settings)
            .await
            .context("starting the deployer")?;
        let deployer_url = format!("https://127.0.0.1:{}", app.port());
        services.push(Running::spawn(
            "deployer",
            stop_server(app.server_handle()),
            app.run_until_stopped(),
        ));

        let pg = spi_postgres::config::Settings {
            tls: layout.tls("spi-postgres"),
            ..Default::default()
        };
        let app = spi_postgres::startup::Application::build(pg)
            .await
            .context("starting spi-postgres")?;
        let pg_url = format!("https://127.0.0.1:{}", app.port());
        services.push(Running::spawn(
            "spi-postgres",
            stop_server(app.server_handle()),
            app.run_until_stopped(),
        ));

        let kv = spi_keyvalue::config::Settings {
            tls: layout.tls("spi-keyvalue"),
            ..Default::default()
        };
        let app = spi_keyvalue::startup::Application::build(kv)
            .await
            .context("starting spi-keyvalue")?;
        let kv_url = format!("https://127.0.0.1:{}", app.port());
        services.push(Running::spawn(
            "spi-keyvalue",
            stop_server(app.server_handle()),
            app.run_until_stopped(),
        ));

        let bs = broker_settings(
            &opts,
            &layout,
            key,
            &password,
            [pg_url, kv_url],
            &deployer_url,
        );
        let app = broker::startup::Application::build(bs.clone())
            .await
            .context("starting the broker")?;
        let broker_url = format!("http://127.0.0.1:{}", app.port());
        services.push(Running::spawn(
            "broker",
            app.stopper().stop(),
            app.run_until_stopped(),
        ));

        Ok(Self {
            broker_url,
            username: opts.username,
            password,
            layout,
            deployer_url,
            broker_settings: bs,
            services,
        })
    }

    /// A typed client of the stack's deployer, with the broker's identity.
    pub fn deployer_client(&self) -> anyhow::Result<common::deployer::DeployerClient> {
        let inner = common::client::InternalClient::new(
            &self.deployer_url,
            &self.layout.tls("broker"),
            Duration::from_secs(30),
        )?;
        Ok(common::deployer::DeployerClient::new(inner))
    }

    /// An OSB client of the stack's broker.
    pub fn osb_client(&self) -> anyhow::Result<crate::osb_client::OsbClient> {
        Ok(crate::osb_client::OsbClient::new(
            &self.broker_url,
            &self.username,
            &self.password,
        )?)
    }

    /// Stops the broker, the SPIs and the deployer, in that order. The data servers the
    /// deployer started keep running (they are adopted again by the next start).
    pub async fn stop(mut self) {
        while let Some(s) = self.services.pop() {
            s.stop.await;
            match tokio::time::timeout(Duration::from_secs(10), s.task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(service = s.name, error = %e, "stopped with an error")
                }
                Ok(Err(e)) => tracing::warn!(service = s.name, error = %e, "task failed"),
                Err(_) => tracing::warn!(service = s.name, "did not stop within 10 s"),
            }
        }
    }
}
