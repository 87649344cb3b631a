//! What a bind request must hold: its fields (a rotation takes the missing ones from the
//! binding it replaces), and the instance it binds to.

use crate::domain::identity::{check_bind_resource, BindingTarget};
use crate::domain::instance::{check_bindable, InstanceState, InstanceView};
use crate::domain::request::{non_empty_if_present, required, Refusal};
use crate::domain::Attributes;
use common::osb::{BindRequest, JsonObject};

/// A bind request with its fields checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BindAsk {
    /// Offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Parameters as sent (a rotation without any: the predecessor's, unless empty).
    pub sent_parameters: Option<JsonObject>,
    /// Parameters compared and stored (none: empty).
    pub parameters: JsonObject,
    /// The platform's context, as sent.
    pub context: Option<JsonObject>,
    /// The deprecated top-level `app_guid`, as sent.
    pub app_guid: Option<String>,
    /// `bind_resource`, as sent.
    pub bind_resource: Option<JsonObject>,
    /// Who the credentials are for.
    pub target: BindingTarget,
    /// Whether this is a rotation (it names a predecessor).
    pub rotation: bool,
}

impl BindAsk {
    /// Checks a bind request (400 naming the field). `predecessor` is what the binding a
    /// rotation replaces was created with: a rotation may leave out service, plan and
    /// parameters, which are then the predecessor's.
    pub fn from_request(
        body: BindRequest,
        predecessor: Option<&Attributes<'_>>,
    ) -> Result<Self, Refusal> {
        let service_id = match (body.service_id, predecessor) {
            (None, Some(p)) => p.service_id.to_string(),
            (value, _) => required(value, "service_id")?,
        };
        let plan_id = match (body.plan_id, predecessor) {
            (None, Some(p)) => p.plan_id.to_string(),
            (value, _) => required(value, "plan_id")?,
        };
        let mut sent_parameters = body.parameters;
        if let (None, Some(p)) = (&sent_parameters, predecessor) {
            sent_parameters = Some(p.parameters.clone()).filter(|p| !p.is_empty());
        }
        non_empty_if_present(&body.app_guid, "app_guid")?;
        check_bind_resource(body.bind_resource.as_ref()).map_err(Refusal::BadRequest)?;
        let target = BindingTarget::new(body.app_guid.clone(), body.bind_resource.as_ref());
        Ok(Self {
            service_id,
            plan_id,
            parameters: sent_parameters.clone().unwrap_or_default(),
            sent_parameters,
            context: body.context,
            app_guid: body.app_guid,
            bind_resource: body.bind_resource,
            target,
            rotation: predecessor.is_some(),
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

/// Whether the bind may go to instance `instance_id` (`instance`: it as stored, if at all):
/// 404 when unknown or deleted (the spec names no code; this is what the widely used
/// brokerapi does), 400 when the request names another offering or plan, 422
/// `ConcurrencyError` when the instance cannot be bound now.
pub fn check_instance_for_bind(
    ask: &BindAsk,
    instance_id: &str,
    instance: Option<&InstanceView<'_>>,
) -> Result<(), Refusal> {
    let Some(instance) = instance.filter(|i| i.state != InstanceState::Deleted) else {
        return Err(Refusal::NotFound(format!(
            "service instance {instance_id} not found"
        )));
    };
    let (service_id, plan_id) = (&ask.service_id, &ask.plan_id);
    let stored = &instance.attributes;
    if stored.service_id != service_id || stored.plan_id != plan_id {
        return Err(Refusal::BadRequest(format!(
            "service_id/plan_id {service_id}/{plan_id} are not those of service instance {instance_id} ({}/{})",
            stored.service_id, stored.plan_id
        )));
    }
    check_bindable(instance).map_err(Refusal::Concurrency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::Placement;
    use crate::domain::operation::OperationKind;
    use crate::domain::RunningOperation;
    use serde_json::json;

    fn request(body: serde_json::Value) -> BindRequest {
        serde_json::from_value(body).unwrap()
    }

    fn object(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_bind_request_names_service_and_plan_and_a_well_formed_target() {
        let ask = BindAsk::from_request(
            request(json!({"service_id": "s", "plan_id": "p", "app_guid": "a"})),
            None,
        )
        .unwrap();
        assert_eq!((ask.sent_parameters, ask.rotation), (None, false));
        assert_eq!(ask.target, BindingTarget::new(Some("a".into()), None));
        for (body, refusal) in [
            (json!({"plan_id": "p"}), "service_id is required"),
            (json!({"service_id": "s"}), "plan_id is required"),
            (
                json!({"service_id": "s", "plan_id": "p", "app_guid": ""}),
                "app_guid must not be empty",
            ),
            (
                json!({"service_id": "s", "plan_id": "p", "bind_resource": {"app_guid": 1}}),
                "bind_resource.app_guid must be a string",
            ),
        ] {
            assert_eq!(
                BindAsk::from_request(request(body), None),
                Err(Refusal::BadRequest(refusal.into()))
            );
        }
    }

    #[test]
    fn a_rotation_takes_what_it_leaves_out_from_its_predecessor() {
        let parameters = object(json!({"x": 1}));
        let predecessor = Attributes {
            service_id: "s",
            plan_id: "p",
            parameters: &parameters,
        };
        let ask = BindAsk::from_request(
            request(json!({"predecessor_binding_id": "b0"})),
            Some(&predecessor),
        )
        .unwrap();
        assert!(ask.rotation);
        assert!(ask.attributes().identical(&predecessor));
        assert_eq!(ask.sent_parameters, Some(parameters.clone()));
        let own = BindAsk::from_request(
            request(json!({"plan_id": "q", "parameters": {"y": 2}})),
            Some(&predecessor),
        )
        .unwrap();
        assert_eq!((own.service_id.as_str(), own.plan_id.as_str()), ("s", "q"));
        assert_eq!(own.parameters, object(json!({"y": 2})));
        let empty = JsonObject::new();
        let bare = Attributes {
            parameters: &empty,
            ..predecessor
        };
        let ask = BindAsk::from_request(request(json!({})), Some(&bare)).unwrap();
        assert_eq!(
            ask.sent_parameters, None,
            "empty parameters are not sent on"
        );
    }

    #[test]
    fn a_bind_goes_only_to_a_live_idle_instance_of_its_plan() {
        let ask = BindAsk::from_request(request(json!({"service_id": "s", "plan_id": "p"})), None)
            .unwrap();
        let parameters = JsonObject::new();
        let instance = |state, plan_id, running: Option<RunningOperation>| InstanceView {
            state,
            attributes: Attributes {
                service_id: "s",
                plan_id,
                parameters: &parameters,
            },
            placement: Placement::default(),
            maintenance_version: None,
            running,
        };
        let ready = instance(InstanceState::Ready, "p", None);
        assert_eq!(check_instance_for_bind(&ask, "i1", Some(&ready)), Ok(()));
        assert_eq!(
            check_instance_for_bind(&ask, "i1", None),
            Err(Refusal::NotFound("service instance i1 not found".into()))
        );
        let deleted = instance(InstanceState::Deleted, "p", None);
        assert!(matches!(
            check_instance_for_bind(&ask, "i1", Some(&deleted)),
            Err(Refusal::NotFound(_))
        ));
        let other_plan = instance(InstanceState::Ready, "q", None);
        assert_eq!(
            check_instance_for_bind(&ask, "i1", Some(&other_plan)),
            Err(Refusal::BadRequest(
                "service_id/plan_id s/p are not those of service instance i1 (s/q)".into()
            ))
        );
        let updating = instance(
            InstanceState::Ready,
            "p",
            Some(RunningOperation {
                id: "op".into(),
                kind: OperationKind::Update,
            }),
        );
        assert!(matches!(
            check_instance_for_bind(&ask, "i1", Some(&updating)),
            Err(Refusal::Concurrency(_))
        ));
    }
}
