//! The broker binary: telemetry, settings (file from the argument or `BROKER_CONFIG`), then
//! serve until SIGTERM/SIGINT, or run a maintenance command (`reconcile`, `reencrypt`,
//! `webhooks`).

use anyhow::Context as _;
use broker::config::Settings;
use broker::startup::Application;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The Open Service Broker API server.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Settings file (default: `BROKER_CONFIG`, else built-in defaults and the environment).
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Compare instances with the deployer's deployments and report orphans either way
    /// (exit status 2 when something is left to fix).
    Reconcile {
        /// Delete deployments no instance owns.
        #[arg(long)]
        delete_orphans: bool,
        /// Settings file.
        config: Option<PathBuf>,
    },
    /// Re-encrypt every stored secret under `encryption.current`.
    Reencrypt {
        /// Settings file.
        config: Option<PathBuf>,
    },
    /// Show the webhook outbox: events per endpoint and state, and every dead letter (exit
    /// status 2 when there are dead letters).
    Webhooks {
        /// Make every dead letter pending again (delivered anew from the first attempt).
        #[arg(long)]
        redeliver_dead: bool,
        /// Settings file.
        config: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    common::tls::install_default_provider();
    let cli = Cli::parse();
    let file = match &cli.command {
        Some(
            Command::Reconcile { config, .. }
            | Command::Reencrypt { config }
            | Command::Webhooks { config, .. },
        ) => config.clone(),
        None => cli.config,
    }
    .or_else(|| std::env::var_os("BROKER_CONFIG").map(PathBuf::from));
    let settings = Settings::load(file.as_deref()).context("loading settings")?;
    common::telemetry::init(settings.log_format, "info");
    let done = match cli.command {
        Some(Command::Reconcile { delete_orphans, .. }) => {
            broker::commands::reconcile(&settings, delete_orphans).await?
        }
        Some(Command::Reencrypt { .. }) => broker::commands::reencrypt(&settings).await?,
        Some(Command::Webhooks { redeliver_dead, .. }) => {
            broker::commands::webhooks(&settings, redeliver_dead).await?
        }
        None => {
            let app = Application::build(settings).await?;
            let stopper = app.stopper();
            tokio::spawn(async move {
                common::shutdown_signal().await;
                stopper.stop().await;
            });
            app.run_until_stopped().await?;
            true
        }
    };
    Ok(if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
