//! The generic half of an offering, without I/O: the catalog built from a [`Catalog`]'s data
//! (in its `catalog` module), its JSON schemas (compiled once), which plan may change to which,
//! and the validation of provision, update and bind requests.

mod catalog;

pub use self::catalog::{binding_schema, instance_schema};

use self::catalog::{catalog_service, ParameterSchemas};
use crate::service::Catalog;
use crate::validation::{CompiledSchema, SchemaError};
use common::osb::{JsonObject, Service};
use common::spi::{
    CatalogFragment, InstanceOperation, SpiInfo, ValidateBindingRequest, ValidateInstanceRequest,
    ValidateInstanceResponse, CONTRACT_VERSION,
};
use serde_json::Value;
use std::collections::HashMap;
use std::marker::PhantomData;

/// The `$schema` of every parameter schema.
pub const SCHEMA_DRAFT: &str = "http://json-schema.org/draft-04/schema#";
/// `providerDisplayName` of every offering.
pub const PROVIDER_DISPLAY_NAME: &str = "OSB";

/// The fixed data of an offering: ids, names and catalog texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Id of the offering; never changes.
    pub id: &'static str,
    /// Name of the offering.
    pub name: &'static str,
    /// Description for the catalog.
    pub description: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// Long description for the catalog.
    pub long_description: &'static str,
    /// Catalog tags.
    pub tags: &'static [&'static str],
    /// Product and major version (`PostgreSQL 15`): the first bullet of every plan and the
    /// maintenance description.
    pub product: &'static str,
    /// What an instance is called in schema titles (`PostgreSQL`, `key-value`).
    pub noun: &'static str,
    /// Maintenance version of every plan.
    pub maintenance_version: &'static str,
    /// Seconds after which the platform gives up polling an operation.
    pub maximum_polling_duration_s: u64,
    /// Name of the SPI: in its catalog fragment, its certificate and its log lines.
    pub spi_name: &'static str,
    /// Version of the SPI in its catalog fragment.
    pub spi_version: &'static str,
}

/// A plan: its catalog data, its allowed changes and how it sizes the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanDef<S> {
    /// Plan id; never changes.
    pub id: &'static str,
    /// Plan name.
    pub name: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// Description for the catalog.
    pub description: &'static str,
    /// Names of the plans this plan may change to.
    pub may_change_to: &'static [&'static str],
    /// How the plan sizes its server.
    pub sizing: S,
}

/// Why a request is refused; the text is meant for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A parameter is unknown, of the wrong type or outside its range or allowed values.
    #[error("{0}")]
    InvalidParameters(String),
    /// The plan change is not allowed.
    #[error("{0}")]
    PlanChangeNotAllowed(String),
    /// The service or plan is not one of this offering's.
    #[error("{0}")]
    UnknownPlan(String),
}

struct PlanSchemas {
    create: CompiledSchema,
    update: CompiledSchema,
    binding: CompiledSchema,
}

/// The offering with its schemas compiled: built once at startup, shared by every request.
pub struct Offering<S> {
    service: Service,
    schemas: HashMap<&'static str, PlanSchemas>,
    dashboard_base_url: String,
    data_service: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for Offering<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offering")
            .field("service", &self.service.name)
            .field("dashboard_base_url", &self.dashboard_base_url)
            .finish_non_exhaustive()
    }
}

impl<S: Catalog> Offering<S> {
    /// Builds the catalog and compiles every schema.
    pub fn new(dashboard_base_url: &str) -> Result<Self, SchemaError> {
        let mut schemas = HashMap::new();
        for plan in S::PLANS {
            let values = ParameterSchemas::of::<S>(plan);
            schemas.insert(
                plan.id,
                PlanSchemas {
                    create: CompiledSchema::compile(&values.create)?,
                    update: CompiledSchema::compile(&values.update)?,
                    binding: CompiledSchema::compile(&values.binding)?,
                },
            );
        }
        Ok(Self {
            service: catalog_service::<S>(),
            schemas,
            dashboard_base_url: dashboard_base_url.trim_end_matches('/').to_string(),
            data_service: PhantomData,
        })
    }

    /// The offering with `allow_context_updates` declared as `allow` (declared `true` by default).
    pub fn allowing_context_updates(mut self, allow: bool) -> Self {
        self.service.allow_context_updates = Some(allow);
        self
    }

    /// The OSB service offering.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// `GET /spi/v1/catalog`.
    pub fn catalog(&self) -> CatalogFragment {
        CatalogFragment {
            contract_version: CONTRACT_VERSION,
            spi: SpiInfo {
                name: S::SERVICE.spi_name.to_string(),
                version: S::SERVICE.spi_version.to_string(),
            },
            services: vec![self.service.clone()],
        }
    }

    /// The dashboard of an instance.
    pub fn dashboard_url(&self, instance_id: &str) -> String {
        format!(
            "{}/instances/{}",
            self.dashboard_base_url,
            common::percent_encode(instance_id)
        )
    }

    /// The plan `plan_id` of service `service_id`, or a refusal naming what exists.
    pub fn plan(
        &self,
        service_id: &str,
        plan_id: &str,
    ) -> Result<&'static PlanDef<S::Sizing>, Refusal> {
        let ServiceInfo { id, name, .. } = S::SERVICE;
        if service_id != id {
            return Err(Refusal::UnknownPlan(format!(
                "service '{service_id}' is not offered here; this provider offers {name} ({id})"
            )));
        }
        S::PLANS.iter().find(|p| p.id == plan_id).ok_or_else(|| {
            let known = S::PLANS
                .iter()
                .map(|p| format!("{} ({})", p.name, p.id))
                .collect::<Vec<_>>()
                .join(", ");
            Refusal::UnknownPlan(format!(
                "plan '{plan_id}' is not a plan of {name}; its plans are: {known}"
            ))
        })
    }

    /// Validates a provision or update: plan, plan transition (update), parameters.
    pub fn validate_instance(
        &self,
        req: &ValidateInstanceRequest,
    ) -> Result<ValidateInstanceResponse, Refusal> {
        let plan = self.plan(&req.service_id, &req.plan_id)?;
        let schemas = self.schemas_of(plan);
        let schema = match req.operation {
            InstanceOperation::Provision => &schemas.create,
            InstanceOperation::Update => {
                if let Some(previous) = req.previous_plan_id.as_deref() {
                    let from = self.plan(&req.service_id, previous)?;
                    check_transition(from, plan)?;
                }
                &schemas.update
            }
        };
        check_parameters(schema, req.parameters.as_ref())?;
        Ok(ValidateInstanceResponse {
            dashboard_url: Some(self.dashboard_url(&req.instance_id)),
        })
    }

    /// Validates the parameters of a binding.
    pub fn validate_binding(&self, req: &ValidateBindingRequest) -> Result<(), Refusal> {
        let plan = self.plan(&req.service_id, &req.plan_id)?;
        self.check_binding_parameters(plan, req.parameters.as_ref())
    }

    /// Validates binding parameters against `plan`'s binding schema.
    pub fn check_binding_parameters(
        &self,
        plan: &PlanDef<S::Sizing>,
        parameters: Option<&JsonObject>,
    ) -> Result<(), Refusal> {
        check_parameters(&self.schemas_of(plan).binding, parameters)
    }

    /// Validates a complete parameter set (what a deployment spec is made from).
    pub fn check_instance_parameters(
        &self,
        plan: &PlanDef<S::Sizing>,
        parameters: &JsonObject,
    ) -> Result<(), Refusal> {
        check_parameters(&self.schemas_of(plan).create, Some(parameters))
    }

    fn schemas_of(&self, plan: &PlanDef<S::Sizing>) -> &PlanSchemas {
        // Every plan has its schemas compiled in `new`.
        &self.schemas[plan.id]
    }
}

/// Whether `from` may change to `to` (staying on the same plan always may).
pub fn check_transition<Z>(from: &PlanDef<Z>, to: &PlanDef<Z>) -> Result<(), Refusal> {
    if from.id == to.id || from.may_change_to.contains(&to.name) {
        return Ok(());
    }
    let allowed = if from.may_change_to.is_empty() {
        "(none)".to_string()
    } else {
        from.may_change_to.join(", ")
    };
    Err(Refusal::PlanChangeNotAllowed(format!(
        "plan change from {} to {} is not allowed; {} may change to: {allowed}",
        from.name, to.name, from.name
    )))
}

fn check_parameters(
    schema: &CompiledSchema,
    parameters: Option<&JsonObject>,
) -> Result<(), Refusal> {
    let value = Value::Object(parameters.cloned().unwrap_or_default());
    schema.check(&value).map_err(Refusal::InvalidParameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{Demo, PLANS};
    use serde_json::json;

    fn offering() -> Offering<Demo> {
        Offering::new("https://dash.example/").unwrap()
    }

    #[test]
    fn the_catalog_is_built_from_the_services_data() {
        let catalog = offering().catalog();
        assert_eq!(catalog.contract_version, CONTRACT_VERSION);
        assert_eq!(catalog.spi.name, "spi-demo");
        let service = &catalog.services[0];
        assert_eq!(service.tags, ["demo", "test"]);
        let small = &service.plans[0];
        assert_eq!(
            small.metadata.as_ref().unwrap()["bullets"],
            json!(["Demo 1", "size 1"])
        );
        let maintenance = small.maintenance_info.as_ref().unwrap();
        assert_eq!(maintenance.version, "1.0.0");
        assert_eq!(maintenance.description.as_deref(), Some("Demo 1"));
        let create = small.schemas.as_ref().unwrap().service_instance.as_ref();
        let schema = create.unwrap().create.as_ref().unwrap().parameters.as_ref();
        assert_eq!(
            schema.unwrap()["title"],
            "Parameters of a new small demo instance"
        );
    }

    #[test]
    fn a_plan_change_names_the_pair_and_what_is_allowed() {
        let [small, large] = [PLANS[0], PLANS[1]];
        assert_eq!(check_transition(&small, &large), Ok(()));
        assert_eq!(check_transition(&large, &large), Ok(()));
        assert_eq!(
            check_transition(&large, &small).unwrap_err().to_string(),
            "plan change from large to small is not allowed; large may change to: (none)"
        );
    }

    #[test]
    fn another_service_is_refused_naming_the_one_offered() {
        assert_eq!(
            offering().plan("other", PLANS[0].id).unwrap_err(),
            Refusal::UnknownPlan(
                "service 'other' is not offered here; this provider offers demo (demo-service-id)"
                    .into()
            )
        );
    }

    #[test]
    fn an_update_checks_the_update_schema_and_the_transition() {
        let o = offering();
        let req = ValidateInstanceRequest {
            operation: InstanceOperation::Update,
            instance_id: "i-1".into(),
            service_id: "demo-service-id".into(),
            plan_id: PLANS[0].id.into(),
            previous_plan_id: Some(PLANS[1].id.into()),
            parameters: None,
            previous_parameters: None,
        };
        assert!(matches!(
            o.validate_instance(&req),
            Err(Refusal::PlanChangeNotAllowed(_))
        ));
        let upgrade = ValidateInstanceRequest {
            plan_id: PLANS[1].id.into(),
            previous_plan_id: Some(PLANS[0].id.into()),
            parameters: json!({"size": 11}).as_object().cloned(),
            ..req
        };
        assert_eq!(
            o.validate_instance(&upgrade).unwrap_err().to_string(),
            "parameter 'size': must be at most 10, got 11"
        );
    }

    #[test]
    fn the_service_flags_match_what_the_broker_implements() {
        let o = offering();
        let s = o.service();
        assert!(s.bindable);
        assert_eq!(s.instances_retrievable, Some(true));
        assert_eq!(s.bindings_retrievable, Some(true));
        assert_eq!(s.plan_updateable, Some(true));
        assert_eq!(s.allow_context_updates, Some(true));
        assert!(s.plans.iter().all(|p| p.plan_updateable.is_none()));
    }

    #[test]
    fn dashboard_urls_encode_odd_instance_ids() {
        assert_eq!(
            offering().dashboard_url("a b/c"),
            "https://dash.example/instances/a%20b%2Fc"
        );
    }

    #[test]
    fn the_debug_form_names_the_service_only() {
        assert_eq!(
            format!("{:?}", offering()),
            r#"Offering { service: "demo", dashboard_base_url: "https://dash.example", .. }"#
        );
    }
}
