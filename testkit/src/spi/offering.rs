//! What every offering's data must satisfy, checked on a data service's real catalog, and the
//! request builders its own offering tests use. [`crate::offering_tests!`] turns each check
//! into a test.

use common::osb::Service;
use common::spi::{
    InstanceOperation, ValidateBindingRequest, ValidateInstanceRequest, ValidateInstanceResponse,
};
use serde_json::Value;
use spi_kit::offering::{Offering, Refusal, SCHEMA_DRAFT};
use spi_kit::Catalog;
use std::collections::HashSet;

/// The offering of `S` with the dashboards under `https://dash.example/`.
pub fn offering<S: Catalog>() -> Offering<S> {
    Offering::new("https://dash.example/").unwrap()
}

/// A provision of instance `i-1` on `plan_id` with `parameters` (a JSON object).
pub fn provision<S: Catalog>(plan_id: &str, parameters: Value) -> ValidateInstanceRequest {
    ValidateInstanceRequest {
        operation: InstanceOperation::Provision,
        instance_id: "i-1".into(),
        service_id: S::SERVICE.id.into(),
        plan_id: plan_id.into(),
        previous_plan_id: None,
        parameters: parameters.as_object().cloned(),
        previous_parameters: None,
    }
}

/// An update of instance `i-1` from plan `from` to plan `to` with `parameters`.
pub fn update<S: Catalog>(from: &str, to: &str, parameters: Value) -> ValidateInstanceRequest {
    ValidateInstanceRequest {
        operation: InstanceOperation::Update,
        previous_plan_id: Some(from.into()),
        ..provision::<S>(to, parameters)
    }
}

/// Validates a provision of instance `i-1` on `plan_id` with `parameters` against [`offering`].
pub fn validate_provision<S: Catalog>(
    plan_id: &str,
    parameters: Value,
) -> Result<ValidateInstanceResponse, Refusal> {
    offering::<S>().validate_instance(&provision::<S>(plan_id, parameters))
}

/// Validates an update of instance `i-1` from plan `from` to plan `to` with `parameters`
/// against [`offering`].
pub fn validate_update<S: Catalog>(
    from: &str,
    to: &str,
    parameters: Value,
) -> Result<ValidateInstanceResponse, Refusal> {
    offering::<S>().validate_instance(&update::<S>(from, to, parameters))
}

/// Every parameter schema of `service`: create, update and binding of each plan.
pub fn all_schemas(service: &Service) -> Vec<Value> {
    let mut out = vec![];
    for p in &service.plans {
        let s = p.schemas.as_ref().unwrap();
        let si = s.service_instance.as_ref().unwrap();
        out.push(si.create.clone().unwrap().parameters.unwrap());
        out.push(si.update.clone().unwrap().parameters.unwrap());
        let sb = s.service_binding.as_ref().unwrap();
        out.push(sb.create.clone().unwrap().parameters.unwrap());
    }
    out
}

/// The service id and the plan ids are all different.
pub fn ids_are_unique_across_the_service_and_its_plans<S: Catalog>() {
    let service = offering::<S>().service().clone();
    let mut ids = HashSet::new();
    assert!(ids.insert(service.id.clone()));
    for p in &service.plans {
        assert!(ids.insert(p.id.clone()), "duplicate id {}", p.id);
    }
}

/// Plan names are unique, there are at least two, and they (and the service name) are
/// lowercase `[a-z0-9-]`, easy to type in a CLI.
pub fn plan_names_are_unique_and_cli_friendly<S: Catalog>() {
    let service = offering::<S>().service().clone();
    let names: HashSet<_> = service.plans.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names.len(), service.plans.len());
    assert!(service.plans.len() >= 2);
    for name in names.iter().chain(std::iter::once(&service.name)) {
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}

/// Every schema is draft-04, refuses unknown properties, has no `$ref` and is under 64 KiB.
pub fn every_schema_declares_draft_04_forbids_extra_properties_and_is_small<S: Catalog>() {
    for schema in all_schemas(offering::<S>().service()) {
        assert_eq!(schema["$schema"], SCHEMA_DRAFT);
        assert_eq!(schema["additionalProperties"], false);
        assert!(!schema.to_string().contains("$ref"));
        assert!(serde_json::to_vec(&schema).unwrap().len() < 64 * 1024);
    }
}

/// Every plan's maintenance version is `major.minor.patch` without leading zeros, and every
/// plan carries the service's maximum polling duration.
pub fn maintenance_versions_are_semver<S: Catalog>() {
    for p in &offering::<S>().service().plans {
        let v = &p.maintenance_info.as_ref().unwrap().version;
        let parts: Vec<_> = v.split('.').collect();
        assert_eq!(parts.len(), 3, "{v}");
        for part in parts {
            assert!(
                !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()),
                "{v}"
            );
            assert!(part == "0" || !part.starts_with('0'), "{v}");
        }
        assert_eq!(
            p.maximum_polling_duration,
            Some(S::SERVICE.maximum_polling_duration_s)
        );
    }
}

/// An unknown plan is refused with a message naming it and every plan there is.
pub fn an_unknown_plan_is_refused_listing_the_plans<S: Catalog>() {
    let err = offering::<S>()
        .validate_instance(&provision::<S>("nope", serde_json::json!({})))
        .unwrap_err();
    let Refusal::UnknownPlan(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("'nope'"), "{msg}");
    for plan in S::PLANS {
        assert!(msg.contains(plan.name), "{msg}");
    }
}

/// A provision without parameters is valid on every plan and gets the instance's dashboard.
pub fn a_valid_provision_gets_the_instance_dashboard<S: Catalog>() {
    for plan in S::PLANS {
        let ok = validate_provision::<S>(plan.id, serde_json::json!({})).unwrap();
        assert_eq!(
            ok.dashboard_url.as_deref(),
            Some("https://dash.example/instances/i-1")
        );
    }
}

/// A plan may change to itself and to the plans it lists, and to no other: the refusal names
/// both plans and what is allowed.
pub fn plans_change_only_to_the_plans_they_list<S: Catalog>() {
    for from in S::PLANS {
        for to in S::PLANS {
            let result = validate_update::<S>(from.id, to.id, serde_json::json!({}));
            if from.id == to.id || from.may_change_to.contains(&to.name) {
                result.unwrap();
                continue;
            }
            let allowed = match from.may_change_to {
                [] => "(none)".to_string(),
                names => names.join(", "),
            };
            let (f, t) = (from.name, to.name);
            assert_eq!(
                result.unwrap_err(),
                Refusal::PlanChangeNotAllowed(format!(
                    "plan change from {f} to {t} is not allowed; {f} may change to: {allowed}"
                ))
            );
        }
    }
}

/// A binding accepts no parameters: none at all passes, any one is refused by name.
pub fn bindings_take_no_parameters<S: Catalog>() {
    let o = offering::<S>();
    let req = |p: Value| ValidateBindingRequest {
        instance_id: "i".into(),
        binding_id: "b".into(),
        service_id: S::SERVICE.id.into(),
        plan_id: S::PLANS[0].id.into(),
        parameters: p.as_object().cloned(),
    };
    o.validate_binding(&req(serde_json::json!({}))).unwrap();
    assert_eq!(
        o.validate_binding(&req(serde_json::json!({"role": "admin"})))
            .unwrap_err()
            .to_string(),
        "unknown parameter 'role' (none are accepted)"
    );
}

/// One `#[test]` per check of [`crate::spi::offering`], on the catalog of data service
/// `$service`.
#[macro_export]
macro_rules! offering_tests {
    ($service:ty) => {
        $crate::__spi_checks!(plain offering $service;
            ids_are_unique_across_the_service_and_its_plans,
            plan_names_are_unique_and_cli_friendly,
            every_schema_declares_draft_04_forbids_extra_properties_and_is_small,
            maintenance_versions_are_semver,
            an_unknown_plan_is_refused_listing_the_plans,
            a_valid_provision_gets_the_instance_dashboard,
            plans_change_only_to_the_plans_they_list,
            bindings_take_no_parameters,
        );
    };
}
