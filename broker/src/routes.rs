//! The HTTP edge, transport only: the edge middleware (request id, Basic auth, version header),
//! extracting paths, queries and bodies, calling one use case, and mapping its result.

pub mod bindings;
pub mod body;
pub mod catalog;
pub mod connections;
pub mod edge;
pub mod health;
pub mod instances;

use crate::error::BrokerError;
use actix_web::HttpRequest;

/// The answer of a known path to a method it does not serve: 405 with an OSB error body and
/// `Allow: <allow>` (RFC 9110: a 405 "MUST generate an Allow header field").
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::to(move || async move {
        let mut response = actix_web::ResponseError::error_response(&BrokerError::MethodNotAllowed);
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    })
}

/// Answer of an unknown path.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, BrokerError> {
    Err(BrokerError::NotFound(format!(
        "no such endpoint: {}",
        req.path().chars().take(200).collect::<String>()
    )))
}
