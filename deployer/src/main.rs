//! The deployer binary: telemetry, settings (file from the first argument or
//! `DEPLOYER_CONFIG`, then `DEPLOYER_…` variables), build, run.

use anyhow::Context;
use deployer::config::{Settings, ENV_PREFIX};
use deployer::Application;
use service_edge::server::{config_file, run_until_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = config_file("DEPLOYER_CONFIG");
    let settings: Settings =
        common::settings::load(&Settings::default(), file.as_deref(), ENV_PREFIX)
            .context("loading the deployer settings")?;
    common::telemetry::init(settings.log_format, "info");
    let app = Application::build(settings).await?;
    run_until_signal(app.server_handle(), app.run_until_stopped()).await
}
