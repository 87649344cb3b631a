//! What every SPI's `/spi/v1` answers must say whatever its data service, checked against a
//! running SPI: the catalog it serves, and the refusals of validation and binding requests
//! (their status, error code and description). [`crate::api_tests!`] turns each check into a
//! test; [`catalog`] and [`refused_parameters`] serve a data service's own tests.

use super::TestApp;
use common::spi::CatalogFragment;
use serde_json::{json, Value};
use spi_kit::offering::SCHEMA_DRAFT;
use spi_kit::service::Catalog;

/// The instance id the requests of these checks name.
pub const INSTANCE_ID: &str = "inst-1";

/// The body of a provision of `instance_id` on plan `plan_id` of `S`, with `parameters`.
pub fn provision_body<S: Catalog>(instance_id: &str, plan_id: &str, parameters: Value) -> Value {
    json!({
        "operation": "provision",
        "instance_id": instance_id,
        "service_id": S::SERVICE.id,
        "plan_id": plan_id,
        "parameters": parameters,
    })
}

/// What a data service's test expects its catalog to name, as it writes it down.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedCatalog<'a> {
    /// Name of the SPI (`spi-postgres`).
    pub spi_name: &'a str,
    /// Name of the offering (`postgresql`).
    pub service_name: &'a str,
    /// Id and name of every plan, in catalog order.
    pub plans: &'a [(&'a str, &'a str)],
    /// Maintenance version of every plan.
    pub maintenance_version: &'a str,
}

/// Fetches the catalog of `S` from `app`, checks it offers one service, bindable and plan
/// updateable, with the id of `S` and what `expected` names, every plan's create schema being
/// draft-04; returns it for the data service's own checks.
pub async fn catalog<S: Catalog>(app: &TestApp, expected: ExpectedCatalog<'_>) -> CatalogFragment {
    let catalog = app.spi.catalog(&super::ctx()).await.unwrap();
    assert_eq!(catalog.contract_version, common::spi::CONTRACT_VERSION);
    assert_eq!(catalog.spi.name, expected.spi_name);
    assert_eq!(catalog.services.len(), 1);
    let service = &catalog.services[0];
    assert_eq!(service.id, S::SERVICE.id);
    assert_eq!(service.name, expected.service_name);
    assert!(service.bindable);
    assert_eq!(service.plan_updateable, Some(true));
    let plans: Vec<_> = service
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(plans, expected.plans);
    for plan in &service.plans {
        let maintenance = plan.maintenance_info.as_ref().unwrap();
        assert_eq!(maintenance.version, expected.maintenance_version);
        assert_eq!(create_schema(plan)["$schema"], SCHEMA_DRAFT);
    }
    catalog
}

/// The provision parameter schema of `plan`.
pub fn create_schema(plan: &common::osb::Plan) -> &Value {
    let schemas = plan.schemas.as_ref().unwrap();
    let create = schemas.service_instance.as_ref().unwrap().create.as_ref();
    create.unwrap().parameters.as_ref().unwrap()
}

/// Posts a provision of [`INSTANCE_ID`] on `plan_id` with `parameters`, checks it is a 400
/// `InvalidParameters` naming the request, and returns its description.
pub async fn refused_parameters<S: Catalog>(
    app: &TestApp,
    plan_id: &str,
    parameters: Value,
) -> String {
    let body = provision_body::<S>(INSTANCE_ID, plan_id, parameters);
    let (status, id, body) = app.post("/instances/validate", &body).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "InvalidParameters");
    assert_eq!(body["request_id"].as_str(), id.as_deref());
    body["description"].as_str().unwrap().to_string()
}

/// A plan that is not one of the offering's is a 400 `UnknownPlan` naming it.
pub async fn an_unknown_plan_is_a_400<S: Catalog>(app: &TestApp) {
    let body = provision_body::<S>(INSTANCE_ID, "no-such-plan", json!({}));
    let (status, _, body) = app.post("/instances/validate", &body).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "UnknownPlan");
    assert!(body["description"]
        .as_str()
        .unwrap()
        .contains("'no-such-plan'"));
}

/// The largest plan may not shrink to the smallest: a 400 `PlanChangeNotAllowed` naming both
/// and what the largest may change to (nothing).
pub async fn a_downgrade_is_refused_naming_the_plans_and_what_is_allowed<S: Catalog>(
    app: &TestApp,
) {
    let (smallest, largest) = (&S::PLANS[0], &S::PLANS[S::PLANS.len() - 1]);
    assert!(largest.may_change_to.is_empty(), "{largest:?}");
    let (status, _, body) = app
        .post(
            "/instances/validate",
            &json!({
                "operation": "update",
                "instance_id": INSTANCE_ID,
                "service_id": S::SERVICE.id,
                "plan_id": smallest.id,
                "previous_plan_id": largest.id,
                "parameters": {},
            }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "PlanChangeNotAllowed");
    let (from, to) = (largest.name, smallest.name);
    assert_eq!(
        body["description"],
        format!("plan change from {from} to {to} is not allowed; {from} may change to: (none)")
    );
}

/// Binding parameters are refused by name, since none exist; none at all pass.
pub async fn binding_parameters_are_refused_because_none_exist<S: Catalog>(app: &TestApp) {
    for name in ["superuser", "commands"] {
        let body = json!({
            "instance_id": INSTANCE_ID, "binding_id": "b-1",
            "service_id": S::SERVICE.id, "plan_id": S::PLANS[0].id,
            "parameters": {name: true},
        });
        let (status, _, answer) = app.post("/bindings/validate", &body).await;
        assert_eq!(status, 400);
        assert_eq!(
            answer["description"],
            format!("unknown parameter '{name}' (none are accepted)")
        );
        let mut ok = body.clone();
        ok["parameters"] = json!({});
        assert_eq!(app.post("/bindings/validate", &ok).await.0, 200);
    }
}

/// A body missing required fields is a 400 `BadRequest` naming the first one missing.
pub async fn a_malformed_body_is_a_400_envelope<S: Catalog>(app: &TestApp) {
    let (status, _, body) = app
        .post("/instances/validate", &json!({"operation": "provision"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "BadRequest");
    assert!(body["description"]
        .as_str()
        .unwrap()
        .contains("instance_id"));
}

/// Binding and unbinding on a port nothing listens on is a 503 the broker can retry, which
/// does not reveal the admin password.
pub async fn binding_to_an_unreachable_instance_is_a_503_the_broker_can_retry<S: Catalog>(
    app: &TestApp,
) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let body = json!({
        "instance_id": INSTANCE_ID, "binding_id": "b-1",
        "service_id": S::SERVICE.id, "plan_id": S::PLANS[0].id,
        "endpoints": [{"host": "127.0.0.1", "port": port}],
        "admin": {"username": "osb_admin", "password": "secret-admin-pw"},
    });
    for path in ["/bindings", "/bindings/delete"] {
        let (status, _, body) = app.post(path, &body).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(body["error"], "InstanceUnavailable", "{path}");
        assert!(!body.to_string().contains("secret-admin-pw"), "{path}");
    }
}

/// One `#[tokio::test]` per check of [`crate::spi::api`], against the SPI of data service
/// `$service` started by [`crate::spi::spawn_app`]. The calling crate needs `tokio`.
#[macro_export]
macro_rules! api_tests {
    ($service:ty) => {
        $crate::__spi_checks!(on_app api $service;
            an_unknown_plan_is_a_400,
            a_downgrade_is_refused_naming_the_plans_and_what_is_allowed,
            binding_parameters_are_refused_because_none_exist,
            a_malformed_body_is_a_400_envelope,
            binding_to_an_unreachable_instance_is_a_503_the_broker_can_retry,
        );
    };
}
