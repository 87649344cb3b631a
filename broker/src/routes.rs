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

/// Answer of a known path with an unsupported method.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, BrokerError> {
    Err(BrokerError::MethodNotAllowed)
}

/// Answer of an unknown path.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, BrokerError> {
    Err(BrokerError::NotFound(format!(
        "no such endpoint: {}",
        req.path().chars().take(200).collect::<String>()
    )))
}
