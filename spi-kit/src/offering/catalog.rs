//! The OSB catalog entry of a data service, built from its [`Catalog`] data: the service, its
//! plans with bullets and maintenance info, and the three parameter schemas of each plan.

use super::{PlanDef, PROVIDER_DISPLAY_NAME, SCHEMA_DRAFT};
use crate::service::Catalog;
use common::osb::{
    InputParametersSchema, MaintenanceInfo, Plan, Schemas, Service, ServiceBindingSchema,
    ServiceInstanceSchema,
};
use common::spi::InstanceOperation;
use serde_json::{json, Value};

/// The parameter schemas of a plan, as JSON: what the catalog shows and what validation
/// compiles, made once from the same data.
pub(super) struct ParameterSchemas {
    /// Provision parameters.
    pub create: Value,
    /// Update parameters.
    pub update: Value,
    /// Binding parameters.
    pub binding: Value,
}

impl ParameterSchemas {
    /// The schemas of `plan` of `S`.
    pub fn of<S: Catalog>(plan: &PlanDef<S::Sizing>) -> Self {
        Self {
            create: instance_schema::<S>(plan, InstanceOperation::Provision),
            update: instance_schema::<S>(plan, InstanceOperation::Update),
            binding: binding_schema::<S>(),
        }
    }
}

/// The schema of instance parameters for `plan`: draft-04, no parameter but the service's own.
pub fn instance_schema<S: Catalog>(
    plan: &PlanDef<S::Sizing>,
    operation: InstanceOperation,
) -> Value {
    let verb = match operation {
        InstanceOperation::Provision => "Parameters of a new",
        InstanceOperation::Update => "Parameters to change on a",
    };
    json!({
        "$schema": SCHEMA_DRAFT,
        "title": format!("{verb} {} {} instance", plan.name, S::SERVICE.noun),
        "type": "object",
        "additionalProperties": false,
        "properties": S::instance_properties(plan),
    })
}

/// The schema of binding parameters: none are accepted.
pub fn binding_schema<S: Catalog>() -> Value {
    json!({
        "$schema": SCHEMA_DRAFT,
        "title": format!("Parameters of a {} binding", S::SERVICE.noun),
        "type": "object",
        "additionalProperties": false,
        "properties": {}
    })
}

fn catalog_plan<S: Catalog>(def: &PlanDef<S::Sizing>) -> Plan {
    let wrap = |v: Value| {
        Some(InputParametersSchema {
            parameters: Some(v),
        })
    };
    let bullets: Vec<String> = std::iter::once(S::SERVICE.product.to_string())
        .chain(S::sizing_bullets(def))
        .collect();
    let values = ParameterSchemas::of::<S>(def);
    Plan {
        id: def.id.to_string(),
        name: def.name.to_string(),
        description: def.description.to_string(),
        metadata: Some(json!({
            "displayName": def.display_name,
            "bullets": bullets,
        })),
        free: Some(true),
        bindable: Some(true),
        // Every binding is its own account (a login role, an ACL user), so a successor binding
        // gets fresh credentials while its predecessor keeps working until it is unbound.
        binding_rotatable: Some(true),
        // Left to the service's `true`: a refused change then reaches the broker, whose answer
        // names the allowed plans, instead of a platform's generic "plan not updateable".
        plan_updateable: None,
        schemas: Some(Schemas {
            service_instance: Some(ServiceInstanceSchema {
                create: wrap(values.create),
                update: wrap(values.update),
            }),
            service_binding: Some(ServiceBindingSchema {
                create: wrap(values.binding),
            }),
        }),
        maximum_polling_duration: Some(S::SERVICE.maximum_polling_duration_s),
        maintenance_info: Some(MaintenanceInfo {
            version: S::SERVICE.maintenance_version.to_string(),
            description: Some(S::SERVICE.product.to_string()),
        }),
    }
}

/// The OSB service offering of `S`, with every plan.
pub(super) fn catalog_service<S: Catalog>() -> Service {
    let info = S::SERVICE;
    Service {
        id: info.id.to_string(),
        name: info.name.to_string(),
        description: info.description.to_string(),
        bindable: true,
        plans: S::PLANS.iter().map(catalog_plan::<S>).collect(),
        tags: info.tags.iter().map(|t| t.to_string()).collect(),
        requires: vec![],
        instances_retrievable: Some(true),
        bindings_retrievable: Some(true),
        allow_context_updates: Some(true),
        metadata: Some(json!({
            "displayName": info.display_name,
            "longDescription": info.long_description,
            "providerDisplayName": PROVIDER_DISPLAY_NAME,
        })),
        dashboard_client: None,
        plan_updateable: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{Demo, PLANS};

    #[test]
    fn the_catalog_shows_the_schemas_validation_compiles() {
        let service = catalog_service::<Demo>();
        for (def, plan) in PLANS.iter().zip(&service.plans) {
            let values = ParameterSchemas::of::<Demo>(def);
            let schemas = plan.schemas.as_ref().unwrap();
            let instance = schemas.service_instance.as_ref().unwrap();
            let shown = |s: &Option<InputParametersSchema>| s.clone().unwrap().parameters.unwrap();
            assert_eq!(shown(&instance.create), values.create);
            assert_eq!(shown(&instance.update), values.update);
            let binding = &schemas.service_binding.as_ref().unwrap().create;
            assert_eq!(shown(binding), values.binding);
        }
    }

    #[test]
    fn provision_update_and_binding_schemas_are_titled_apart() {
        let values = ParameterSchemas::of::<Demo>(&PLANS[1]);
        assert_eq!(
            values.create["title"],
            "Parameters of a new large demo instance"
        );
        assert_eq!(
            values.update["title"],
            "Parameters to change on a large demo instance"
        );
        assert_eq!(values.binding["title"], "Parameters of a demo binding");
        assert_eq!(values.binding["properties"], json!({}));
    }
}
