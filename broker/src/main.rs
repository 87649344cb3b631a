//! The broker binary: telemetry, settings (file from the first argument or `BROKER_CONFIG`),
//! build, serve.

use anyhow::Context as _;
use broker::config::Settings;
use broker::startup::Application;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("BROKER_CONFIG"))
        .map(PathBuf::from);
    let settings = Settings::load(file.as_deref()).context("loading settings")?;
    common::telemetry::init(settings.log_format, "info");
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}
