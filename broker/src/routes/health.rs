//! `GET /healthz`: 200 while the state database answers (no authentication); `GET /metrics`:
//! instances by state and by the health of their server, in Prometheus' text format (Basic
//! auth).

use crate::error::BrokerError;
use crate::service::Broker;
use actix_web::{web, HttpResponse};

/// `GET /healthz`.
pub async fn get(broker: web::Data<Broker>) -> Result<HttpResponse, BrokerError> {
    if broker.healthy().await {
        Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok"})))
    } else {
        Err(BrokerError::Unavailable(
            "the state database does not answer".into(),
        ))
    }
}

/// `GET /metrics`.
pub async fn metrics(broker: web::Data<Broker>) -> Result<HttpResponse, BrokerError> {
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(broker.metrics().await?))
}
