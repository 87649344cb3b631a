//! Server start: loads the mTLS server config (the service's certificate is re-read when its
//! files are renewed, see [`common::tls`]), binds the listener, and serves an app in which
//! every request goes through [`request_context`] and then [`authz::authorize`], with
//! [`authz::HEALTH_PATH`] open to any certificate of the internal CA. The embedding program
//! stops the server through its handle ([`run_until_signal`] in a binary's `main`, `osbctl up`
//! with the rest of its stack, tests on drop): actix's own signal handling is off.

use crate::authz::{self, AllowedClients};
use crate::request::{request_context, ServiceName};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use common::tls::TlsFiles;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;

/// A bound listener with its TLS config, not serving yet.
pub struct Listener {
    listener: TcpListener,
    tls: rustls::ServerConfig,
    allowed: AllowedClients,
    port: u16,
}

impl Listener {
    /// Loads the certificate, key and CA of `tls`, then binds `listen` (port 0: the kernel's
    /// choice).
    pub fn bind(listen: &str, tls: &TlsFiles) -> anyhow::Result<Self> {
        let config = tls
            .server_config()
            .context("loading the TLS certificate, key and CA")?;
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            tls: config,
            allowed: AllowedClients::new(tls.allowed_clients.clone()),
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves the routes `configure` registers, for `service`, on `workers` threads.
    pub fn serve<F>(
        self,
        service: &'static str,
        workers: usize,
        configure: F,
    ) -> anyhow::Result<EdgeServer>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let Self {
            listener,
            tls,
            allowed,
            port,
        } = self;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(ServiceName(service))
                .app_data(allowed.clone())
                .route(authz::HEALTH_PATH, web::get().to(authz::health))
                .wrap(from_fn(authz::authorize))
                .wrap(from_fn(request_context))
                .configure(configure.clone())
        })
        .on_connect(authz::capture_peer_identity)
        .workers(workers)
        .disable_signals()
        .listen_rustls_0_23(listener, tls)
        .context("starting the TLS listener")?
        .run();
        tracing::info!(port, "{service} listening (mTLS)");
        Ok(EdgeServer { port, server })
    }
}

/// A running server.
pub struct EdgeServer {
    port: u16,
    server: Server,
}

impl EdgeServer {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`EdgeServer::server_handle`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("server failed")
    }
}

/// The settings file of a service binary: its first argument, else the environment variable
/// `config_env`; `None` for none (defaults and environment variables only).
pub fn config_file(config_env: &str) -> Option<PathBuf> {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os(config_env))
        .map(PathBuf::from)
}

/// Runs `serving` (a server's `run_until_stopped`) until it ends, stopping it gracefully
/// through `handle` at the first Ctrl-C or SIGTERM.
pub async fn run_until_signal(
    handle: ServerHandle,
    serving: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::spawn(async move {
        common::shutdown_signal().await;
        handle.stop(true).await;
    });
    serving.await
}
