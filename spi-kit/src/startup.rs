//! Builds the server: binds the listener, loads the mTLS config, compiles the offering and wires
//! the routes. Tests and `osbctl up` start it in-process and stop it through its handle;
//! [`serve`] is the whole of an SPI's `main`.

use crate::config::Settings;
use crate::offering::Offering;
use crate::routes;
use crate::service::DataService;
use actix_web::dev::ServerHandle;
use actix_web::web;
use anyhow::Context;
use service_edge::server::{self, EdgeServer, Listener};

/// Worker threads per server; an SPI does little work per request.
pub const WORKERS: usize = 2;

/// A bound, not yet running SPI server.
pub struct Application {
    server: EdgeServer,
}

impl Application {
    /// Binds `settings.listen` (which may use port 0) and prepares the server.
    pub async fn build<S: DataService>(settings: Settings<S>) -> anyhow::Result<Self> {
        let listener = Listener::bind(&settings.listen, &settings.tls)?;
        let offering = web::Data::new(
            Offering::<S>::new(&settings.dashboard_base_url)
                .context("compiling the catalog")?
                .allowing_context_updates(settings.allow_context_updates),
        );
        let server = listener.serve(S::SERVICE.spi_name, WORKERS, move |cfg| {
            cfg.app_data(offering.clone())
                .app_data(routes::json_config())
                .configure(routes::configure::<S>)
                .default_service(web::to(routes::not_found));
        })?;
        Ok(Self { server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// A handle that stops the server.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.server_handle()
    }

    /// Serves until stopped through [`Application::server_handle`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.run_until_stopped().await
    }
}

/// An SPI's `main`: loads settings (file from the first argument or the environment variable
/// `config_env`, then variables `<env_prefix>_…`), then serves over mTLS until Ctrl-C or
/// SIGTERM.
pub async fn serve<S: DataService>(env_prefix: &str, config_env: &str) -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = server::config_file(config_env);
    let settings = Settings::<S>::load(file.as_deref(), env_prefix).context("loading settings")?;
    common::telemetry::init(settings.log_format, "info");
    let app = Application::build(settings).await?;
    server::run_until_signal(app.server_handle(), app.run_until_stopped()).await
}
