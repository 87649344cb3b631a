//! Who may call an internal service. The TLS handshake already refuses any certificate the
//! internal CA did not issue; this middleware then authorizes the caller by the identity in
//! its certificate (the subject common name): only the names in
//! [`common::tls::TlsFiles::allowed_clients`] (the broker by default) get past it, every other
//! holder of a CA-issued certificate (another service, a stray or stolen certificate) gets
//! 403 with the error envelope. `GET /healthz` answers any CA-issued certificate, with nothing
//! but `{"status":"ok"}`, for container health checks that hold only their own certificate.
//!
//! Wiring (done by [`crate::server::start`]): `HttpServer::on_connect(`[`capture_peer_identity`]`)`
//! records the identity of each connection, `App::app_data(`[`AllowedClients`]`)` names who may
//! call, and `App::wrap(from_fn(`[`authorize`]`))` enforces it, inside
//! [`crate::request::request_context`]; [`health`] serves [`HEALTH_PATH`].

use crate::request::RequestId;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use common::envelope::ErrorEnvelope;
use std::any::Any;
use std::sync::Arc;

/// The path every CA-issued certificate may GET, whatever its identity.
pub const HEALTH_PATH: &str = "/healthz";

/// The identity (certificate common name) of the client of one connection; `None` when its
/// certificate has no readable common name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub Option<String>);

/// The identities allowed to call the service.
#[derive(Debug, Clone)]
pub struct AllowedClients(Arc<Vec<String>>);

impl AllowedClients {
    /// Allows exactly `names`.
    pub fn new(names: Vec<String>) -> Self {
        Self(Arc::new(names))
    }

    /// Whether `identity` may call.
    pub fn allows(&self, identity: &str) -> bool {
        self.0.iter().any(|n| n == identity)
    }
}

/// For `HttpServer::on_connect`: records the peer certificate's identity of a TLS connection.
pub fn capture_peer_identity(connection: &dyn Any, extensions: &mut Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    use actix_web::rt::net::TcpStream;
    if let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>() {
        let (_, session) = tls.get_ref();
        let identity = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| common::tls::identity::common_name(leaf));
        extensions.insert(PeerIdentity(identity));
    }
}

/// `GET /healthz`: `{"status":"ok"}`.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Middleware: lets the request through when its connection's identity is allowed (or it is
/// the health check), else answers 403 with the error envelope. Without [`AllowedClients`] in
/// the app data nobody is allowed.
pub async fn authorize<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let identity = req.conn_data::<PeerIdentity>().and_then(|p| p.0.clone());
    let allowed = req
        .app_data::<AllowedClients>()
        .is_some_and(|a| identity.as_deref().is_some_and(|i| a.allows(i)));
    let is_health = req.path() == HEALTH_PATH && req.method() == actix_web::http::Method::GET;
    if allowed || is_health {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(common::new_request_id, |id| id.0.clone());
    tracing::warn!(
        client.identity = ?identity,
        http.method = %req.method(),
        http.path = ?req.path(),
        request.id = %request_id,
        "refused: the client's certificate identity is not allowed to call this service"
    );
    let described = identity.as_deref().map_or_else(
        || "a certificate without a common name".to_string(),
        |i| format!("identity {i:?}"),
    );
    let envelope = ErrorEnvelope {
        request_id: Some(request_id),
        ..ErrorEnvelope::new(
            "Forbidden",
            format!("the client certificate's {described} is not allowed to call this service"),
        )
    };
    // The request id header is put on the answer by [`crate::request::request_context`].
    let response = HttpResponse::Forbidden().json(envelope);
    Ok(req.into_response(response).map_into_right_body())
}
