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
        Command::Certs(args) => {
            if args.if_missing && args.out.join("ca.pem").exists() {
                println!("{} already holds a CA; keeping it", args.out.display());
                return Ok(());
            }
            let mut hosts = common::certs::loopback_hosts();
            hosts.extend(args.hosts);
            common::certs::write_bundle(&args.out, common::certs::SERVICE_NAMES, &hosts)?;
            println!(
                "wrote the CA and certificates for {:?} to {}",
                common::certs::SERVICE_NAMES,
                args.out.display()
            );
            Ok(())
        }
        Command::Bench(args) => osbctl::bench::run(args).await,
        Command::Health(args) => osbctl::cli::health(args).await,
        other => osbctl::cli::run_client_command(other).await,
    }
}
