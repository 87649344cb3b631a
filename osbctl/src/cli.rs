//! Command-line surface of `osbctl`: argument definitions and the OSB client commands.

use crate::osb_client::{Answer, OsbClient, Target};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use common::osb::{BindRequest, Catalog, JsonObject, ProvisionRequest, UpdateRequest};
use serde_json::{json, Value};
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
    Catalog {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a service instance and wait until it is ready.
    Provision {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id (any unique string; a UUID is usual).
        instance_id: String,
        /// Offering name or id.
        #[arg(long)]
        service: String,
        /// Plan name or id.
        #[arg(long)]
        plan: String,
        /// Parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
        /// Return after the broker accepted the request.
        #[arg(long)]
        no_wait: bool,
    },
    /// Change an instance's plan or parameters and wait until done.
    Update {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id.
        instance_id: String,
        /// New plan name or id.
        #[arg(long)]
        plan: Option<String>,
        /// New parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
        /// Return after the broker accepted the request.
        #[arg(long)]
        no_wait: bool,
    },
    /// Create a binding and print its credentials.
    Bind {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id.
        instance_id: String,
        /// Binding id.
        binding_id: String,
        /// Binding parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
    },
    /// Delete a binding (its credentials stop working).
    Unbind {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id.
        instance_id: String,
        /// Binding id.
        binding_id: String,
    },
    /// Delete an instance and wait until it is gone.
    Deprovision {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id.
        instance_id: String,
        /// Return after the broker accepted the request.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show the last operation of an instance or binding.
    LastOperation {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Instance id.
        instance_id: String,
        /// Binding id (for a binding's operation).
        #[arg(long)]
        binding: Option<String>,
        /// Operation handle returned by the broker.
        #[arg(long)]
        operation: Option<String>,
    },
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

fn client(b: &BrokerArgs) -> anyhow::Result<OsbClient> {
    Ok(OsbClient::new(&b.broker_url, &b.username, &b.password()?)?)
}

fn parse_params(params: &Option<String>) -> anyhow::Result<Option<JsonObject>> {
    match params {
        None => Ok(None),
        Some(s) => match serde_json::from_str::<Value>(s).context("--params is not JSON")? {
            Value::Object(o) => Ok(Some(o)),
            _ => bail!("--params must be a JSON object"),
        },
    }
}

/// Finds an offering and plan by name or id; returns their ids. When either is unknown, the
/// error lists the names that exist.
pub fn resolve(catalog: &Catalog, service: &str, plan: &str) -> anyhow::Result<(String, String)> {
    let Some(s) = catalog
        .services
        .iter()
        .find(|s| s.name == service || s.id == service)
    else {
        let names: Vec<&str> = catalog.services.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "the catalog has no service {service:?}; services: {}",
            names.join(", ")
        );
    };
    let Some(p) = s.plans.iter().find(|p| p.name == plan || p.id == plan) else {
        let names: Vec<&str> = s.plans.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "service {} has no plan {plan:?}; its plans: {}",
            s.name,
            names.join(", ")
        );
    };
    Ok((s.id.clone(), p.id.clone()))
}

/// The service and plan ids of an existing instance (GET instance).
async fn instance_ids(c: &OsbClient, instance_id: &str) -> anyhow::Result<(String, String)> {
    let a = c
        .call(
            reqwest::Method::GET,
            &format!("/v2/service_instances/{instance_id}"),
            None,
        )
        .await?;
    if a.status != 200 {
        bail!(
            "instance {instance_id} not found (GET answered {})",
            a.status
        );
    }
    let get = |k: &str| {
        a.body
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("instance has no {k}"))
    };
    Ok((get("service_id")?, get("plan_id")?))
}

const POLL: Duration = Duration::from_millis(500);
const LIMIT: Duration = Duration::from_secs(1800);

/// Polls the operation of a 202 answer to its end, printing each new progress text.
async fn follow(c: &OsbClient, target: Target<'_>, a: &Answer) -> anyhow::Result<()> {
    let print = |text: &str| eprintln!("  … {text}");
    Ok(c.wait(target, a.operation(), POLL, LIMIT, print).await?)
}

/// Runs one OSB client command; `Up`, `Certs` and `Bench` are handled by the caller.
pub async fn run_client_command(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Catalog { broker, json } => {
            let cat = client(&broker)?.catalog().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&cat)?);
            } else {
                for s in &cat.services {
                    println!("{}  ({})  {}", s.name, s.id, s.description);
                    for p in &s.plans {
                        println!("  plan {}  ({})  {}", p.name, p.id, p.description);
                    }
                }
            }
        }
        Command::Provision {
            broker,
            instance_id,
            service,
            plan,
            params,
            no_wait,
        } => {
            let c = client(&broker)?;
            let (service_id, plan_id) = resolve(&c.catalog().await?, &service, &plan)?;
            let req = ProvisionRequest {
                service_id: Some(service_id),
                plan_id: Some(plan_id),
                organization_guid: Some("osbctl".into()),
                space_guid: Some("osbctl".into()),
                context: Some(
                    json!({"platform": "osbctl", "instance_name": instance_id})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
                parameters: parse_params(&params)?,
                maintenance_info: None,
            };
            let a = c.provision(&instance_id, &req).await?;
            if let Some(url) = a.body.get("dashboard_url").and_then(Value::as_str) {
                eprintln!("dashboard: {url}");
            }
            if a.status == 202 && !no_wait {
                follow(&c, Target::Instance(&instance_id), &a).await?;
            }
            println!("instance {instance_id}: provisioned");
        }
        Command::Update {
            broker,
            instance_id,
            plan,
            params,
            no_wait,
        } => {
            let c = client(&broker)?;
            let (service_id, current_plan) = instance_ids(&c, &instance_id).await?;
            let plan_id = match plan {
                Some(p) => {
                    let cat = c.catalog().await?;
                    Some(resolve(&cat, &service_id, &p)?.1)
                }
                None => None,
            };
            let req = UpdateRequest {
                service_id: Some(service_id),
                plan_id,
                parameters: parse_params(&params)?,
                previous_values: Some(common::osb::PreviousValues {
                    plan_id: Some(current_plan),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let a = c.update(&instance_id, &req).await?;
            if a.status == 202 && !no_wait {
                follow(&c, Target::Instance(&instance_id), &a).await?;
            }
            println!("instance {instance_id}: updated");
        }
        Command::Bind {
            broker,
            instance_id,
            binding_id,
            params,
        } => {
            let c = client(&broker)?;
            let (service_id, plan_id) = instance_ids(&c, &instance_id).await?;
            let req = BindRequest {
                service_id: Some(service_id),
                plan_id: Some(plan_id),
                parameters: parse_params(&params)?,
                ..Default::default()
            };
            let mut a = c.bind(&instance_id, &binding_id, &req).await?;
            if a.status == 202 {
                follow(&c, Target::Binding(&instance_id, &binding_id), &a).await?;
                a = c.get_binding(&instance_id, &binding_id).await?;
            }
            println!("{}", serde_json::to_string_pretty(&a.body)?);
        }
        Command::Unbind {
            broker,
            instance_id,
            binding_id,
        } => {
            let c = client(&broker)?;
            let (service_id, plan_id) = instance_ids(&c, &instance_id).await?;
            let a = c
                .unbind(&instance_id, &binding_id, &service_id, &plan_id)
                .await?;
            if a.status == 202 {
                follow(&c, Target::Binding(&instance_id, &binding_id), &a).await?;
            }
            println!(
                "binding {binding_id}: {}",
                if a.status == 410 {
                    "did not exist"
                } else {
                    "deleted"
                }
            );
        }
        Command::Deprovision {
            broker,
            instance_id,
            no_wait,
        } => {
            let c = client(&broker)?;
            let (service_id, plan_id) = instance_ids(&c, &instance_id).await?;
            let a = c.deprovision(&instance_id, &service_id, &plan_id).await?;
            if a.status == 202 && !no_wait {
                follow(&c, Target::Instance(&instance_id), &a).await?;
            }
            println!("instance {instance_id}: deprovisioned");
        }
        Command::LastOperation {
            broker,
            instance_id,
            binding,
            operation,
        } => {
            let c = client(&broker)?;
            let target = match &binding {
                Some(b) => Target::Binding(&instance_id, b),
                None => Target::Instance(&instance_id),
            };
            let (status, lo) = c.last_operation(target, operation.as_deref()).await?;
            match lo {
                Some(lo) => println!("{}", serde_json::to_string_pretty(&lo)?),
                None => println!("gone ({status})"),
            }
        }
        Command::Up(_)
        | Command::Down(_)
        | Command::Certs(_)
        | Command::Bench(_)
        | Command::Health(_) => {
            bail!("not a client command")
        }
    }
    Ok(())
}
