//! The `postgresql` offering as data and rules, without I/O: the service and its plans with
//! fixed ids, their JSON schemas (compiled once), which plan may change to which, and the
//! validation of provision, update and bind requests.

use crate::validation::{CompiledSchema, SchemaError};
use common::osb::{
    InputParametersSchema, JsonObject, MaintenanceInfo, Plan, Schemas, Service,
    ServiceBindingSchema, ServiceInstanceSchema,
};
use common::spi::{
    CatalogFragment, InstanceOperation, SpiInfo, ValidateBindingRequest, ValidateInstanceRequest,
    ValidateInstanceResponse, CONTRACT_VERSION,
};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Id of the `postgresql` offering; never changes.
pub const SERVICE_ID: &str = "57412afa-663c-4ce1-9c75-0820caad8441";
/// Name of the offering.
pub const SERVICE_NAME: &str = "postgresql";
/// Id of the `small` plan; never changes.
pub const PLAN_SMALL_ID: &str = "0f272df9-a839-4537-9e84-b71ed11d9bc9";
/// Id of the `medium` plan; never changes.
pub const PLAN_MEDIUM_ID: &str = "c10ea867-b1ff-496d-bf96-ec99182dab31";
/// Maintenance version of every plan (PostgreSQL 15, first release of this offering).
pub const MAINTENANCE_VERSION: &str = "15.0.0";
/// Seconds after which the platform gives up polling an operation.
pub const MAXIMUM_POLLING_DURATION_S: u64 = 1800;
/// Name of this SPI in its catalog fragment.
pub const SPI_NAME: &str = "spi-postgres";
/// The `$schema` of every parameter schema.
pub const SCHEMA_DRAFT: &str = "http://json-schema.org/draft-04/schema#";

/// Parameter overriding the plan's `max_connections`.
pub const PARAM_MAX_CONNECTIONS: &str = "max_connections";
/// Parameter setting `work_mem` in megabytes.
pub const PARAM_WORK_MEM_MB: &str = "work_mem_mb";
/// Parameter setting `statement_timeout` in milliseconds.
pub const PARAM_STATEMENT_TIMEOUT_MS: &str = "statement_timeout_ms";

/// A plan's server sizing and its allowed changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanDef {
    /// Plan id.
    pub id: &'static str,
    /// Plan name.
    pub name: &'static str,
    /// Human-readable name.
    pub display_name: &'static str,
    /// Description for the catalog.
    pub description: &'static str,
    /// `max_connections` of the server.
    pub max_connections: u32,
    /// `shared_buffers` in megabytes.
    pub shared_buffers_mb: u32,
    /// Default `work_mem` in megabytes.
    pub work_mem_mb: u32,
    /// Names of the plans this plan may change to.
    pub may_change_to: &'static [&'static str],
}

/// Every plan of the offering, smallest first.
pub const PLANS: &[PlanDef] = &[
    PlanDef {
        id: PLAN_SMALL_ID,
        name: "small",
        display_name: "Small",
        description: "PostgreSQL 15, 50 connections, 32 MB shared buffers",
        max_connections: 50,
        shared_buffers_mb: 32,
        work_mem_mb: 4,
        may_change_to: &["medium"],
    },
    PlanDef {
        id: PLAN_MEDIUM_ID,
        name: "medium",
        display_name: "Medium",
        description: "PostgreSQL 15, 200 connections, 128 MB shared buffers",
        max_connections: 200,
        shared_buffers_mb: 128,
        work_mem_mb: 8,
        may_change_to: &[],
    },
];

/// Why a request is refused; the text is meant for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A parameter is unknown, of the wrong type or outside its range.
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
pub struct Offering {
    service: Service,
    schemas: HashMap<&'static str, PlanSchemas>,
    dashboard_base_url: String,
}

impl std::fmt::Debug for Offering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offering")
            .field("service", &self.service.name)
            .field("dashboard_base_url", &self.dashboard_base_url)
            .finish_non_exhaustive()
    }
}

impl Offering {
    /// Builds the catalog and compiles every schema.
    pub fn new(dashboard_base_url: &str) -> Result<Self, SchemaError> {
        let mut schemas = HashMap::new();
        for plan in PLANS {
            schemas.insert(
                plan.id,
                PlanSchemas {
                    create: CompiledSchema::compile(&instance_schema(
                        plan,
                        InstanceOperation::Provision,
                    ))?,
                    update: CompiledSchema::compile(&instance_schema(
                        plan,
                        InstanceOperation::Update,
                    ))?,
                    binding: CompiledSchema::compile(&binding_schema())?,
                },
            );
        }
        Ok(Self {
            service: service(),
            schemas,
            dashboard_base_url: dashboard_base_url.trim_end_matches('/').to_string(),
        })
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
                name: SPI_NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            services: vec![self.service.clone()],
        }
    }

    /// The dashboard of an instance.
    pub fn dashboard_url(&self, instance_id: &str) -> String {
        format!(
            "{}/instances/{}",
            self.dashboard_base_url,
            percent_encode_segment(instance_id)
        )
    }

    /// The plan `plan_id` of service `service_id`, or a refusal naming what exists.
    pub fn plan(&self, service_id: &str, plan_id: &str) -> Result<&'static PlanDef, Refusal> {
        if service_id != SERVICE_ID {
            return Err(Refusal::UnknownPlan(format!(
                "service '{service_id}' is not offered here; this provider offers {SERVICE_NAME} ({SERVICE_ID})"
            )));
        }
        plan_by_id(plan_id).ok_or_else(|| {
            let known = PLANS
                .iter()
                .map(|p| format!("{} ({})", p.name, p.id))
                .collect::<Vec<_>>()
                .join(", ");
            Refusal::UnknownPlan(format!(
                "plan '{plan_id}' is not a plan of {SERVICE_NAME}; its plans are: {known}"
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
        plan: &PlanDef,
        parameters: Option<&JsonObject>,
    ) -> Result<(), Refusal> {
        check_parameters(&self.schemas_of(plan).binding, parameters)
    }

    /// Validates a complete parameter set (what a deployment spec is made from).
    pub fn check_instance_parameters(
        &self,
        plan: &PlanDef,
        parameters: &JsonObject,
    ) -> Result<(), Refusal> {
        check_parameters(&self.schemas_of(plan).create, Some(parameters))
    }

    fn schemas_of(&self, plan: &PlanDef) -> &PlanSchemas {
        // Every PlanDef has its schemas compiled in `new`.
        &self.schemas[plan.id]
    }
}

/// The plan with id `plan_id`.
pub fn plan_by_id(plan_id: &str) -> Option<&'static PlanDef> {
    PLANS.iter().find(|p| p.id == plan_id)
}

/// Whether `from` may change to `to` (staying on the same plan always may).
pub fn check_transition(from: &PlanDef, to: &PlanDef) -> Result<(), Refusal> {
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

/// The schema of instance parameters for `plan` (create and update accept the same ones).
pub fn instance_schema(plan: &PlanDef, operation: InstanceOperation) -> Value {
    let verb = match operation {
        InstanceOperation::Provision => "Parameters of a new",
        InstanceOperation::Update => "Parameters to change on a",
    };
    json!({
        "$schema": SCHEMA_DRAFT,
        "title": format!("{verb} {} PostgreSQL instance", plan.name),
        "type": "object",
        "additionalProperties": false,
        "properties": {
            PARAM_MAX_CONNECTIONS: {
                "description": format!("Maximum number of concurrent connections (plan default {}).", plan.max_connections),
                "type": "integer",
                "minimum": 10,
                "maximum": 1000
            },
            PARAM_WORK_MEM_MB: {
                "description": format!("Memory per sort or hash operation, in MB (plan default {}).", plan.work_mem_mb),
                "type": "integer",
                "minimum": 1,
                "maximum": 1024
            },
            PARAM_STATEMENT_TIMEOUT_MS: {
                "description": "Abort statements running longer than this, in milliseconds (0: no limit).",
                "type": "integer",
                "minimum": 0,
                "maximum": 2_147_483_647_i64
            }
        }
    })
}

/// The schema of binding parameters: none are accepted.
pub fn binding_schema() -> Value {
    json!({
        "$schema": SCHEMA_DRAFT,
        "title": "Parameters of a PostgreSQL binding",
        "type": "object",
        "additionalProperties": false,
        "properties": {}
    })
}

fn plan(def: &PlanDef) -> Plan {
    let wrap = |v: Value| {
        Some(InputParametersSchema {
            parameters: Some(v),
        })
    };
    Plan {
        id: def.id.to_string(),
        name: def.name.to_string(),
        description: def.description.to_string(),
        metadata: Some(json!({
            "displayName": def.display_name,
            "bullets": [
                "PostgreSQL 15",
                format!("{} connections", def.max_connections),
                format!("{} MB shared buffers", def.shared_buffers_mb),
            ],
        })),
        free: Some(true),
        bindable: Some(true),
        // Every binding is its own login role, so a successor binding gets fresh credentials
        // while its predecessor keeps working until it is unbound.
        binding_rotatable: Some(true),
        // Left to the service's `true`: a refused change then reaches the broker, whose answer
        // names the allowed plans, instead of a platform's generic "plan not updateable".
        plan_updateable: None,
        schemas: Some(Schemas {
            service_instance: Some(ServiceInstanceSchema {
                create: wrap(instance_schema(def, InstanceOperation::Provision)),
                update: wrap(instance_schema(def, InstanceOperation::Update)),
            }),
            service_binding: Some(ServiceBindingSchema {
                create: wrap(binding_schema()),
            }),
        }),
        maximum_polling_duration: Some(MAXIMUM_POLLING_DURATION_S),
        maintenance_info: Some(MaintenanceInfo {
            version: MAINTENANCE_VERSION.to_string(),
            description: Some("PostgreSQL 15".to_string()),
        }),
    }
}

fn service() -> Service {
    Service {
        id: SERVICE_ID.to_string(),
        name: SERVICE_NAME.to_string(),
        description: "PostgreSQL 15 relational database, one dedicated server per instance"
            .to_string(),
        bindable: true,
        plans: PLANS.iter().map(plan).collect(),
        tags: vec!["postgresql".into(), "relational".into(), "sql".into()],
        requires: vec![],
        instances_retrievable: Some(true),
        bindings_retrievable: Some(true),
        allow_context_updates: Some(true),
        metadata: Some(json!({
            "displayName": "PostgreSQL",
            "longDescription": "A dedicated PostgreSQL 15 server. Every binding gets its own login role; all bindings share the database `app` and own its tables together.",
            "providerDisplayName": "OSB",
        })),
        dashboard_client: None,
        plan_updateable: Some(true),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (one URL path segment).
fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn offering() -> Offering {
        Offering::new("https://dash.example/").unwrap()
    }

    fn provision(plan_id: &str, parameters: Value) -> ValidateInstanceRequest {
        ValidateInstanceRequest {
            operation: InstanceOperation::Provision,
            instance_id: "i-1".into(),
            service_id: SERVICE_ID.into(),
            plan_id: plan_id.into(),
            previous_plan_id: None,
            parameters: parameters.as_object().cloned(),
            previous_parameters: None,
        }
    }

    fn update(from: &str, to: &str, parameters: Value) -> ValidateInstanceRequest {
        ValidateInstanceRequest {
            operation: InstanceOperation::Update,
            previous_plan_id: Some(from.into()),
            ..provision(to, parameters)
        }
    }

    fn all_schemas(service: &Service) -> Vec<Value> {
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

    #[test]
    fn ids_are_unique_across_the_service_and_its_plans() {
        let service = offering().service().clone();
        let mut ids = HashSet::new();
        assert!(ids.insert(service.id.clone()));
        for p in &service.plans {
            assert!(ids.insert(p.id.clone()), "duplicate id {}", p.id);
        }
    }

    #[test]
    fn plan_names_are_unique_and_cli_friendly() {
        let service = offering().service().clone();
        let names: HashSet<_> = service.plans.iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.len(), service.plans.len());
        assert!(service.plans.len() >= 2);
        for name in names.iter().chain(std::iter::once(&service.name)) {
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
    }

    #[test]
    fn every_schema_declares_draft_04_forbids_extra_properties_and_is_small() {
        for schema in all_schemas(offering().service()) {
            assert_eq!(schema["$schema"], SCHEMA_DRAFT);
            assert_eq!(schema["additionalProperties"], false);
            assert!(!schema.to_string().contains("$ref"));
            assert!(serde_json::to_vec(&schema).unwrap().len() < 64 * 1024);
        }
    }

    #[test]
    fn maintenance_versions_are_semver() {
        for p in &offering().service().plans {
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
            assert_eq!(p.maximum_polling_duration, Some(MAXIMUM_POLLING_DURATION_S));
        }
    }

    #[test]
    fn the_plans_really_differ_in_server_settings() {
        let [small, medium] = [PLANS[0], PLANS[1]];
        assert!(small.max_connections < medium.max_connections);
        assert!(small.shared_buffers_mb < medium.shared_buffers_mb);
    }

    #[test]
    fn the_service_flags_match_what_the_broker_implements() {
        let s = offering().service().clone();
        assert!(s.bindable);
        assert_eq!(s.instances_retrievable, Some(true));
        assert_eq!(s.bindings_retrievable, Some(true));
        assert_eq!(s.plan_updateable, Some(true));
        assert_eq!(s.allow_context_updates, Some(true));
    }

    #[test]
    fn a_valid_provision_gets_the_instance_dashboard() {
        let ok = offering()
            .validate_instance(&provision(
                PLAN_SMALL_ID,
                json!({"max_connections": 100, "work_mem_mb": 16, "statement_timeout_ms": 0}),
            ))
            .unwrap();
        assert_eq!(
            ok.dashboard_url.as_deref(),
            Some("https://dash.example/instances/i-1")
        );
    }

    #[test]
    fn a_float_for_max_connections_is_refused_naming_the_parameter() {
        let err = offering()
            .validate_instance(&provision(PLAN_SMALL_ID, json!({"max_connections": 1.5})))
            .unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidParameters(
                "parameter 'max_connections': integer expected, got 1.5".into()
            )
        );
    }

    #[test]
    fn an_unknown_parameter_is_refused_listing_the_known_ones() {
        let err = offering()
            .validate_instance(&provision(PLAN_SMALL_ID, json!({"fsync": "off"})))
            .unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidParameters(
                "unknown parameter 'fsync' (allowed parameters: max_connections, statement_timeout_ms, work_mem_mb)".into()
            )
        );
    }

    #[test]
    fn max_connections_outside_its_range_is_refused() {
        let err = offering()
            .validate_instance(&provision(PLAN_MEDIUM_ID, json!({"max_connections": 5000})))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter 'max_connections': must be at most 1000, got 5000"
        );
    }

    #[test]
    fn an_unknown_plan_is_refused_listing_the_plans() {
        let err = offering()
            .validate_instance(&provision("nope", json!({})))
            .unwrap_err();
        let Refusal::UnknownPlan(msg) = err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("'nope'") && msg.contains("small") && msg.contains("medium"),
            "{msg}"
        );
    }

    #[test]
    fn a_plan_of_another_service_is_unknown() {
        let mut req = provision(PLAN_SMALL_ID, json!({}));
        req.service_id = "other".into();
        assert!(matches!(
            offering().validate_instance(&req),
            Err(Refusal::UnknownPlan(_))
        ));
    }

    #[test]
    fn small_may_grow_to_medium() {
        offering()
            .validate_instance(&update(PLAN_SMALL_ID, PLAN_MEDIUM_ID, json!({})))
            .unwrap();
    }

    #[test]
    fn medium_may_not_shrink_to_small() {
        let err = offering()
            .validate_instance(&update(PLAN_MEDIUM_ID, PLAN_SMALL_ID, json!({})))
            .unwrap_err();
        assert_eq!(
            err,
            Refusal::PlanChangeNotAllowed(
                "plan change from medium to small is not allowed; medium may change to: (none)"
                    .into()
            )
        );
    }

    #[test]
    fn an_update_on_the_same_plan_checks_only_the_parameters_sent() {
        offering()
            .validate_instance(&update(
                PLAN_MEDIUM_ID,
                PLAN_MEDIUM_ID,
                json!({"work_mem_mb": 64}),
            ))
            .unwrap();
        let err = offering()
            .validate_instance(&update(
                PLAN_MEDIUM_ID,
                PLAN_MEDIUM_ID,
                json!({"work_mem_mb": 0}),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter 'work_mem_mb': must be at least 1, got 0"
        );
    }

    #[test]
    fn bindings_take_no_parameters() {
        let o = offering();
        let req = |p: Value| ValidateBindingRequest {
            instance_id: "i".into(),
            binding_id: "b".into(),
            service_id: SERVICE_ID.into(),
            plan_id: PLAN_SMALL_ID.into(),
            parameters: p.as_object().cloned(),
        };
        o.validate_binding(&req(json!({}))).unwrap();
        assert_eq!(
            o.validate_binding(&req(json!({"role": "admin"})))
                .unwrap_err()
                .to_string(),
            "unknown parameter 'role' (none are accepted)"
        );
    }

    #[test]
    fn dashboard_urls_encode_odd_instance_ids() {
        assert_eq!(
            offering().dashboard_url("a b/c"),
            "https://dash.example/instances/a%20b%2Fc"
        );
    }
}
