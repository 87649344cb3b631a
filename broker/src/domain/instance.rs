//! Service instance states and the decisions provision, update, deprovision and fetch lead to.

mod provision;
mod update;

pub use provision::{decide_provision, ProvisionAsk, ProvisionDecision};
pub use update::{decide_update, running_update, UpdateAsk, UpdateDecision, UpdateView};

use super::identity::Placement;
use super::operation::OperationKind;
use super::{Attributes, RunningOperation};

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

/// Instances and requests the decisions are tested with.
#[cfg(test)]
mod fixtures {
    use super::*;
    use common::osb::JsonObject;

    pub(super) fn params(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    pub(super) fn view<'a>(
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
}

#[cfg(test)]
mod tests {
    use super::fixtures::view;
    use super::*;
    use common::osb::JsonObject;

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
