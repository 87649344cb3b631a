//! `spi-postgres`: loads settings (file from the first argument or `SPI_POSTGRES_CONFIG`), then
//! serves the PostgreSQL SPI over mTLS until interrupted.

use anyhow::Context;
use spi_postgres::config::{Settings, CONFIG_ENV, ENV_PREFIX};
use spi_postgres::startup::Application;
use std::path::PathBuf;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os(CONFIG_ENV))
        .map(PathBuf::from);
    let settings = common::settings::load(&Settings::default(), file.as_deref(), ENV_PREFIX)
        .context("loading settings")?;
    common::telemetry::init(settings.log_format, "info");
    let app = Application::build(settings).await?;
    let handle = app.server_handle();
    // Stop gracefully on Ctrl-C / SIGTERM.
    tokio::spawn(async move {
        shutdown_signal().await;
        handle.stop(true).await;
    });
    app.run_until_stopped().await
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
