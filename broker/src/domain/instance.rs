//! Service instance states and the decisions provision, update, deprovision and fetch lead to.

use super::identity::Placement;
use super::operation::OperationKind;
use super::{Attributes, RunningOperation};
use common::osb::JsonObject;

/// Lifecycle of a service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum InstanceState {
    /// The provision operation runs.
    Provisioning,
    /// Usable (an update may be running).
    Ready,
    /// The provision (or a deprovision) failed; a DELETE cleans up.
    Failed,
    /// The deprovision operation runs.
    Deprovisioning,
    /// Gone; the id may be provisioned again.
    Deleted,
}

impl InstanceState {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deprovisioning => "deprovisioning",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored spelling (unknown values count as failed).
    pub fn parse(s: &str) -> Self {
        match s {
            "provisioning" => Self::Provisioning,
            "ready" => Self::Ready,
            "deprovisioning" => Self::Deprovisioning,
            "deleted" => Self::Deleted,
            _ => Self::Failed,
        }
    }
}

/// An instance as the decisions see it.
#[derive(Debug, Clone)]
pub struct InstanceView<'a> {
    /// Current state.
    pub state: InstanceState,
    /// What it was created with (or last updated to).
    pub attributes: Attributes<'a>,
    /// Its organization and space.
    pub placement: Placement,
    /// Current maintenance version.
    pub maintenance_version: Option<&'a str>,
    /// The instance operation in progress, if any.
    pub running: Option<RunningOperation>,
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
        &super::operation::merge_parameters(existing.attributes.parameters, p)
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

/// What a deprovision request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeprovisionDecision {
    /// Unknown or deleted: 410.
    Gone,
    /// Already being deprovisioned: 202 with this operation.
    InProgress(String),
    /// An update runs: 422 ConcurrencyError.
    Concurrency(String),
    /// Start a deprovision, first cancelling the provision operation named here, if any.
    Begin {
        /// Provision operation to halt.
        cancel: Option<String>,
    },
}

/// Decides a deprovision request.
pub fn decide_deprovision(existing: Option<&InstanceView<'_>>) -> DeprovisionDecision {
    let Some(existing) = existing else {
        return DeprovisionDecision::Gone;
    };
    if existing.state == InstanceState::Deleted {
        return DeprovisionDecision::Gone;
    }
    match &existing.running {
        Some(op) if op.kind == OperationKind::Deprovision => {
            DeprovisionDecision::InProgress(op.id.clone())
        }
        // The spec: a DELETE during provisioning halts the creation and begins the deletion.
        Some(op) if op.kind == OperationKind::Provision => DeprovisionDecision::Begin {
            cancel: Some(op.id.clone()),
        },
        Some(op) => DeprovisionDecision::Concurrency(format!(
            "another operation ({}) is in progress on this service instance; retry after it ends",
            op.kind.as_str()
        )),
        None => DeprovisionDecision::Begin { cancel: None },
    }
}

/// What a fetch-instance request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchDecision {
    /// 200 with the instance.
    Found,
    /// Unknown, deleted, failed, or still provisioning: 404.
    NotFound,
    /// Being updated: 422 ConcurrencyError.
    Concurrency,
}

/// Decides a fetch-instance request.
pub fn decide_fetch(existing: Option<&InstanceView<'_>>) -> FetchDecision {
    let Some(existing) = existing else {
        return FetchDecision::NotFound;
    };
    match existing.state {
        InstanceState::Provisioning | InstanceState::Failed | InstanceState::Deleted => {
            FetchDecision::NotFound
        }
        _ if existing
            .running
            .as_ref()
            .is_some_and(|op| op.kind == OperationKind::Update) =>
        {
            FetchDecision::Concurrency
        }
        _ => FetchDecision::Found,
    }
}

/// Whether bindings may be created on the instance now; the refusal says why.
pub fn check_bindable(existing: &InstanceView<'_>) -> Result<(), String> {
    if let Some(op) = &existing.running {
        return Err(format!(
            "an operation ({}) is in progress on the service instance; retry after it ends",
            op.kind.as_str()
        ));
    }
    match existing.state {
        InstanceState::Ready => Ok(()),
        state => Err(format!(
            "the service instance is {} and cannot be bound now",
            state.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    fn view<'a>(
        state: InstanceState,
        parameters: &'a JsonObject,
        running: Option<(OperationKind, &str)>,
    ) -> InstanceView<'a> {
        InstanceView {
            state,
            attributes: Attributes {
                service_id: "svc",
                plan_id: "small",
                parameters,
            },
            placement: Placement::of(None, Some("org"), Some("space")),
            maintenance_version: Some("1.0.0"),
            running: running.map(|(kind, id)| RunningOperation {
                id: id.into(),
                kind,
            }),
        }
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

    #[test]
    fn a_deprovision_during_provisioning_cancels_the_provision() {
        let p = JsonObject::new();
        let inst = view(
            InstanceState::Provisioning,
            &p,
            Some((OperationKind::Provision, "op-4")),
        );
        assert_eq!(
            decide_deprovision(Some(&inst)),
            DeprovisionDecision::Begin {
                cancel: Some("op-4".into())
            }
        );
    }

    #[test]
    fn deprovision_decisions_follow_the_running_operation() {
        let p = JsonObject::new();
        assert_eq!(decide_deprovision(None), DeprovisionDecision::Gone);
        let deleted = view(InstanceState::Deleted, &p, None);
        assert_eq!(
            decide_deprovision(Some(&deleted)),
            DeprovisionDecision::Gone
        );
        let going = view(
            InstanceState::Deprovisioning,
            &p,
            Some((OperationKind::Deprovision, "op-5")),
        );
        assert_eq!(
            decide_deprovision(Some(&going)),
            DeprovisionDecision::InProgress("op-5".into())
        );
        let updating = view(
            InstanceState::Ready,
            &p,
            Some((OperationKind::Update, "op-6")),
        );
        assert!(matches!(
            decide_deprovision(Some(&updating)),
            DeprovisionDecision::Concurrency(_)
        ));
        let ready = view(InstanceState::Ready, &p, None);
        assert_eq!(
            decide_deprovision(Some(&ready)),
            DeprovisionDecision::Begin { cancel: None }
        );
    }

    #[test]
    fn fetch_hides_instances_that_are_not_there_yet_and_refuses_during_updates() {
        let p = JsonObject::new();
        assert_eq!(decide_fetch(None), FetchDecision::NotFound);
        let provisioning = view(InstanceState::Provisioning, &p, None);
        assert_eq!(decide_fetch(Some(&provisioning)), FetchDecision::NotFound);
        let updating = view(
            InstanceState::Ready,
            &p,
            Some((OperationKind::Update, "op")),
        );
        assert_eq!(decide_fetch(Some(&updating)), FetchDecision::Concurrency);
        let ready = view(InstanceState::Ready, &p, None);
        assert_eq!(decide_fetch(Some(&ready)), FetchDecision::Found);
    }

    #[test]
    fn only_a_ready_idle_instance_is_bindable() {
        let p = JsonObject::new();
        assert!(check_bindable(&view(InstanceState::Ready, &p, None)).is_ok());
        assert!(check_bindable(&view(InstanceState::Provisioning, &p, None)).is_err());
        assert!(check_bindable(&view(
            InstanceState::Ready,
            &p,
            Some((OperationKind::Update, "op"))
        ))
        .is_err());
    }

    #[test]
    fn states_round_trip_through_their_stored_spelling() {
        for s in [
            InstanceState::Provisioning,
            InstanceState::Ready,
            InstanceState::Failed,
            InstanceState::Deprovisioning,
            InstanceState::Deleted,
        ] {
            assert_eq!(InstanceState::parse(s.as_str()), s);
        }
    }
}
