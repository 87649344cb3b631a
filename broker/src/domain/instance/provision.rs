//! The provision rules: what a provision request must hold, and what it leads to given the
//! instance that may already exist under its id.

use super::{InstanceState, InstanceView};
use crate::domain::identity::Placement;
use crate::domain::operation::OperationKind;
use crate::domain::request::{non_empty_if_present, required, Refusal};
use crate::domain::Attributes;
use common::osb::{JsonObject, MaintenanceInfo, ProvisionRequest};

/// A provision request with its fields checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionAsk {
    /// Offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Parameters (none sent: empty).
    pub parameters: JsonObject,
    /// The platform's context, as sent.
    pub context: Option<JsonObject>,
    /// `organization_guid`, as sent.
    pub organization_guid: Option<String>,
    /// `space_guid`, as sent.
    pub space_guid: Option<String>,
    /// The maintenance version the platform expects, if any.
    pub maintenance_info: Option<MaintenanceInfo>,
    /// Organization and space, from the context or the GUID fields.
    pub placement: Placement,
}

impl ProvisionAsk {
    /// Checks a provision request (400 naming the field): `service_id` and `plan_id` always;
    /// `organization_guid` and `space_guid` are mandatory without a context and must not be
    /// empty when sent with one.
    pub fn from_request(body: ProvisionRequest) -> Result<Self, Refusal> {
        let service_id = required(body.service_id, "service_id")?;
        let plan_id = required(body.plan_id, "plan_id")?;
        if body.context.is_none() {
            required(body.organization_guid.clone(), "organization_guid")?;
            required(body.space_guid.clone(), "space_guid")?;
        } else {
            non_empty_if_present(&body.organization_guid, "organization_guid")?;
            non_empty_if_present(&body.space_guid, "space_guid")?;
        }
        let placement = Placement::of(
            body.context.as_ref(),
            body.organization_guid.as_deref(),
            body.space_guid.as_deref(),
        );
        Ok(Self {
            service_id,
            plan_id,
            parameters: body.parameters.unwrap_or_default(),
            context: body.context,
            organization_guid: body.organization_guid,
            space_guid: body.space_guid,
            maintenance_info: body.maintenance_info,
            placement,
        })
    }

    /// What a repeat of this request is compared by.
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes {
            service_id: &self.service_id,
            plan_id: &self.plan_id,
            parameters: &self.parameters,
        }
    }
}

/// What a provision request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionDecision {
    /// A new instance (also for the id of a deleted one).
    Create,
    /// The same instance exists and is ready: 200.
    AlreadyReady,
    /// The same instance is being provisioned: 202 with this operation.
    InProgress(String),
    /// An instance with this id and other attributes exists: 409.
    Conflict(String),
    /// The instance is being deprovisioned: 422 ConcurrencyError.
    Concurrency(String),
}

/// Decides a provision request given the existing instance, if any: a repeat is identical
/// when service, plan and parameters match and it names no other organization or space.
pub fn decide_provision(
    existing: Option<&InstanceView<'_>>,
    requested: &Attributes<'_>,
    placement: &Placement,
) -> ProvisionDecision {
    let Some(existing) = existing else {
        return ProvisionDecision::Create;
    };
    if existing.state != InstanceState::Deleted {
        if let Some(field) = existing.placement.differs_from(placement) {
            return ProvisionDecision::Conflict(format!(
                "a service instance with this id already exists in another {field}"
            ));
        }
    }
    let identical = existing.attributes.identical(requested);
    match existing.state {
        InstanceState::Deleted => ProvisionDecision::Create,
        InstanceState::Deprovisioning => ProvisionDecision::Concurrency(
            "the service instance is being deprovisioned; retry after that operation ends".into(),
        ),
        InstanceState::Failed => ProvisionDecision::Conflict(
            "a service instance with this id exists and its provisioning failed; deprovision it first"
                .into(),
        ),
        _ if !identical => ProvisionDecision::Conflict(
            "a service instance with this id already exists with different attributes".into(),
        ),
        InstanceState::Provisioning => match &existing.running {
            Some(op) if op.kind == OperationKind::Provision => {
                ProvisionDecision::InProgress(op.id.clone())
            }
            _ => ProvisionDecision::Concurrency(
                "the service instance is being processed by another operation; retry later".into(),
            ),
        },
        InstanceState::Ready => ProvisionDecision::AlreadyReady,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{params, view};
    use super::*;
    use serde_json::json;

    fn request(body: serde_json::Value) -> ProvisionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_provision_request_names_service_plan_and_where_it_belongs() {
        let ask = ProvisionAsk::from_request(request(json!({
            "service_id": "svc", "plan_id": "small",
            "organization_guid": "org", "space_guid": "space"
        })))
        .unwrap();
        assert_eq!(ask.attributes().plan_id, "small");
        assert!(ask.parameters.is_empty());
        assert_eq!(
            ask.placement,
            Placement::of(None, Some("org"), Some("space"))
        );
        for (body, refusal) in [
            (
                json!({"plan_id": "p", "organization_guid": "o", "space_guid": "s"}),
                "service_id is required",
            ),
            (
                json!({"service_id": "s", "plan_id": "", "organization_guid": "o", "space_guid": "s"}),
                "plan_id must not be empty",
            ),
            (
                json!({"service_id": "s", "plan_id": "p", "space_guid": "s"}),
                "organization_guid is required",
            ),
            (
                json!({"service_id": "s", "plan_id": "p", "organization_guid": "o"}),
                "space_guid is required",
            ),
            (
                json!({"service_id": "s", "plan_id": "p", "context": {"platform": "k"}, "space_guid": ""}),
                "space_guid must not be empty",
            ),
        ] {
            assert_eq!(
                ProvisionAsk::from_request(request(body)),
                Err(Refusal::BadRequest(refusal.into()))
            );
        }
        let with_context = ProvisionAsk::from_request(request(json!({
            "service_id": "s", "plan_id": "p", "context": {"platform": "kubernetes", "namespace": "n"}
        })));
        assert!(with_context.is_ok(), "{with_context:?}");
    }

    #[test]
    fn a_new_or_deleted_instance_is_created() {
        let p = JsonObject::new();
        let req = Attributes {
            service_id: "svc",
            plan_id: "small",
            parameters: &p,
        };
        assert_eq!(
            decide_provision(None, &req, &Placement::default()),
            ProvisionDecision::Create
        );
        let deleted = view(InstanceState::Deleted, &p, None);
        assert_eq!(
            decide_provision(Some(&deleted), &req, &Placement::default()),
            ProvisionDecision::Create
        );
    }

    #[test]
    fn an_identical_repeat_is_200_when_ready_and_202_with_the_same_operation_while_provisioning() {
        let p = params(json!({"x": 1}));
        let req = Attributes {
            service_id: "svc",
            plan_id: "small",
            parameters: &p,
        };
        let ready = view(InstanceState::Ready, &p, None);
        assert_eq!(
            decide_provision(Some(&ready), &req, &Placement::default()),
            ProvisionDecision::AlreadyReady
        );
        let provisioning = view(
            InstanceState::Provisioning,
            &p,
            Some((OperationKind::Provision, "op-1")),
        );
        assert_eq!(
            decide_provision(Some(&provisioning), &req, &Placement::default()),
            ProvisionDecision::InProgress("op-1".into())
        );
    }

    #[test]
    fn a_different_repeat_conflicts_and_a_deprovisioning_instance_is_busy() {
        let p = params(json!({"x": 1}));
        let other = params(json!({"x": 2}));
        let req = Attributes {
            service_id: "svc",
            plan_id: "small",
            parameters: &other,
        };
        let ready = view(InstanceState::Ready, &p, None);
        assert!(matches!(
            decide_provision(Some(&ready), &req, &Placement::default()),
            ProvisionDecision::Conflict(_)
        ));
        let going = view(
            InstanceState::Deprovisioning,
            &p,
            Some((OperationKind::Deprovision, "op-2")),
        );
        assert!(matches!(
            decide_provision(Some(&going), &req, &Placement::default()),
            ProvisionDecision::Concurrency(_)
        ));
    }

    #[test]
    fn a_repeat_naming_another_organization_or_space_conflicts() {
        let p = JsonObject::new();
        let req = Attributes {
            service_id: "svc",
            plan_id: "small",
            parameters: &p,
        };
        let ready = view(InstanceState::Ready, &p, None);
        for (org, space, field) in [
            ("other", "space", "organization"),
            ("org", "other", "space"),
        ] {
            match decide_provision(
                Some(&ready),
                &req,
                &Placement::of(None, Some(org), Some(space)),
            ) {
                ProvisionDecision::Conflict(d) => assert!(d.contains(field), "{d}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            decide_provision(
                Some(&ready),
                &req,
                &Placement::of(None, Some("org"), Some("space"))
            ),
            ProvisionDecision::AlreadyReady
        );
        let deleted = view(InstanceState::Deleted, &p, None);
        assert_eq!(
            decide_provision(Some(&deleted), &req, &Placement::of(None, Some("x"), None)),
            ProvisionDecision::Create
        );
    }
}
