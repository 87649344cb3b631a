//! `GET /healthz`: 200 while the state database answers (no authentication).

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
