//! `osbctl` entry point: parse arguments, dispatch, and report an error as one line.
//!
//! Errors are printed with their causes on one line and exit status 1, never through `main`
//! returning an `anyhow::Error` (that prints a stack backtrace whenever `RUST_BACKTRACE` is set,
//! which is noise for a wrong plan name or a broker that is not running).

use clap::Parser;
use osbctl::cli::{Cli, Command};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    common::tls::install_default_provider();
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", osbctl::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => {
            common::telemetry::init(args.log_format, "info");
            osbctl::up::up(args).await
        }
        Command::Down(args) => osbctl::down::down(args).await,
        Command::Certs(args) => osbctl::certs::run(&args),
        Command::Bench(args) => osbctl::bench::run(args).await,
        Command::Health(args) => osbctl::cli::health(args).await,
        other => osbctl::cli::run_client_command(other).await,
    }
}
