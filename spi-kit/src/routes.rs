//! The `/spi/v1` routes: transport only. Each handler extracts the request, calls one function
//! of the [`Offering`] or of the data service's [`crate::service::Bindings`], and maps the
//! result.

use crate::error::{ApiError, ErrorKind};
use crate::offering::Offering;
use crate::request::RequestId;
use crate::service::DataService;
use actix_web::{web, HttpRequest, HttpResponse};
use common::spi::{
    CreateBindingRequest, CreateBindingResponse, DeleteBindingRequest, DeploymentSpecRequest,
    Empty, ValidateBindingRequest, ValidateInstanceRequest,
};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Registers every route of the contract; handlers find the `Offering<S>` in the app data.
pub fn configure<S: DataService>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(common::spi::PREFIX)
            .route("/catalog", web::get().to(catalog::<S>))
            .route(
                "/instances/validate",
                web::post().to(validate_instance::<S>),
            )
            .route(
                "/instances/deployment-spec",
                web::post().to(deployment_spec::<S>),
            )
            .route("/bindings/validate", web::post().to(validate_binding::<S>))
            .route("/bindings", web::post().to(create_binding::<S>))
            .route("/bindings/delete", web::post().to(delete_binding::<S>)),
    );
}

/// JSON extractor settings: a malformed body is a 400 envelope naming the problem.
pub fn json_config() -> web::JsonConfig {
    service_edge::error::json_config::<ErrorKind>(MAX_BODY_BYTES, "invalid request body")
}

/// Answer for paths and methods outside the contract.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    service_edge::error::not_found(req).await
}

async fn catalog<S: DataService>(offering: web::Data<Offering<S>>) -> HttpResponse {
    HttpResponse::Ok().json(offering.catalog())
}

async fn validate_instance<S: DataService>(
    offering: web::Data<Offering<S>>,
    id: RequestId,
    body: web::Json<ValidateInstanceRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = offering
        .validate_instance(&body)
        .map_err(|e| ApiError::new(&id, e))?;
    Ok(HttpResponse::Ok().json(answer))
}

async fn deployment_spec<S: DataService>(
    offering: web::Data<Offering<S>>,
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

async fn validate_binding<S: DataService>(
    offering: web::Data<Offering<S>>,
    id: RequestId,
    body: web::Json<ValidateBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    offering
        .validate_binding(&body)
        .map_err(|e| ApiError::new(&id, e))?;
    Ok(HttpResponse::Ok().json(Empty {}))
}

async fn create_binding<S: DataService>(
    offering: web::Data<Offering<S>>,
    id: RequestId,
    body: web::Json<CreateBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    let plan = offering
        .plan(&body.service_id, &body.plan_id)
        .map_err(|e| ApiError::new(&id, e))?;
    offering
        .check_binding_parameters(plan, body.parameters.as_ref())
        .map_err(|e| ApiError::new(&id, e))?;
    let created = S::create_binding(&body.binding_id, &body.endpoints, &body.admin)
        .await
        .map_err(|e| ApiError::new(&id, e))?;
    tracing::info!(
        instance.id = %body.instance_id,
        binding.id = %body.binding_id,
        "binding {} ready",
        S::BINDING_KIND
    );
    Ok(HttpResponse::Ok().json(CreateBindingResponse {
        credentials: created.credentials,
        endpoints: created.endpoints,
    }))
}

async fn delete_binding<S: DataService>(
    id: RequestId,
    body: web::Json<DeleteBindingRequest>,
) -> Result<HttpResponse, ApiError> {
    S::delete_binding(&body.binding_id, &body.endpoints, &body.admin)
        .await
        .map_err(|e| ApiError::new(&id, e))?;
    tracing::info!(
        instance.id = %body.instance_id,
        binding.id = %body.binding_id,
        "binding {} dropped",
        S::BINDING_KIND
    );
    Ok(HttpResponse::Ok().json(Empty {}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{Demo, PLANS};
    use crate::request::request_context;
    use actix_web::middleware::from_fn;
    use actix_web::{test, App};
    use serde_json::{json, Value};

    /// The app as `startup` builds it, without TLS.
    macro_rules! demo_app {
        () => {
            test::init_service(
                App::new()
                    .wrap(from_fn(request_context))
                    .app_data(web::Data::new(
                        Offering::<Demo>::new("https://dash.example").unwrap(),
                    ))
                    .app_data(json_config())
                    .configure(configure::<Demo>)
                    .default_service(web::to(not_found)),
            )
            .await
        };
    }

    #[actix_web::test]
    async fn a_malformed_body_is_a_400_envelope_naming_the_problem() {
        let app = demo_app!();
        let req = test::TestRequest::post()
            .uri("/spi/v1/instances/validate")
            .insert_header((common::REQUEST_ID_HEADER, "r-1"))
            .set_json(json!({"operation": "provision"}))
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.headers().get(common::REQUEST_ID_HEADER).unwrap(),
            "r-1"
        );
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["error"], "BadRequest");
        assert_eq!(body["request_id"], "r-1");
        let description = body["description"].as_str().unwrap();
        assert!(
            description.starts_with("invalid request body: ")
                && description.contains("instance_id"),
            "{description}"
        );
    }

    #[actix_web::test]
    async fn an_unknown_route_is_a_404_envelope_naming_method_and_path() {
        let app = demo_app!();
        let req = test::TestRequest::delete()
            .uri("/spi/v1/catalog")
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 404);
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["error"], "NotFound");
        assert_eq!(body["description"], "no route DELETE /spi/v1/catalog");
    }

    #[actix_web::test]
    async fn binding_goes_through_the_data_service_and_unreachable_is_a_503() {
        let app = demo_app!();
        let bind = |endpoints: Value| {
            test::TestRequest::post()
                .uri("/spi/v1/bindings")
                .set_json(json!({
                    "instance_id": "i", "binding_id": "b-1",
                    "service_id": "demo-service-id", "plan_id": PLANS[0].id,
                    "endpoints": endpoints,
                    "admin": {"username": "a", "password": "secret-admin-pw"},
                }))
                .to_request()
        };
        let endpoint = json!([{"host": "::1", "port": 7000}]);
        let resp = test::call_service(&app, bind(endpoint)).await;
        assert_eq!(resp.status(), 200);
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["credentials"]["username"], "b-1");
        assert_eq!(body["endpoints"][0]["ports"], json!(["7000"]));
        let resp = test::call_service(&app, bind(json!([]))).await;
        assert_eq!(resp.status(), 503);
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["error"], "InstanceUnavailable");
        assert!(!body.to_string().contains("secret-admin-pw"));
    }
}
