//! Builds the deployer: loads its state, resumes unfinished tasks, brings deployments back up,
//! and serves `/deployer/v1` over mutual TLS only.

use crate::backend::bosh::BoshBackend;
use crate::backend::docker::DockerBackend;
use crate::backend::process::ProcessBackend;
use crate::backend::Backend;
use crate::config::{BackendKind, Settings};
use crate::routes;
use crate::service::Deployer;
use crate::store::Store;
use actix_web::dev::ServerHandle;
use actix_web::web;
use anyhow::Context;
use service_edge::{EdgeServer, Listener};
use std::sync::Arc;

/// Directory under the data dir holding the deployer's own state files.
pub const STATE_DIR: &str = "state";
/// HTTP worker threads: the deployer serves few, small requests.
const WORKERS: usize = 2;

/// A built deployer, listening and ready to run.
pub struct Application {
    server: EdgeServer,
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
        let listener = Listener::bind(&settings.listen, &settings.tls)?;
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
            BackendKind::Bosh => {
                let bosh = settings
                    .bosh
                    .clone()
                    .context("backend = \"bosh\" needs a [bosh] section")?;
                Arc::new(BoshBackend::new(&data_dir, bosh).context("setting up the bosh backend")?)
            }
        };
        let deployer = Deployer::new(store, backend);
        deployer.resume();
        let workers = StopWorkers(Arc::clone(&deployer));

        let data = web::Data::from(deployer);
        let server = listener.serve("deployer", WORKERS, move |cfg| {
            cfg.app_data(data.clone()).configure(routes::configure);
        })?;
        tracing::info!(data_dir = %data_dir.display(), "deployer state loaded; tasks resumed");
        Ok(Self { server, workers })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// A handle that stops the server (tests, `osbctl up`).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.server_handle()
    }

    /// Serves until the server handle stops it; then stops the task workers.
    /// The servers of the deployments keep running.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let _workers = self.workers;
        self.server
            .run_until_stopped()
            .await
            .context("deployer HTTP server")
    }
}
