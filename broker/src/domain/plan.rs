//! What a request may ask of the catalog's offering and plan: the maintenance version, binding
//! and rotation, context-only updates; and the metadata an instance of a plan is given.

use super::request::Refusal;
use common::osb::{InstanceMetadata, JsonObject, MaintenanceInfo, Plan, Service};

/// 422 `MaintenanceInfoConflict` when the request names a maintenance version other than
/// the plan's.
pub fn check_maintenance(requested: Option<&MaintenanceInfo>, plan: &Plan) -> Result<(), Refusal> {
    let Some(requested) = requested else {
        return Ok(());
    };
    match &plan.maintenance_info {
        Some(current) if current.version == requested.version => Ok(()),
        Some(current) => Err(Refusal::MaintenanceInfoConflict(format!(
            "maintenance_info.version {} does not match version {} of plan {} in the catalog; apply the maintenance update (maintenance_info.version {}) first",
            requested.version, current.version, plan.name, current.version
        ))),
        None => Err(Refusal::MaintenanceInfoConflict(format!(
            "plan {} has no maintenance_info; leave maintenance_info out of the request",
            plan.name
        ))),
    }
}

/// The instance metadata the platform is given: labels naming the offering and plan, and the
/// plan's maintenance version as an attribute.
pub fn instance_metadata(service: &Service, plan: &Plan) -> InstanceMetadata {
    let mut labels = JsonObject::new();
    labels.insert("service".into(), service.name.clone().into());
    labels.insert("plan".into(), plan.name.clone().into());
    let mut attributes = JsonObject::new();
    if let Some(m) = &plan.maintenance_info {
        attributes.insert("maintenance_version".into(), m.version.clone().into());
    }
    InstanceMetadata {
        labels: Some(labels),
        attributes: Some(attributes),
    }
}

/// Whether a plan is bindable (the plan overrides the offering).
pub fn plan_bindable(service: &Service, plan: &Plan) -> bool {
    plan.bindable.unwrap_or(service.bindable)
}

/// Whether a bind (a rotation when `rotation`) may be made on the plan: 400 when the plan is
/// not bindable, 422 when a rotation is asked of a plan that does not declare
/// `binding_rotatable: true`.
pub fn check_bind_plan(service: &Service, plan: &Plan, rotation: bool) -> Result<(), Refusal> {
    if !plan_bindable(service, plan) {
        return Err(Refusal::BadRequest(format!(
            "plan {} of service {} is not bindable",
            plan.name, service.name
        )));
    }
    if rotation && plan.binding_rotatable != Some(true) {
        return Err(Refusal::Unprocessable(format!(
            "plan {} of service {} does not support binding rotation (binding_rotatable is not true)",
            plan.name, service.name
        )));
    }
    Ok(())
}

/// Whether an update that changes nothing else may store the context it sends: always when
/// the offering declares `allow_context_updates: true` or the context is the stored one, else
/// 422 and the context stays as it is.
pub fn check_context_update(
    service: &Service,
    stored: Option<&JsonObject>,
    sent: &JsonObject,
) -> Result<(), Refusal> {
    if service.allow_context_updates == Some(true) || stored == Some(sent) {
        return Ok(());
    }
    Err(Refusal::Unprocessable(format!(
        "service {} does not allow context-only updates (allow_context_updates is not true); the context was not changed",
        service.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(maintenance: Option<&str>) -> Plan {
        Plan {
            id: "p".into(),
            name: "small".into(),
            description: "d".into(),
            maintenance_info: maintenance.map(|version| MaintenanceInfo {
                version: version.into(),
                description: None,
            }),
            ..Default::default()
        }
    }

    fn service() -> Service {
        Service {
            id: "s".into(),
            name: "pg".into(),
            description: "d".into(),
            bindable: true,
            ..Default::default()
        }
    }

    fn info(version: &str) -> MaintenanceInfo {
        MaintenanceInfo {
            version: version.into(),
            description: None,
        }
    }

    #[test]
    fn a_maintenance_version_must_be_the_plans() {
        assert_eq!(check_maintenance(None, &plan(Some("1.0.0"))), Ok(()));
        assert_eq!(
            check_maintenance(Some(&info("1.0.0")), &plan(Some("1.0.0"))),
            Ok(())
        );
        match check_maintenance(Some(&info("0.9.0")), &plan(Some("1.0.0"))) {
            Err(Refusal::MaintenanceInfoConflict(d)) => assert_eq!(
                d,
                "maintenance_info.version 0.9.0 does not match version 1.0.0 of plan small in the catalog; apply the maintenance update (maintenance_info.version 1.0.0) first"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_maintenance(Some(&info("1.0.0")), &plan(None)),
            Err(Refusal::MaintenanceInfoConflict(d)) if d.contains("has no maintenance_info")
        ));
    }

    #[test]
    fn instance_metadata_names_offering_plan_and_maintenance_version() {
        let metadata = instance_metadata(&service(), &plan(Some("2.0.0")));
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            json!({"labels": {"service": "pg", "plan": "small"}, "attributes": {"maintenance_version": "2.0.0"}})
        );
        let bare = instance_metadata(&service(), &plan(None));
        assert_eq!(bare.attributes, Some(JsonObject::new()));
    }

    #[test]
    fn the_plan_decides_bindability_over_the_offering_and_rotation_needs_its_consent() {
        let mut p = plan(None);
        assert_eq!(check_bind_plan(&service(), &p, false), Ok(()));
        assert!(matches!(
            check_bind_plan(&service(), &p, true),
            Err(Refusal::Unprocessable(d)) if d.contains("does not support binding rotation")
        ));
        p.binding_rotatable = Some(true);
        assert_eq!(check_bind_plan(&service(), &p, true), Ok(()));
        p.bindable = Some(false);
        assert_eq!(
            check_bind_plan(&service(), &p, false),
            Err(Refusal::BadRequest(
                "plan small of service pg is not bindable".into()
            ))
        );
        let mut s = service();
        s.bindable = false;
        assert!(!plan_bindable(&s, &plan(None)));
        assert!(plan_bindable(
            &s,
            &Plan {
                bindable: Some(true),
                ..plan(None)
            }
        ));
    }

    #[test]
    fn a_context_only_update_needs_the_offerings_consent_unless_nothing_changes() {
        let stored = json!({"platform": "cf", "space_name": "a"})
            .as_object()
            .cloned()
            .unwrap();
        let renamed = json!({"platform": "cf", "space_name": "b"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            check_context_update(&service(), Some(&stored), &stored),
            Ok(())
        );
        assert!(matches!(
            check_context_update(&service(), Some(&stored), &renamed),
            Err(Refusal::Unprocessable(d)) if d.starts_with("service pg does not allow context-only updates")
        ));
        assert!(check_context_update(&service(), None, &renamed).is_err());
        let allowing = Service {
            allow_context_updates: Some(true),
            ..service()
        };
        assert_eq!(
            check_context_update(&allowing, Some(&stored), &renamed),
            Ok(())
        );
    }
}
