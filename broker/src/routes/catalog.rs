//! `GET /v2/catalog`: the prepared catalog bytes, no serialisation per request.

use crate::service::Broker;
use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

/// `GET /v2/catalog`.
pub async fn get(broker: web::Data<Broker>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(broker.catalog_json())
}
