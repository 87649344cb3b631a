//! Builds the server: binds the listener, loads the mTLS config, compiles the offering and wires
//! the routes. Tests and `osbctl up` start it in-process and stop it through its handle;
//! [`serve`] is the whole of an SPI's `main`.

use crate::config::Settings;
use crate::offering::Offering;
use crate::request::request_context;
use crate::routes;
use crate::service::DataService;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use common::authz::{self, AllowedClients};
use std::net::TcpListener;
use std::path::PathBuf;

/// Worker threads per server; an SPI does little work per request.
pub const WORKERS: usize = 2;

/// A bound, not yet running SPI server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `settings.listen` (which may use port 0) and prepares the server.
    pub async fn build<S: DataService>(settings: Settings<S>) -> anyhow::Result<Self> {
        let tls = settings
            .tls
            .server_config()
            .context("loading the TLS certificate, key and CA")?;
        let offering = web::Data::new(
            Offering::<S>::new(&settings.dashboard_base_url)
                .context("compiling the catalog")?
                .allowing_context_updates(settings.allow_context_updates),
        );
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let allowed = AllowedClients::new(settings.tls.allowed_clients.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(allowed.clone())
                .route(authz::HEALTH_PATH, web::get().to(authz::health))
                .wrap(from_fn(authz::authorize))
                .wrap(from_fn(request_context))
                .app_data(offering.clone())
                .app_data(routes::json_config())
                .configure(routes::configure::<S>)
                .default_service(web::to(routes::not_found))
        })
        .on_connect(authz::capture_peer_identity)
        .workers(WORKERS)
        .disable_signals()
        .listen_rustls_0_23(listener, tls)
        .context("starting the TLS listener")?
        .run();
        tracing::info!(port, "{} listening (mTLS)", S::SERVICE.spi_name);
        Ok(Self { port, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`Application::server_handle`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("server failed")
    }
}

/// An SPI's `main`: loads settings (file from the first argument or the environment variable
/// `config_env`, then variables `<env_prefix>_…`), then serves over mTLS until Ctrl-C or
/// SIGTERM.
pub async fn serve<S: DataService>(env_prefix: &str, config_env: &str) -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os(config_env))
        .map(PathBuf::from);
    let settings = Settings::<S>::load(file.as_deref(), env_prefix).context("loading settings")?;
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
