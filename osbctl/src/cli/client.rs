//! The OSB client commands of `osbctl` (`catalog`, `provision`, `update`, `bind`, `unbind`,
//! `deprovision`, `last-operation`): their options and one function each.

use super::{BrokerArgs, Command};
use crate::osb_client::{Answer, OsbClient, Target};
use anyhow::{bail, Context};
use clap::Args;
use common::osb::{BindRequest, Catalog, JsonObject, ProvisionRequest, UpdateRequest};
use serde_json::{json, Value};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(500);
const LIMIT: Duration = Duration::from_secs(1800);

/// `osbctl catalog` options.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

/// `osbctl provision` options.
#[derive(Debug, Clone, Args)]
pub struct ProvisionArgs {
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
}

/// `osbctl update` options.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
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
}

/// `osbctl bind` options.
#[derive(Debug, Clone, Args)]
pub struct BindArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Instance id.
    instance_id: String,
    /// Binding id.
    binding_id: String,
    /// Binding parameters as a JSON object.
    #[arg(long)]
    params: Option<String>,
}

/// `osbctl unbind` options.
#[derive(Debug, Clone, Args)]
pub struct UnbindArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Instance id.
    instance_id: String,
    /// Binding id.
    binding_id: String,
}

/// `osbctl deprovision` options.
#[derive(Debug, Clone, Args)]
pub struct DeprovisionArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Instance id.
    instance_id: String,
    /// Return after the broker accepted the request.
    #[arg(long)]
    no_wait: bool,
}

/// `osbctl last-operation` options.
#[derive(Debug, Clone, Args)]
pub struct LastOperationArgs {
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
}

/// Runs one OSB client command; `Up`, `Down`, `Certs`, `Bench` and `Health` are handled by the
/// caller.
pub async fn run_client_command(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Catalog(args) => catalog(args).await,
        Command::Provision(args) => provision(args).await,
        Command::Update(args) => update(args).await,
        Command::Bind(args) => bind(args).await,
        Command::Unbind(args) => unbind(args).await,
        Command::Deprovision(args) => deprovision(args).await,
        Command::LastOperation(args) => last_operation(args).await,
        Command::Up(_)
        | Command::Down(_)
        | Command::Certs(_)
        | Command::Bench(_)
        | Command::Health(_) => {
            bail!("not a client command")
        }
    }
}

/// `osbctl catalog`: the offerings and their plans (or the raw JSON).
async fn catalog(args: CatalogArgs) -> anyhow::Result<()> {
    let cat = client(&args.broker)?.catalog().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cat)?);
        return Ok(());
    }
    for s in &cat.services {
        println!("{}  ({})  {}", s.name, s.id, s.description);
        for p in &s.plans {
            println!("  plan {}  ({})  {}", p.name, p.id, p.description);
        }
    }
    Ok(())
}

/// `osbctl provision`: creates an instance of the named offering and plan.
async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    let ProvisionArgs {
        broker,
        instance_id,
        service,
        plan,
        params,
        no_wait,
    } = args;
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
    Ok(())
}

/// `osbctl update`: changes an instance's plan or parameters.
async fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let UpdateArgs {
        broker,
        instance_id,
        plan,
        params,
        no_wait,
    } = args;
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
    Ok(())
}

/// `osbctl bind`: creates a binding and prints it with its credentials.
async fn bind(args: BindArgs) -> anyhow::Result<()> {
    let BindArgs {
        broker,
        instance_id,
        binding_id,
        params,
    } = args;
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
    Ok(())
}

/// `osbctl unbind`: deletes a binding.
async fn unbind(args: UnbindArgs) -> anyhow::Result<()> {
    let UnbindArgs {
        broker,
        instance_id,
        binding_id,
    } = args;
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
    Ok(())
}

/// `osbctl deprovision`: deletes an instance.
async fn deprovision(args: DeprovisionArgs) -> anyhow::Result<()> {
    let DeprovisionArgs {
        broker,
        instance_id,
        no_wait,
    } = args;
    let c = client(&broker)?;
    let (service_id, plan_id) = instance_ids(&c, &instance_id).await?;
    let a = c.deprovision(&instance_id, &service_id, &plan_id).await?;
    if a.status == 202 && !no_wait {
        follow(&c, Target::Instance(&instance_id), &a).await?;
    }
    println!("instance {instance_id}: deprovisioned");
    Ok(())
}

/// `osbctl last-operation`: the last operation of an instance or binding.
async fn last_operation(args: LastOperationArgs) -> anyhow::Result<()> {
    let c = client(&args.broker)?;
    let target = match &args.binding {
        Some(b) => Target::Binding(&args.instance_id, b),
        None => Target::Instance(&args.instance_id),
    };
    let (status, lo) = c.last_operation(target, args.operation.as_deref()).await?;
    match lo {
        Some(lo) => println!("{}", serde_json::to_string_pretty(&lo)?),
        None => println!("gone ({status})"),
    }
    Ok(())
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

/// Polls the operation of a 202 answer to its end, printing each new progress text.
async fn follow(c: &OsbClient, target: Target<'_>, a: &Answer) -> anyhow::Result<()> {
    let print = |text: &str| eprintln!("  … {text}");
    Ok(c.wait(target, a.operation(), POLL, LIMIT, print).await?)
}
