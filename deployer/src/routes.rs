//! The `/deployer/v1` routes: extract, call the task runner, map the answer. No logic here.

use crate::error::{ApiError, ErrorKind};
use crate::service::Deployer;
use actix_web::{web, HttpResponse};
use common::deployer::{DeploymentSpec, PREFIX};
use service_edge::error::{json_config, not_found, query_config};
use service_edge::RequestId;

/// Largest accepted request body.
const MAX_BODY: usize = 256 * 1024;

/// Registers the deployer API on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config::<ErrorKind>(
        MAX_BODY,
        "invalid deployment spec",
    ))
    .app_data(query_config::<ErrorKind>())
    .service(
        web::scope(PREFIX)
            .route("/deployments", web::get().to(list_deployments))
            .route("/deployments/{name}", web::put().to(put_deployment))
            .route("/deployments/{name}", web::delete().to(delete_deployment))
            .route("/deployments/{name}", web::get().to(get_deployment))
            .route("/tasks/{id}", web::get().to(get_task)),
    )
    .default_service(web::to(not_found::<ErrorKind>));
}

async fn put_deployment(
    deployer: web::Data<Deployer>,
    name: web::Path<String>,
    request_id: RequestId,
    spec: web::Json<DeploymentSpec>,
) -> Result<HttpResponse, ApiError> {
    let task = deployer
        .into_inner()
        .apply(&name, spec.into_inner())
        .map_err(|e| ApiError::new(&request_id, e))?;
    Ok(HttpResponse::Accepted().json(task))
}

/// The query of a DELETE: the instance the caller deletes for.
#[derive(serde::Deserialize)]
struct DeleteQuery {
    instance_id: Option<String>,
}

async fn delete_deployment(
    deployer: web::Data<Deployer>,
    name: web::Path<String>,
    query: web::Query<DeleteQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let task = deployer
        .into_inner()
        .delete_owned(&name, query.instance_id.as_deref())
        .map_err(|e| ApiError::new(&request_id, e))?;
    Ok(HttpResponse::Accepted().json(task))
}

async fn get_deployment(
    deployer: web::Data<Deployer>,
    name: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    match deployer.deployment(&name).await {
        Some(deployment) => Ok(HttpResponse::Ok().json(deployment)),
        None => Err(ApiError::new(
            &request_id,
            ErrorKind::DeploymentNotFound(name.into_inner()),
        )),
    }
}

async fn list_deployments(deployer: web::Data<Deployer>) -> HttpResponse {
    HttpResponse::Ok().json(deployer.deployments().await)
}

async fn get_task(
    deployer: web::Data<Deployer>,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    match deployer.task(&id) {
        Some(task) => Ok(HttpResponse::Ok().json(task)),
        None => Err(ApiError::new(
            &request_id,
            ErrorKind::TaskNotFound(id.into_inner()),
        )),
    }
}
