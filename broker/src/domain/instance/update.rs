//! The update rules: what an update request must hold, and whether it changes anything,
//! joins the same running update, or must wait.

use super::{InstanceState, InstanceView};
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::domain::request::{non_empty_if_present, required, Refusal};
use common::osb::{JsonObject, MaintenanceInfo, UpdateRequest};

/// An update request with its fields checked.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateAsk {
    /// Offering id (must be the instance's).
    pub service_id: String,
    /// New plan, if the request names one.
    pub plan_id: Option<String>,
    /// The platform's context; an empty one counts as absent.
    pub context: Option<JsonObject>,
    /// Parameters sent, if any.
    pub parameters: Option<JsonObject>,
    /// The maintenance version asked for, if any.
    pub maintenance_info: Option<MaintenanceInfo>,
}

impl UpdateAsk {
    /// Checks an update request (400 naming the field): `service_id` is mandatory, `plan_id`
    /// must not be empty when sent.
    pub fn from_request(body: UpdateRequest) -> Result<Self, Refusal> {
        let service_id = required(body.service_id, "service_id")?;
        non_empty_if_present(&body.plan_id, "plan_id")?;
        Ok(Self {
            service_id,
            plan_id: body.plan_id,
            // An empty context says nothing (the profile requires `platform` in every
            // context): it changes nothing, as if absent.
            context: body.context.filter(|c| !c.is_empty()),
            parameters: body.parameters,
            maintenance_info: body.maintenance_info,
        })
    }

    /// 400 unless the request names the offering of instance `instance_id` (`service_id`).
    pub fn check_service(&self, instance_id: &str, service_id: &str) -> Result<(), Refusal> {
        if self.service_id == service_id {
            return Ok(());
        }
        Err(Refusal::BadRequest(format!(
            "service_id {} is not the service of service instance {instance_id}",
            self.service_id
        )))
    }

    /// The plan after the update: the one named, else the current one.
    pub fn target_plan(&self, current: &str) -> String {
        self.plan_id.clone().unwrap_or_else(|| current.to_string())
    }

    /// The update as the decision compares it.
    pub fn view<'a>(&'a self, target_plan: &'a str) -> UpdateView<'a> {
        UpdateView {
            plan_id: target_plan,
            parameters: self.parameters.as_ref(),
            maintenance_version: self.maintenance_info.as_ref().map(|m| m.version.as_str()),
        }
    }

    /// What the update operation is started with.
    pub fn into_payload(self, target_plan: String) -> OperationPayload {
        OperationPayload {
            plan_id: Some(target_plan),
            parameters: self.parameters,
            maintenance_version: self.maintenance_info.map(|m| m.version),
            context: self.context,
            ..Default::default()
        }
    }
}

/// The request a running update was started with, from its payload (`current_plan`: the
/// instance's plan, for a payload that names none).
pub fn running_update<'a>(payload: &'a OperationPayload, current_plan: &'a str) -> UpdateView<'a> {
    UpdateView {
        plan_id: payload.plan_id.as_deref().unwrap_or(current_plan),
        parameters: payload.parameters.as_ref(),
        maintenance_version: payload.maintenance_version.as_deref(),
    }
}

/// The update a PATCH asks for, resolved against the instance.
#[derive(Debug, Clone)]
pub struct UpdateView<'a> {
    /// Target plan (the current one when the request names none).
    pub plan_id: &'a str,
    /// Parameters sent, if any.
    pub parameters: Option<&'a JsonObject>,
    /// Requested maintenance version, if any.
    pub maintenance_version: Option<&'a str>,
}

/// What an update request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateDecision {
    /// Nothing to change: 200 `{}` (a context, if sent, is stored).
    NothingToChange,
    /// A change: validate, then start an update operation.
    Change,
    /// The same update is running: 202 with this operation.
    InProgress(String),
    /// Not now: 422 ConcurrencyError.
    Concurrency(String),
}

/// Decides an update request. `running_request` is the request the running update was started
/// with, when the running operation is an update.
pub fn decide_update(
    existing: &InstanceView<'_>,
    requested: &UpdateView<'_>,
    running_request: Option<&UpdateView<'_>>,
) -> UpdateDecision {
    if let Some(op) = &existing.running {
        let same = op.kind == OperationKind::Update
            && running_request.is_some_and(|r| {
                r.plan_id == requested.plan_id
                    && r.parameters == requested.parameters
                    && r.maintenance_version == requested.maintenance_version
            });
        return if same {
            UpdateDecision::InProgress(op.id.clone())
        } else {
            UpdateDecision::Concurrency(format!(
                "another operation ({}) is in progress on this service instance; retry after it ends",
                op.kind.as_str()
            ))
        };
    }
    if existing.state != InstanceState::Ready {
        return UpdateDecision::Concurrency(format!(
            "the service instance is {} and cannot be updated now",
            existing.state.as_str()
        ));
    }
    let plan_changes = requested.plan_id != existing.attributes.plan_id;
    let parameters_change = requested.parameters.is_some_and(|p| {
        &crate::domain::operation::merge_parameters(existing.attributes.parameters, p)
            != existing.attributes.parameters
    });
    let maintenance_changes = requested
        .maintenance_version
        .is_some_and(|v| Some(v) != existing.maintenance_version);
    if plan_changes || parameters_change || maintenance_changes {
        UpdateDecision::Change
    } else {
        UpdateDecision::NothingToChange
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{params, view};
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_request_is_checked_and_carries_its_change_into_the_payload() {
        let body: UpdateRequest = serde_json::from_value(json!({
            "service_id": "svc", "context": {}, "parameters": {"x": 2},
            "maintenance_info": {"version": "2.0.0"}
        }))
        .unwrap();
        let ask = UpdateAsk::from_request(body).unwrap();
        assert_eq!(ask.context, None, "an empty context counts as absent");
        assert_eq!(ask.check_service("i1", "svc"), Ok(()));
        assert_eq!(
            ask.check_service("i1", "other"),
            Err(Refusal::BadRequest(
                "service_id svc is not the service of service instance i1".into()
            ))
        );
        let target = ask.target_plan("small");
        assert_eq!(target, "small");
        assert_eq!(ask.view(&target).maintenance_version, Some("2.0.0"));
        let payload = ask.into_payload(target);
        assert_eq!(running_update(&payload, "large").plan_id, "small");
        assert_eq!(payload.parameters, Some(params(json!({"x": 2}))));
        assert_eq!(payload.maintenance_version.as_deref(), Some("2.0.0"));
        for (body, refusal) in [
            (json!({"plan_id": "p"}), "service_id is required"),
            (
                json!({"service_id": "s", "plan_id": ""}),
                "plan_id must not be empty",
            ),
        ] {
            let body: UpdateRequest = serde_json::from_value(body).unwrap();
            assert_eq!(
                UpdateAsk::from_request(body),
                Err(Refusal::BadRequest(refusal.into()))
            );
        }
    }

    #[test]
    fn an_update_with_nothing_new_changes_nothing() {
        let p = params(json!({"x": 1}));
        let inst = view(InstanceState::Ready, &p, None);
        let same = params(json!({"x": 1}));
        let req = UpdateView {
            plan_id: "small",
            parameters: Some(&same),
            maintenance_version: Some("1.0.0"),
        };
        assert_eq!(
            decide_update(&inst, &req, None),
            UpdateDecision::NothingToChange
        );
        let none = UpdateView {
            plan_id: "small",
            parameters: None,
            maintenance_version: None,
        };
        assert_eq!(
            decide_update(&inst, &none, None),
            UpdateDecision::NothingToChange
        );
    }

    #[test]
    fn a_plan_parameter_or_maintenance_change_is_a_change() {
        let p = params(json!({"x": 1}));
        let inst = view(InstanceState::Ready, &p, None);
        let other = params(json!({"x": 2}));
        for req in [
            UpdateView {
                plan_id: "large",
                parameters: None,
                maintenance_version: None,
            },
            UpdateView {
                plan_id: "small",
                parameters: Some(&other),
                maintenance_version: None,
            },
            UpdateView {
                plan_id: "small",
                parameters: None,
                maintenance_version: Some("2.0.0"),
            },
        ] {
            assert_eq!(decide_update(&inst, &req, None), UpdateDecision::Change);
        }
    }

    #[test]
    fn an_update_while_another_operation_runs_is_refused_unless_it_is_the_same_update() {
        let p = JsonObject::new();
        let inst = view(
            InstanceState::Ready,
            &p,
            Some((OperationKind::Update, "op-3")),
        );
        let req = UpdateView {
            plan_id: "large",
            parameters: None,
            maintenance_version: None,
        };
        assert_eq!(
            decide_update(&inst, &req, Some(&req.clone())),
            UpdateDecision::InProgress("op-3".into())
        );
        let other = UpdateView {
            plan_id: "medium",
            ..req.clone()
        };
        assert!(matches!(
            decide_update(&inst, &req, Some(&other)),
            UpdateDecision::Concurrency(_)
        ));
        let provisioning = view(InstanceState::Provisioning, &p, None);
        assert!(matches!(
            decide_update(&provisioning, &req, None),
            UpdateDecision::Concurrency(_)
        ));
    }
}
