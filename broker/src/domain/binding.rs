//! Service binding states and the decisions bind, unbind and fetch lead to.

mod bind;

pub use bind::{check_instance_for_bind, BindAsk};

use super::identity::BindingTarget;
use super::operation::OperationKind;
use super::{Attributes, RunningOperation};

/// Lifecycle of a service binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum BindingState {
    /// The bind operation runs.
    Creating,
    /// Credentials exist.
    Ready,
    /// Creation or deletion failed; a DELETE cleans up, a PUT creates it again.
    Failed,
    /// The unbind operation runs.
    Deleting,
    /// Gone; the id may be bound again.
    Deleted,
}

impl BindingState {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored spelling (unknown values count as failed).
    pub fn parse(s: &str) -> Self {
        match s {
            "creating" => Self::Creating,
            "ready" => Self::Ready,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => Self::Failed,
        }
    }
}

/// A binding as the decisions see it.
#[derive(Debug, Clone)]
pub struct BindingView<'a> {
    /// The instance it belongs to.
    pub instance_id: &'a str,
    /// Current state.
    pub state: BindingState,
    /// What it was created with.
    pub attributes: Attributes<'a>,
    /// Who it was created for.
    pub target: BindingTarget,
    /// The binding operation in progress, if any.
    pub running: Option<RunningOperation>,
}

/// What a bind request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindDecision {
    /// A new binding (also for the id of a deleted or failed one).
    Create,
    /// The same binding exists: 200 with its credentials.
    AlreadyReady,
    /// The same binding is being created: 202 with this operation.
    InProgress(String),
    /// A binding with this id and other attributes exists: 409.
    Conflict(String),
    /// The binding is being deleted: 422 ConcurrencyError.
    Concurrency(String),
}

/// Decides a bind request for `instance_id` given the existing binding, if any. The id of a
/// deleted binding may be used again, on any instance: the spec asks for a conflict only
/// with a binding that "already exists or is being created".
pub fn decide_bind(
    existing: Option<&BindingView<'_>>,
    instance_id: &str,
    requested: &Attributes<'_>,
    target: &BindingTarget,
) -> BindDecision {
    let Some(existing) = existing else {
        return BindDecision::Create;
    };
    if existing.state == BindingState::Deleted {
        return BindDecision::Create;
    }
    if existing.instance_id != instance_id {
        let why = if existing.state == BindingState::Failed {
            "its creation failed; unbind it there first"
        } else {
            "unbind it there first or choose another binding id"
        };
        return BindDecision::Conflict(format!(
            "a service binding with this id belongs to another service instance ({}); {why}",
            existing.instance_id
        ));
    }
    if existing.state == BindingState::Failed && existing.running.is_none() {
        return BindDecision::Create;
    }
    if let Some(field) = existing.target.differs_from(target) {
        return BindDecision::Conflict(format!(
            "a service binding with this id already exists for another application ({field} differs)"
        ));
    }
    match existing.state {
        BindingState::Deleting | BindingState::Failed => BindDecision::Concurrency(
            "the service binding is being deleted; retry after that operation ends".into(),
        ),
        _ if !existing.attributes.identical(requested) => BindDecision::Conflict(
            "a service binding with this id already exists with different parameters".into(),
        ),
        BindingState::Creating => match &existing.running {
            Some(op) if op.kind == OperationKind::Bind => BindDecision::InProgress(op.id.clone()),
            _ => BindDecision::Concurrency(
                "the service binding is being processed by another operation; retry later".into(),
            ),
        },
        _ => BindDecision::AlreadyReady,
    }
}

/// What an unbind request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbindDecision {
    /// Unknown or deleted: 410.
    Gone,
    /// Already being deleted: wait for / answer with this operation.
    InProgress(String),
    /// Start an unbind, first cancelling the bind operation named here, if any.
    Begin {
        /// Bind operation to halt.
        cancel: Option<String>,
    },
}

/// Decides an unbind request for `instance_id`.
pub fn decide_unbind(existing: Option<&BindingView<'_>>, instance_id: &str) -> UnbindDecision {
    let Some(existing) = existing else {
        return UnbindDecision::Gone;
    };
    if existing.instance_id != instance_id || existing.state == BindingState::Deleted {
        return UnbindDecision::Gone;
    }
    match &existing.running {
        Some(op) if op.kind == OperationKind::Unbind => UnbindDecision::InProgress(op.id.clone()),
        // The spec: an unbind accepted during creation halts it and begins the deletion.
        Some(op) => UnbindDecision::Begin {
            cancel: Some(op.id.clone()),
        },
        None => UnbindDecision::Begin { cancel: None },
    }
}

/// Whether a fetch-binding request finds the binding (only a ready one of this instance).
pub fn fetchable(existing: Option<&BindingView<'_>>, instance_id: &str) -> bool {
    existing.is_some_and(|b| b.instance_id == instance_id && b.state == BindingState::Ready)
}

/// When a binding created at `created_ms` expires and from when it should be renewed, as
/// unix milliseconds, given its validity and renewal window in seconds (the window defaults to
/// a fifth of the validity and never reaches before the creation).
pub fn expiry(created_ms: i64, validity_secs: u64, renew_before_secs: Option<u64>) -> (i64, i64) {
    let validity_ms = i64::try_from(validity_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires = created_ms.saturating_add(validity_ms);
    let window_ms = renew_before_secs
        .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
        .unwrap_or(validity_ms / 5)
        .min(validity_ms);
    (expires, expires - window_ms)
}

/// Formats unix milliseconds as the spec's binding metadata timestamp,
/// `yyyy-mm-ddThh:mm:ss.sZ` (UTC, tenths of a second).
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let tenths = ms.rem_euclid(1000) / 100;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{tenths}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::osb::JsonObject;

    fn view<'a>(
        instance_id: &'a str,
        state: BindingState,
        parameters: &'a JsonObject,
        running: Option<(OperationKind, &str)>,
    ) -> BindingView<'a> {
        BindingView {
            instance_id,
            state,
            attributes: Attributes {
                service_id: "svc",
                plan_id: "small",
                parameters,
            },
            target: BindingTarget::default(),
            running: running.map(|(kind, id)| RunningOperation {
                id: id.into(),
                kind,
            }),
        }
    }

    fn req(parameters: &JsonObject) -> Attributes<'_> {
        Attributes {
            service_id: "svc",
            plan_id: "small",
            parameters,
        }
    }

    #[test]
    fn an_identical_repeat_bind_is_200_when_ready_and_202_while_creating() {
        let p = JsonObject::new();
        let ready = view("i1", BindingState::Ready, &p, None);
        assert_eq!(
            decide_bind(Some(&ready), "i1", &req(&p), &BindingTarget::default()),
            BindDecision::AlreadyReady
        );
        let creating = view(
            "i1",
            BindingState::Creating,
            &p,
            Some((OperationKind::Bind, "op")),
        );
        assert_eq!(
            decide_bind(Some(&creating), "i1", &req(&p), &BindingTarget::default()),
            BindDecision::InProgress("op".into())
        );
    }

    #[test]
    fn a_different_bind_or_one_on_another_instance_conflicts() {
        let p = JsonObject::new();
        let mut other = JsonObject::new();
        other.insert("role".into(), "ro".into());
        let ready = view("i1", BindingState::Ready, &p, None);
        assert!(matches!(
            decide_bind(Some(&ready), "i1", &req(&other), &BindingTarget::default()),
            BindDecision::Conflict(_)
        ));
        assert!(matches!(
            decide_bind(Some(&ready), "i2", &req(&p), &BindingTarget::default()),
            BindDecision::Conflict(_)
        ));
    }

    #[test]
    fn a_deleted_or_failed_binding_id_is_bound_again() {
        let p = JsonObject::new();
        for state in [BindingState::Deleted, BindingState::Failed] {
            let b = view("i1", state, &p, None);
            assert_eq!(
                decide_bind(Some(&b), "i1", &req(&p), &BindingTarget::default()),
                BindDecision::Create
            );
        }
        assert_eq!(
            decide_bind(None, "i1", &req(&p), &BindingTarget::default()),
            BindDecision::Create
        );
    }

    #[test]
    fn the_id_of_a_deleted_binding_may_be_used_on_another_instance_but_not_a_live_or_failed_one() {
        let p = JsonObject::new();
        let none = BindingTarget::default();
        let deleted = view("i1", BindingState::Deleted, &p, None);
        assert_eq!(
            decide_bind(Some(&deleted), "i2", &req(&p), &none),
            BindDecision::Create
        );
        for state in [BindingState::Ready, BindingState::Failed] {
            let b = view("i1", state, &p, None);
            match decide_bind(Some(&b), "i2", &req(&p), &none) {
                BindDecision::Conflict(d) => assert!(d.contains("i1"), "{d}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_repeat_bind_for_another_application_conflicts_even_while_creating() {
        let p = JsonObject::new();
        let mine = BindingTarget::new(Some("app-1".into()), None);
        let theirs = BindingTarget::new(Some("app-2".into()), None);
        for (state, running, same) in [
            (BindingState::Ready, None, BindDecision::AlreadyReady),
            (
                BindingState::Creating,
                Some((OperationKind::Bind, "op")),
                BindDecision::InProgress("op".into()),
            ),
        ] {
            let mut b = view("i1", state, &p, running);
            b.target = mine.clone();
            match decide_bind(Some(&b), "i1", &req(&p), &theirs) {
                BindDecision::Conflict(d) => assert!(d.contains("app_guid"), "{d}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(decide_bind(Some(&b), "i1", &req(&p), &mine), same);
        }
    }

    #[test]
    fn unbind_is_gone_for_unknown_deleted_or_foreign_bindings() {
        let p = JsonObject::new();
        assert_eq!(decide_unbind(None, "i1"), UnbindDecision::Gone);
        let deleted = view("i1", BindingState::Deleted, &p, None);
        assert_eq!(decide_unbind(Some(&deleted), "i1"), UnbindDecision::Gone);
        let foreign = view("i2", BindingState::Ready, &p, None);
        assert_eq!(decide_unbind(Some(&foreign), "i1"), UnbindDecision::Gone);
    }

    #[test]
    fn an_unbind_during_a_bind_cancels_it_and_a_repeat_unbind_joins_the_running_one() {
        let p = JsonObject::new();
        let creating = view(
            "i1",
            BindingState::Creating,
            &p,
            Some((OperationKind::Bind, "b-op")),
        );
        assert_eq!(
            decide_unbind(Some(&creating), "i1"),
            UnbindDecision::Begin {
                cancel: Some("b-op".into())
            }
        );
        let deleting = view(
            "i1",
            BindingState::Deleting,
            &p,
            Some((OperationKind::Unbind, "u-op")),
        );
        assert_eq!(
            decide_unbind(Some(&deleting), "i1"),
            UnbindDecision::InProgress("u-op".into())
        );
    }

    #[test]
    fn timestamps_follow_the_specs_pattern() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.0Z");
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29T00:00:00.0Z");
        assert_eq!(
            format_timestamp(1_574_098_431_250),
            "2019-11-18T17:33:51.2Z"
        );
        assert_eq!(
            format_timestamp(4_102_444_799_999),
            "2099-12-31T23:59:59.9Z"
        );
    }

    #[test]
    fn renewal_comes_before_expiry_and_never_before_creation() {
        assert_eq!(expiry(1_000, 100, None), (101_000, 81_000));
        assert_eq!(expiry(1_000, 100, Some(10)), (101_000, 91_000));
        assert_eq!(expiry(1_000, 100, Some(500)), (101_000, 1_000));
    }

    #[test]
    fn only_ready_bindings_of_the_instance_are_fetchable() {
        let p = JsonObject::new();
        assert!(fetchable(
            Some(&view("i1", BindingState::Ready, &p, None)),
            "i1"
        ));
        assert!(!fetchable(
            Some(&view("i1", BindingState::Creating, &p, None)),
            "i1"
        ));
        assert!(!fetchable(
            Some(&view("i2", BindingState::Ready, &p, None)),
            "i1"
        ));
        assert!(!fetchable(None, "i1"));
    }
}
