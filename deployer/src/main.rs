//! The deployer binary: telemetry, settings (file from the first argument or
//! `DEPLOYER_CONFIG`, then `DEPLOYER_…` variables), build, run.

use anyhow::Context;
use deployer::config::{Settings, ENV_PREFIX};
use deployer::Application;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("DEPLOYER_CONFIG"))
        .map(PathBuf::from);
    let settings: Settings =
        common::settings::load(&Settings::default(), file.as_deref(), ENV_PREFIX)
            .context("loading the deployer settings")?;
    common::telemetry::init(settings.log_format, "info");
    let app = Application::build(settings).await?;
    let handle = app.server_handle();
    // Stop gracefully on Ctrl-C / SIGTERM.
    tokio::spawn(async move {
        common::shutdown_signal().await;
        handle.stop(true).await;
    });
    app.run_until_stopped().await
}
