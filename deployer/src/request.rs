//! Request identity: every request gets the id from its `X-Broker-API-Request-Identity` header
//! (or a fresh one), logs under a span carrying it, and echoes it on the response.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use common::{ORIGINATING_IDENTITY_HEADER, REQUEST_ID_HEADER};
use std::fmt;
use std::time::Instant;
use tracing::Instrument;

/// Longest request id taken over from a caller (the one limit of every service).
const MAX_REQUEST_ID_LEN: usize = common::ids::MAX_ID_LEN;

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id of `req` (set by [`track`]), or a fresh one outside it.
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| Self(common::new_request_id()))
    }

    /// The id itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for RequestId {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// The caller's `X-Broker-API-Originating-Identity` (platform and base64 user), for the log:
/// who asked for this change. Empty when absent.
fn originating_identity(req: &ServiceRequest) -> &str {
    req.headers()
        .get(ORIGINATING_IDENTITY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Middleware: assigns the request id, serves the request in a span carrying it, logs the
/// outcome and puts the id on the response.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN)
        .map(str::to_string)
        .unwrap_or_else(common::new_request_id);
    let header = HeaderValue::from_str(&id).ok();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %req.method(),
        http.path = %req.path(),
        originating_identity = originating_identity(&req)
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(
            http.status = res.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
    });
    if let Some(value) = header {
        res.headers_mut().insert(
            HeaderName::from_static("x-broker-api-request-identity"),
            value,
        );
    }
    Ok(res)
}
