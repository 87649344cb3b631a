//! The `/spi/v1` routes: transport only. Each handler extracts the request, calls one function
//! of the offering or of [`crate::binding`], and maps the result.

use crate::binding;
use crate::error::{ApiError, ErrorKind};
use crate::offering::Offering;
use crate::request::RequestId;
use actix_web::{web, HttpRequest, HttpResponse};
use common::spi::{
    CreateBindingRequest, CreateBindingResponse, DeleteBindingRequest, DeploymentSpecRequest,
    Empty, ValidateBindingRequest, ValidateInstanceRequest,
};

/// Registers every route of the contract.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(common::spi::PREFIX)
            .route("/catalog", web::get().to(catalog))
            .route("/instances/validate", web::post().to(validate_instance))
            .route(
                "/instances/deployment-spec",
                web::post().to(deployment_spec),
            )
            .route("/bindings/validate", web::post().to(validate_binding))
            .route("/bindings", web::post().to(create_binding))
            .route("/bindings/delete", web::post().to(delete_binding)),
    );
}

/// JSON extractor settings: a malformed body is a 400 envelope naming the problem.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(|err, req| {
            ApiError::new(
                &RequestId::of(req),
                ErrorKind::BadRequest(format!("invalid request body: {err}")),
            )
            .into()
        })
}

/// Answer for paths and methods outside the contract.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        &RequestId::of(&req),
        ErrorKind::NotFound(format!("no route {} {}", req.method(), req.path())),
    ))
}

async fn catalog(offering: web::Data<Offering>) -> HttpResponse {
    HttpResponse::Ok().json(offering.catalog())
}

async fn validate_instance(
    offering: web::Data<Offering>,
    id: RequestId,
    body: web::Json<ValidateInstanceRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = offering
        .validate_instance(&body)
        .map_err(|e| ApiError::new(&id, e))?;
    Ok(HttpResponse::Ok().json(answer))
}

async fn deployment_spec(
    offering: web::Data<Offering>,
    id: RequestId,
    body: web::Json<DeploymentSpecRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = offering
        .deployment_spec(&body)
        .map_err(|e| ApiError::new(&id, e))?;
    tracing::info!(
        instance.id = %body.instance_id,
        deployment = %answer.spec.name,
        "deployment spec made"
    );
    Ok(HttpResponse::Ok().json(answer))
}

async fn validate_binding(
    offering: web::Data<Offering>,
    id: RequestId,
    body: web::Json<ValidateBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    offering
        .validate_binding(&body)
        .map_err(|e| ApiError::new(&id, e))?;
    Ok(HttpResponse::Ok().json(Empty {}))
}

async fn create_binding(
    offering: web::Data<Offering>,
    id: RequestId,
    body: web::Json<CreateBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = offering
        .plan(&body.service_id, &body.plan_id)
        .map_err(|e| ApiError::new(&id, e))?;
    offering
        .check_binding_parameters(plan, body.parameters.as_ref())
        .map_err(|e| ApiError::new(&id, e))?;
    let created = binding::create(&body.binding_id, &body.endpoints, &body.admin)
        .await
        .map_err(|e| ApiError::new(&id, e))?;
    tracing::info!(
        instance.id = %body.instance_id,
        binding.id = %body.binding_id,
        "binding role ready"
    );
    Ok(HttpResponse::Ok().json(CreateBindingResponse {
        credentials: created.credentials,
        endpoints: created.endpoints,
    }))
}

async fn delete_binding(
    id: RequestId,
    body: web::Json<DeleteBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    binding::delete(&body.binding_id, &body.endpoints, &body.admin)
        .await
        .map_err(|e| ApiError::new(&id, e))?;
    tracing::info!(
        instance.id = %body.instance_id,
        binding.id = %body.binding_id,
        "binding role dropped"
    );
    Ok(HttpResponse::Ok().json(Empty {}))
}
