//! Builds the deployer: loads its state, resumes unfinished tasks, brings deployments back up,
//! and serves `/deployer/v1` over mutual TLS only.

use crate::backend::docker::DockerBackend;
use crate::backend::process::ProcessBackend;
use crate::backend::Backend;
use crate::config::{BackendKind, Settings};
use crate::routes;
use crate::service::Deployer;
use crate::store::Store;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;
use common::authz::{self, AllowedClients};
use std::net::TcpListener;
use std::sync::Arc;

/// Directory under the data dir holding the deployer's own state files.
pub const STATE_DIR: &str = "state";
/// HTTP worker threads: the deployer serves few, small requests.
const WORKERS: usize = 2;

/// A built deployer, listening and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    workers: StopWorkers,
}

/// Stops the task workers when the application ends (run to its end or dropped unrun), so
/// that a new `Application` on the same data dir is the only one acting on it.
struct StopWorkers(Arc<Deployer>);

impl Drop for StopWorkers {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl Application {
    /// Loads the state under `settings.data_dir`, resumes its tasks and binds `settings.listen`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let tls = settings
            .tls
            .server_config()
            .context("loading the deployer's TLS certificate, key and CA")?;
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
        let data_dir = std::fs::canonicalize(&settings.data_dir)
            .with_context(|| format!("resolving data dir {}", settings.data_dir.display()))?;
        let store = Store::open(&data_dir.join(STATE_DIR)).context("loading deployer state")?;
        let backend: Arc<dyn Backend> = match settings.backend {
            BackendKind::Process => ProcessBackend::new(
                &data_dir,
                settings.process.clone(),
                settings.supervision.clone(),
            )
            .context("setting up the process backend")?,
            BackendKind::Docker => Arc::new(
                DockerBackend::connect(&data_dir, settings.docker.clone())
                    .await
                    .context("connecting to the Docker Engine")?,
            ),
        };
        let deployer = Deployer::new(store, backend);
        deployer.resume();
        let workers = StopWorkers(Arc::clone(&deployer));

        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(deployer);
        let allowed = AllowedClients::new(settings.tls.allowed_clients.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(allowed.clone())
                .route(authz::HEALTH_PATH, web::get().to(authz::health))
                .wrap(middleware::from_fn(authz::authorize))
                .wrap(middleware::from_fn(crate::request::track))
                .app_data(data.clone())
                .configure(routes::configure)
        })
        .on_connect(authz::capture_peer_identity)
        .workers(WORKERS)
        .listen_rustls_0_23(listener, tls)
        .context("listening with TLS")?
        // The embedding program stops the server (main.rs on Ctrl-C / SIGTERM, `osbctl up`
        // with the rest of its stack): actix's own handler would stop the deployer alone.
        .disable_signals()
        .run();
        tracing::info!(port, data_dir = %data_dir.display(), "deployer listening (mTLS)");
        Ok(Self {
            port,
            server,
            workers,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (tests, `osbctl up`).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server handle stops it; then stops the task workers.
    /// The servers of the deployments keep running.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let _workers = self.workers;
        self.server.await.context("deployer HTTP server")
    }
}
