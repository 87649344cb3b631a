//! Command-line surface of `osbctl`: argument definitions, `osbctl health`, and (in
//! [`client`]) the OSB client commands.

mod client;

pub use client::{
    resolve, run_client_command, BindArgs, CatalogArgs, DeprovisionArgs, LastOperationArgs,
    ProvisionArgs, UnbindArgs, UpdateArgs,
};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The operator CLI of the service broker system.
#[derive(Debug, Parser)]
#[command(name = "osbctl", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole stack on this machine (broker, SPIs, deployer) until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Stop a local stack: `osbctl up` if it runs, then its data servers (`--purge`: and delete
    /// the data directory).
    Down(DownArgs),
    /// Write an internal CA and a certificate per service for a multi-host setup.
    Certs(CertsArgs),
    /// Show the broker's catalog.
    Catalog(CatalogArgs),
    /// Create a service instance and wait until it is ready.
    Provision(ProvisionArgs),
    /// Change an instance's plan or parameters and wait until done.
    Update(UpdateArgs),
    /// Create a binding and print its credentials.
    Bind(BindArgs),
    /// Delete a binding (its credentials stop working).
    Unbind(UnbindArgs),
    /// Delete an instance and wait until it is gone.
    Deprovision(DeprovisionArgs),
    /// Show the last operation of an instance or binding.
    LastOperation(LastOperationArgs),
    /// Measure catalog throughput and provision-to-first-query time against raw figures.
    Bench(crate::bench::BenchArgs),
    /// Exit 0 if a GET of the URL answers 2xx (container healthchecks; mTLS with --cert-dir).
    Health(HealthArgs),
}

/// `osbctl health` options.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The URL to GET (`http://127.0.0.1:8080/healthz`, `https://127.0.0.1:8443/healthz`: the
    /// internal services' `/healthz` answers any certificate from the CA, their APIs only the
    /// broker's).
    pub url: String,
    /// Directory of `ca.pem` and the client certificate (for mTLS services).
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Which certificate in --cert-dir to present.
    #[arg(long, default_value = "broker")]
    pub identity: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// `osbctl health`: GET the URL (over mTLS when a certificate directory is given); an error
/// unless it answers 2xx.
pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let http = match &args.cert_dir {
        Some(dir) => {
            let tls = common::tls::TlsFiles::in_dir(dir, &args.identity).client_config()?;
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(timeout)
                .build()?
        }
        None => reqwest::Client::builder().timeout(timeout).build()?,
    };
    let status = http
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("GET {}", args.url))?
        .status();
    if !status.is_success() {
        bail!("GET {} answered {status}", args.url);
    }
    Ok(())
}

/// Where the broker is and how to authenticate. The password comes from the environment
/// (`OSB_PASSWORD`) or a file, never from the command line (where `ps` shows it).
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Broker base URL.
    #[arg(long, env = "OSB_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    pub broker_url: String,
    /// Basic-auth user.
    #[arg(long, env = "OSB_USERNAME", default_value = "admin")]
    pub username: String,
    /// File holding the Basic-auth password (else the variable `OSB_PASSWORD`, which
    /// `osbctl up` writes into <data-dir>/osbctl.env with the URL and user).
    #[arg(long, env = "OSB_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
}

impl BrokerArgs {
    /// The broker password: the file's first line, else `OSB_PASSWORD`.
    pub fn password(&self) -> anyhow::Result<String> {
        if let Some(file) = &self.password_file {
            return read_password_file(file);
        }
        match std::env::var("OSB_PASSWORD") {
            Ok(p) if !p.is_empty() => Ok(p),
            _ => bail!(
                "no broker password: set OSB_PASSWORD or use --password-file (for osbctl up's \
                 stack: set -a; . .osb/osbctl.env; set +a)"
            ),
        }
    }
}

/// The first line of a password file (surrounding whitespace trimmed); an error naming the
/// file when it cannot be read or is empty.
pub fn read_password_file(file: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the password file {}", file.display()))?;
    let password = text.lines().next().unwrap_or("").trim().to_string();
    if password.is_empty() {
        bail!("the password file {} is empty", file.display());
    }
    Ok(password)
}

/// `osbctl up` options.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Address the broker listens on (loopback by default).
    #[arg(long, env = "OSB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory for certificates, SQLite state and instance data.
    #[arg(long, env = "OSB_DATA_DIR", default_value = ".osb")]
    pub data_dir: PathBuf,
    /// Basic-auth user of the broker.
    #[arg(long, env = "OSB_USERNAME", default_value = "admin")]
    pub username: String,
    /// File holding the broker's Basic-auth password (else `OSB_PASSWORD`, else one generated
    /// and kept in <data-dir>/secrets/broker-password).
    #[arg(long, env = "OSB_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// Log format on stderr: `compact` (colours only on a terminal) or `json`.
    #[arg(long, env = "OSB_LOG_FORMAT", default_value = "compact")]
    pub log_format: common::telemetry::LogFormat,
    /// Which deployer backend runs the data servers: `process` (local processes) or `bosh`
    /// (one BOSH deployment per instance, through the Director of `--bosh-config`).
    #[arg(long, env = "OSB_BACKEND", value_enum, default_value = "process")]
    pub backend: UpBackend,
    /// (bosh) A TOML file with a `[bosh]` section as in the deployer's config: director_url,
    /// ca_file, client, client_secret_file (or client_secret), templates, …
    #[arg(long, env = "OSB_BOSH_CONFIG")]
    pub bosh_config: Option<PathBuf>,
    /// (bosh) The Director's URL (instead of the file's `director_url`).
    #[arg(long, env = "OSB_DIRECTOR_URL")]
    pub director_url: Option<String>,
    /// (bosh) PEM file of the Director's CA (instead of the file's `ca_file`).
    #[arg(long, env = "OSB_DIRECTOR_CA_FILE")]
    pub director_ca_file: Option<PathBuf>,
    /// (bosh) UAA client id or basic-auth user (instead of the file's `client`).
    #[arg(long, env = "OSB_DIRECTOR_CLIENT")]
    pub director_client: Option<String>,
    /// (bosh) File holding the client's secret (instead of the file's `client_secret_file`;
    /// the secret itself is never taken on the command line).
    #[arg(long, env = "OSB_DIRECTOR_CLIENT_SECRET_FILE")]
    pub director_client_secret_file: Option<PathBuf>,
}

/// The deployer backends `osbctl up` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpBackend {
    /// The data servers as local processes under the data dir.
    Process,
    /// One BOSH deployment per instance, through a BOSH Director.
    Bosh,
}

/// `osbctl down` options.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The data directory of the stack (as given to `osbctl up`).
    #[arg(long, env = "OSB_DATA_DIR", default_value = ".osb")]
    pub data_dir: PathBuf,
    /// Also delete the data directory: every instance's data, the state, certificates and
    /// secrets.
    #[arg(long)]
    pub purge: bool,
}

/// `osbctl certs` options.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Output directory: `ca/` (the CA's certificate and key: keep it away from the services)
    /// and one directory per service (`ca.pem`, `<service>.pem`, `<service>-key.pem`).
    #[arg(long, default_value = "certs")]
    pub out: PathBuf,
    /// Host names or IPs the certificates are valid for (repeatable; loopback always included).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// When the directory already holds a CA, keep it and every certificate that is valid for
    /// more than 30 days; issue the missing ones and those near their end (docker-compose runs
    /// its one-shot services on every `up`). This is also what a run without flags does on a
    /// directory that holds a CA.
    #[arg(long)]
    pub if_missing: bool,
    /// Issue every service certificate again from the existing CA (services pick the new files
    /// up without a restart).
    #[arg(long, conflicts_with = "if_missing")]
    pub renew: bool,
}
