//! Per-request context: the request id (taken from `X-Broker-API-Request-Identity` when it
//! follows the id rules of [`common::ids`], the broker's, else made up), echoed on the response
//! and carried by the request's log span with the caller's originating identity and the name
//! of the service serving it.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use common::{ORIGINATING_IDENTITY_HEADER, REQUEST_ID_HEADER};
use std::future::{ready, Ready};
use std::time::Instant;
use tracing::Instrument;

/// Longest request id accepted from a caller (the one limit of every service, the broker's
/// included); longer ones are replaced by a fresh one.
pub const MAX_REQUEST_ID_LEN: usize = common::ids::MAX_ID_LEN;

/// The name of the service serving the requests (`spi-postgres`, `deployer`, …), in the app
/// data: every request's log span carries it, so the services of one process (`osbctl up`)
/// are told apart in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceName(pub &'static str);

/// The id of the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id stored on `req` by [`request_context`], or a fresh one.
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(common::new_request_id()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
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

/// Middleware: assigns the request id, runs the request inside a span carrying it, echoes it on
/// the response and logs one line per request (method, path, status, duration; never bodies).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| common::ids::is_valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(common::new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let service = req.app_data::<ServiceName>().map_or("", |s| s.0);
    let span = tracing::info_span!(
        "request",
        service = %service,
        request.id = %id,
        http.method = %req.method(),
        http.path = %req.path(),
        originating_identity = originating_identity(&req)
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            HeaderName::from_static("x-broker-api-request-identity"),
            value,
        );
    }
    span.in_scope(|| {
        tracing::info!(
            http.status = res.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
    });
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};

    async fn echo(id: RequestId) -> HttpResponse {
        HttpResponse::Ok().body(id.0)
    }

    async fn call(header: Option<&str>) -> (String, String) {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_context))
                .route("/", web::get().to(echo)),
        )
        .await;
        let mut req = test::TestRequest::get().uri("/");
        if let Some(value) = header {
            req = req.insert_header((REQUEST_ID_HEADER, value));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        let echoed = resp.headers().get(REQUEST_ID_HEADER).unwrap();
        let echoed = echoed.to_str().unwrap().to_string();
        let seen = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        (echoed, seen)
    }

    #[actix_web::test]
    async fn the_callers_id_is_used_and_echoed() {
        assert_eq!(
            call(Some(" trace-me-42 ")).await,
            ("trace-me-42".to_string(), "trace-me-42".to_string())
        );
    }

    #[actix_web::test]
    async fn a_missing_empty_or_overlong_id_is_replaced_by_a_fresh_one() {
        let overlong = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        for header in [None, Some(""), Some(overlong.as_str())] {
            let (echoed, seen) = call(header).await;
            assert_eq!(echoed, seen);
            assert_eq!(echoed.len(), 36, "{header:?} → {echoed}");
        }
        let longest = "y".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(call(Some(&longest)).await.0, longest);
    }

    #[actix_web::test]
    async fn an_id_the_broker_would_refuse_is_replaced_too() {
        let (echoed, _) = call(Some("trace\tme")).await;
        assert_eq!(echoed.len(), 36, "{echoed}");
    }
}
