//! `osbctl` entry point: parse arguments, dispatch.

use clap::Parser;
use osbctl::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => {
            common::telemetry::init(common::telemetry::LogFormat::Compact, "info");
            osbctl::stack::up(args).await
        }
        Command::Certs(args) => osbctl::certs::run(&args),
        Command::Bench(args) => osbctl::bench::run(args).await,
        Command::Health(args) => osbctl::cli::health(args).await,
        other => osbctl::cli::run_client_command(other).await,
    }
}
