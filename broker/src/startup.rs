//! Building and running the broker: state database, keyring, internal clients, catalog, the
//! journal, and the HTTP server with its route table.

use crate::catalog::{CatalogCache, SpiSource};
use crate::config::Settings;
use crate::crypto::Cipher;
use crate::flows::{FlowDispatcher, FlowRegistry};
use crate::journal::Journal;
use crate::reconcile;
use crate::routes::connections::ConnectionLimiter;
use crate::routes::{self, bindings, catalog, edge, health, instances};
use crate::service::Broker;
use crate::store::Store;
use crate::webhooks::Dispatcher;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context as _;
use common::client::InternalClient;
use common::deployer::DeployerClient;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Seconds in-flight requests get to finish once the server is told to stop (at least; a
/// longer `worker.sync_timeout_ms` extends it so a waiting bind or unbind still answers).
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// A built broker, listening, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    journal: Arc<Journal>,
    flows: Arc<FlowDispatcher>,
    catalog: Arc<CatalogCache>,
    catalog_refresh: Duration,
    store: Store,
    deployer: DeployerClient,
    reconcile_every: Option<Duration>,
    webhooks: Arc<Dispatcher>,
}

/// Stops a running broker gracefully (from [`Application::stopper`]).
pub struct Stopper {
    server: ServerHandle,
    journal: Arc<Journal>,
}

impl Stopper {
    /// The journal stops claiming operations at once; the server stops accepting connections
    /// and lets in-flight requests finish (up to the shutdown timeout); then
    /// `run_until_stopped` hands the journal's leases back and returns.
    pub async fn stop(self) {
        tracing::info!("stopping: finishing in-flight requests, then handing back leases");
        self.journal.stop_claiming();
        self.server.stop(true).await;
    }
}

/// Stops the journal's operation tasks when `run_until_stopped` returns or is dropped.
struct StopJournal(Arc<Journal>);

impl Drop for StopJournal {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// The route table. Each resource answers the methods it does not serve with 405 and an
/// `Allow` header listing those it does (RFC 9110 §15.5.6).
fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = routes::method_not_allowed;
    cfg.service(
        web::resource("/v2/catalog")
            .route(web::get().to(catalog::get))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/v2/service_instances/{instance_id}")
            .route(web::put().to(instances::provision))
            .route(web::get().to(instances::fetch))
            .route(web::patch().to(instances::update))
            .route(web::delete().to(instances::deprovision))
            .default_service(not_allowed("GET, PUT, PATCH, DELETE")),
    )
    .service(
        web::resource("/v2/service_instances/{instance_id}/last_operation")
            .route(web::get().to(instances::last_operation))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/v2/service_instances/{instance_id}/service_bindings/{binding_id}")
            .route(web::put().to(bindings::bind))
            .route(web::get().to(bindings::fetch))
            .route(web::delete().to(bindings::unbind))
            .default_service(not_allowed("GET, PUT, DELETE")),
    )
    .service(
        web::resource(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
        )
        .route(web::get().to(bindings::last_operation))
        .default_service(not_allowed("GET")),
    )
    .service(
        web::resource(edge::HEALTH_PATH)
            .route(web::get().to(health::get))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource(edge::METRICS_PATH)
            .route(web::get().to(health::metrics))
            .default_service(not_allowed("GET")),
    );
}

/// Refuses settings a broker cannot start with.
fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    if settings.auth.username.is_empty() || settings.auth.password.expose().is_empty() {
        anyhow::bail!("auth.username and auth.password must be set");
    }
    if let Some(identity) = &settings.worker.identity {
        common::ids::validate_id("worker.identity", identity)?;
    }
    Ok(())
}

/// Opens (and migrates) the state database of `settings`.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(&settings.database.url)
        .await
        .with_context(|| format!("opening the state database {}", settings.database.url))
}

/// The deployer client of `settings`.
pub fn deployer_client(settings: &Settings) -> anyhow::Result<DeployerClient> {
    Ok(DeployerClient::new(
        InternalClient::new(
            &settings.deployer.url,
            &settings.tls,
            settings.worker.call_timeout(),
        )
        .context("deployer client")?,
    ))
}

/// The OSB HTTP server of `broker` on `listener`: the edge (auth, API version, request id,
/// connection limit) in front of the route table.
fn http_server(
    settings: &Settings,
    broker: web::Data<Broker>,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let edge_config = web::Data::new(edge::EdgeConfig {
        username: settings.auth.username.clone(),
        password: settings.auth.password.clone(),
        body_timeout: settings.http.body_timeout(),
    });
    let limiter = ConnectionLimiter::new(settings.http.max_connections_per_client);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(broker.clone())
            .app_data(edge_config.clone())
            .wrap(middleware::from_fn(edge::edge))
            .configure(routes)
            .default_service(web::to(routes::not_found))
    })
    .on_connect(limiter.on_connect())
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS.max(settings.worker.sync_timeout().as_secs() + 1))
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Builds an [`Application`] with optional parts: `Application::builder(settings)
/// .flows(registry).build().await`.
#[derive(Debug)]
pub struct ApplicationBuilder {
    settings: Settings,
    flows: FlowRegistry,
}

impl ApplicationBuilder {
    /// The event flows the broker runs around its operations (see [`crate::flows`]); every
    /// broker sharing one database should be given the same flows.
    pub fn flows(mut self, flows: FlowRegistry) -> Self {
        self.flows = flows;
        self
    }

    /// Builds the broker (see [`Application::build`]).
    pub async fn build(self) -> anyhow::Result<Application> {
        Application::build_with(self.settings, self.flows).await
    }
}

impl Application {
    /// A builder for a broker with `settings` and optional parts (event flows).
    pub fn builder(settings: Settings) -> ApplicationBuilder {
        ApplicationBuilder {
            settings,
            flows: FlowRegistry::new(),
        }
    }

    /// Opens the database, loads the catalog and binds `settings.listen`, with no event flows.
    /// The server does not watch signals itself: the binary stops it through
    /// [`Application::stopper`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, FlowRegistry::new()).await
    }

    /// [`Application::build`] with the event flows of `flows` (the same as
    /// `Application::builder(settings).flows(flows).build()`).
    pub async fn build_with(settings: Settings, flows: FlowRegistry) -> anyhow::Result<Self> {
        check_settings(&settings)?;
        let cipher = Arc::new(Cipher::new(&settings.encryption).context("encryption keys")?);
        let store = open_store(&settings).await?;
        let source = SpiSource {
            file: settings.config_file.clone(),
            tls: settings.tls.clone(),
            timeout: settings.worker.call_timeout(),
        };
        let deployer = deployer_client(&settings)?;
        let catalog = Arc::new(CatalogCache::new(source, &settings.spis, store.clone())?);
        catalog.set_quotas(settings.quotas.clone());
        catalog.refresh().await;
        let journal = Arc::new(Journal::new(
            store.clone(),
            Arc::clone(&catalog),
            deployer.clone(),
            Arc::clone(&cipher),
            settings.worker.clone(),
            settings.bindings.clone(),
            tokio::runtime::Handle::current(),
        ));
        journal.take_back_own_leases().await?;
        let webhooks = Arc::new(
            Dispatcher::new(store.clone(), &settings.webhooks, journal.owner())
                .context("webhooks")?,
        );
        webhooks
            .register()
            .await
            .context("registering the webhook endpoints")?;
        let flows = FlowDispatcher::new(store.clone(), flows, journal.owner(), &settings.worker);
        let flows = Arc::new(flows);
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let bound = listener.local_addr()?;
        let port = bound.port();
        let external_url = crate::config::external_url(settings.external_url.as_deref(), bound)
            .map_err(anyhow::Error::msg)?;
        let broker = web::Data::new(Broker {
            store: store.clone(),
            catalog: Arc::clone(&catalog),
            journal: Arc::clone(&journal),
            flows: Arc::clone(&flows),
            cipher,
            worker: settings.worker.clone(),
            bindings: settings.bindings.clone(),
            external_url: external_url.clone(),
        });
        let server = http_server(&settings, broker, listener)?;
        tracing::info!(
            port,
            external_url = %external_url,
            offerings = catalog.snapshot().len(),
            owner = journal.owner(),
            "broker listening"
        );
        Ok(Self {
            port,
            server,
            journal,
            flows,
            catalog,
            catalog_refresh: Duration::from_secs(settings.catalog_refresh_secs.max(1)),
            store,
            deployer,
            reconcile_every: (settings.reconcile.interval_secs > 0)
                .then(|| Duration::from_secs(settings.reconcile.interval_secs)),
            webhooks,
        })
    }

    /// The port the OSB API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The catalog cache (tests read what its last refresh said about each SPI).
    pub fn catalog(&self) -> Arc<CatalogCache> {
        Arc::clone(&self.catalog)
    }

    /// The way to stop the broker: a handle for a graceful stop (the binary calls it on
    /// SIGTERM / SIGINT). Dropping the [`Application::run_until_stopped`] future instead is
    /// what a crash does: operations stop mid-step and their leases expire.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            journal: Arc::clone(&self.journal),
        }
    }

    /// Serves until the [`Stopper`] stops it, running the journal workers, the catalog
    /// refresher, the reconciliation check and the webhook dispatcher beside it. Once the
    /// server stopped (in-flight requests finished, up to the shutdown timeout) the journal and
    /// the flows hand their leases back, and the dispatcher once its deliveries in flight ended;
    /// if this future is dropped instead, its tasks are aborted and the leases expire.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let _stop = StopJournal(Arc::clone(&self.journal));
        let (store, deployer, reconcile_every) = (
            self.store.clone(),
            self.deployer.clone(),
            self.reconcile_every,
        );
        let reconciler = async move {
            match reconcile_every {
                Some(every) => reconcile::watch(store, deployer, every).await,
                None => std::future::pending().await,
            }
        };
        let catalog = Arc::clone(&self.catalog);
        let every = self.catalog_refresh;
        let refresher = async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                catalog.refresh().await;
            }
        };
        let dispatcher = Arc::clone(&self.webhooks);
        let webhooks = dispatcher.run();
        tokio::pin!(webhooks);
        let served = tokio::select! {
            result = self.server => result.context("HTTP server"),
            () = Arc::clone(&self.journal).run() => Ok(()),
            () = Arc::clone(&self.flows).run(Arc::clone(&self.journal)) => Ok(()),
            () = refresher => Ok(()),
            () = reconciler => Ok(()),
            () = &mut webhooks => Ok(()),
        };
        let leases = async {
            if let Err(e) = self.journal.hand_back().await {
                tracing::warn!(error = %e, "handing back leases failed; they expire instead");
            }
            self.flows.hand_back().await;
        };
        tokio::join!(dispatcher.stop(webhooks), leases);
        served?;
        tracing::info!("broker stopped");
        Ok(())
    }
}
