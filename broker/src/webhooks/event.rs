//! The callback event: its kind (`<operation>.<phase>`), the JSON body built from the rows of
//! the operation that caused it, and the kind patterns endpoints subscribe with. A body never
//! holds a secret: no credentials, no deployment spec, no parameter (`tracing_id` is taken out
//! of the request's parameters into the operation's payload, see [`take_tracing_id`]).

use crate::domain::binding::format_timestamp;
use crate::domain::operation::OperationPayload;
use crate::store::models::{BindingRow, InstanceRow, OperationRow};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::osb::OperationState;
use serde_json::{json, Map, Value};

/// The operation kinds an event can be about, as spelled in event kinds.
pub const OPERATION_KINDS: [&str; 5] = ["provision", "update", "deprovision", "bind", "unbind"];
/// The phases an event can report, as spelled in event kinds.
pub const PHASES: [&str; 3] = ["started", "succeeded", "failed"];
/// The request parameter copied into events (the only one).
pub const TRACING_ID: &str = "tracing_id";

/// Which moment of an operation an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The operation was accepted (stored in progress).
    Started,
    /// The operation ended (its stored state says how).
    Ended,
}

/// An event ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event id, the same in every delivery attempt and for every endpoint.
    pub id: String,
    /// `<operation>.<started|succeeded|failed>`.
    pub kind: String,
    /// The JSON body sent (and signed) as it is.
    pub body: String,
}

/// What an event is built from: the operation and its instance and binding as the transaction
/// that caused the event leaves them.
#[derive(Debug, Clone, Copy)]
pub struct EventSource<'a> {
    /// The operation.
    pub op: &'a OperationRow,
    /// Its instance, if the row exists.
    pub instance: Option<&'a InstanceRow>,
    /// Its binding, for binding operations whose row exists.
    pub binding: Option<&'a BindingRow>,
}

/// The event kind of `op_kind` in `phase`, an ended operation's `state` telling success.
pub fn event_kind(op_kind: &str, phase: Phase, state: OperationState) -> String {
    let phase = match (phase, state) {
        (Phase::Started, _) => "started",
        (Phase::Ended, OperationState::Succeeded) => "succeeded",
        (Phase::Ended, _) => "failed",
    };
    format!("{op_kind}.{phase}")
}

/// Whether `pattern` (`*`, `<operation>.*`, `*.<phase>` or an exact kind) matches `kind`.
pub fn kind_matches(pattern: &str, kind: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (Some((p_op, p_phase)), Some((op, phase))) =
        (pattern.split_once('.'), kind.split_once('.'))
    else {
        return false;
    };
    (p_op == "*" || p_op == op) && (p_phase == "*" || p_phase == phase)
}

/// Checks one subscription pattern; the error says what is allowed.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let valid = pattern.split_once('.').is_some_and(|(op, phase)| {
        (op == "*" || OPERATION_KINDS.contains(&op)) && (phase == "*" || PHASES.contains(&phase))
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not an event kind: use `*`, or `<operation>.<phase>` with operation \
             one of {} (or `*`) and phase one of {} (or `*`)",
            OPERATION_KINDS.join(", "),
            PHASES.join(", ")
        ))
    }
}

/// Takes the `tracing_id` parameter out of a request's parameters (the SPI never sees it; the
/// operation keeps it for its events): a string, or a number as its text. Parameters left
/// empty by its removal count as not sent.
pub fn take_tracing_id(parameters: &mut Option<Map<String, Value>>) -> Option<String> {
    let map = parameters.as_mut()?;
    let taken = match map.get(TRACING_ID)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    map.remove(TRACING_ID);
    if map.is_empty() {
        *parameters = None;
    }
    Some(taken)
}

/// The originating identity header as `{platform, value}`, the value decoded from Base64 (it
/// was validated when the request came in; an undecodable one is passed as it was).
fn originating_identity(header: Option<&str>) -> Value {
    let Some((platform, value)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return Value::Null;
    };
    let decoded = STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or_else(|| Value::String(value.trim().to_string()));
    json!({ "platform": platform, "value": decoded })
}

/// Builds the event `id` of `src`'s operation in `phase`, at `now_ms`.
pub fn build(src: EventSource<'_>, phase: Phase, id: String, now_ms: i64) -> Event {
    let op = src.op;
    let kind = event_kind(&op.kind, phase, op.state);
    let payload = OperationPayload::decode(&op.payload);
    let (service_id, plan_id) = match (src.binding, src.instance) {
        (Some(b), _) => (Some(b.service_id.as_str()), Some(b.plan_id.as_str())),
        (None, Some(i)) => (Some(i.service_id.as_str()), Some(i.plan_id.as_str())),
        (None, None) => (None, None),
    };
    // An update reports the plan it moves to.
    let plan_id = payload.plan_id.as_deref().or(plan_id);
    let body = json!({
        "id": id,
        "kind": kind,
        "time": format_timestamp(now_ms),
        "time_ms": now_ms,
        "operation": { "id": op.id, "kind": op.kind },
        "state": op.state.as_str(),
        "description": op.description,
        "instance_id": op.instance_id,
        "binding_id": op.binding_id,
        "service_id": service_id,
        "plan_id": plan_id,
        "request_id": op.request_id,
        "originating_identity": originating_identity(op.originating_identity.as_deref()),
        "tracing_id": payload.tracing_id,
    });
    Event {
        id,
        kind,
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::binding::BindingState;
    use crate::domain::instance::InstanceState;

    fn op(kind: &str, state: OperationState, payload: &str) -> OperationRow {
        OperationRow {
            id: "op1".into(),
            instance_id: "i1".into(),
            binding_id: (kind == "bind").then(|| "b1".to_string()),
            kind: kind.into(),
            state,
            description: "creating".into(),
            step: "spec".into(),
            payload: payload.into(),
            request_id: Some("req-1".into()),
            originating_identity: Some(format!(
                "cloudfoundry {}",
                STANDARD.encode(r#"{"user_id":"u-7"}"#)
            )),
            lease_owner: None,
            lease_expires_ms: None,
            attempts: 1,
            created_at_ms: 1,
            updated_at_ms: 1,
            finished_at_ms: None,
        }
    }

    #[test]
    fn kinds_name_the_operation_and_its_phase_and_patterns_select_them() {
        let started = event_kind("bind", Phase::Started, OperationState::InProgress);
        assert_eq!(started, "bind.started");
        assert_eq!(
            event_kind("update", Phase::Ended, OperationState::Failed),
            "update.failed"
        );
        for (pattern, kind, wanted) in [
            ("*", "bind.started", true),
            ("bind.*", "bind.failed", true),
            ("*.failed", "provision.failed", true),
            ("*.failed", "provision.succeeded", false),
            ("provision.succeeded", "provision.succeeded", true),
            ("unbind.*", "bind.started", false),
        ] {
            assert_eq!(kind_matches(pattern, kind), wanted, "{pattern} {kind}");
        }
        assert!(check_pattern("deprovision.*").is_ok());
        assert!(check_pattern("*.started").is_ok());
        let bad = check_pattern("provision.done").unwrap_err();
        assert!(bad.contains("provision.done"), "{bad}");
        assert!(check_pattern("launch").is_err());
    }

    #[test]
    fn a_body_carries_the_ids_identity_and_tracing_id_but_no_other_parameter() {
        let mut instance = InstanceRow::bare("i1", "svc", "small", InstanceState::Provisioning, 1);
        instance.parameters = r#"{"password":"hunter2"}"#.into();
        instance.deployment_spec_enc = Some("v1:k1:c2VjcmV0".into());
        let row = op(
            "provision",
            OperationState::InProgress,
            r#"{"tracing_id":"trace-9"}"#,
        );
        let src = EventSource {
            op: &row,
            instance: Some(&instance),
            binding: None,
        };
        let event = build(src, Phase::Started, "ev1".into(), 1_733_400_000_000);
        assert_eq!(event.kind, "provision.started");
        assert!(!event.body.contains("hunter2") && !event.body.contains("c2VjcmV0"));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["id"], "ev1");
        assert_eq!(body["tracing_id"], "trace-9");
        assert_eq!(body["service_id"], "svc");
        assert_eq!(body["plan_id"], "small");
        assert_eq!(body["state"], "in progress");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["binding_id"], Value::Null);
        assert_eq!(body["operation"]["id"], "op1");
        assert_eq!(body["time"], "2024-12-05T12:00:00.0Z");
        assert_eq!(
            body["originating_identity"],
            json!({"platform": "cloudfoundry", "value": {"user_id": "u-7"}})
        );
    }

    #[test]
    fn bind_and_update_events_name_their_binding_and_target_plan_and_no_parameter() {
        let instance = InstanceRow::bare("i1", "svc", "small", InstanceState::Ready, 1);
        let mut binding = BindingRow::bare("b1", "i1", "svc", "small", BindingState::Ready, 1);
        binding.parameters = r#"{"role":"reader"}"#.into();
        binding.credentials_enc = Some("v1:k1:Y3JlZHM=".into());
        let row = op("bind", OperationState::Succeeded, r#"{"tracing_id":"42"}"#);
        let src = EventSource {
            op: &row,
            instance: Some(&instance),
            binding: Some(&binding),
        };
        let event = build(src, Phase::Ended, "ev2".into(), 0);
        assert_eq!(event.kind, "bind.succeeded");
        assert!(!event.body.contains("Y3JlZHM=") && !event.body.contains("reader"));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(
            (body["tracing_id"].clone(), body["binding_id"].clone()),
            (json!("42"), json!("b1"))
        );

        let update = op(
            "update",
            OperationState::Failed,
            r#"{"plan_id":"large","parameters":{"size":3},"tracing_id":"t-u"}"#,
        );
        let src = EventSource {
            op: &update,
            instance: Some(&instance),
            binding: None,
        };
        let body: Value =
            serde_json::from_str(&build(src, Phase::Ended, "ev3".into(), 0).body).unwrap();
        assert_eq!(body["kind"], "update.failed");
        assert_eq!(body["plan_id"], "large");
        assert_eq!(body["tracing_id"], "t-u");
        assert!(body.get("size").is_none() && !body.to_string().contains("size"));
    }

    #[test]
    fn the_tracing_id_is_taken_out_of_the_parameters() {
        let mut params = Some(
            json!({"tracing_id": "t-1", "size": 3})
                .as_object()
                .cloned()
                .unwrap(),
        );
        assert_eq!(take_tracing_id(&mut params).as_deref(), Some("t-1"));
        assert_eq!(params, json!({"size": 3}).as_object().cloned());
        let mut only = json!({"tracing_id": 7}).as_object().cloned();
        assert_eq!(take_tracing_id(&mut only).as_deref(), Some("7"));
        assert_eq!(only, None, "nothing else was sent");
        let mut odd = json!({"tracing_id": {"x": 1}}).as_object().cloned();
        assert_eq!(take_tracing_id(&mut odd), None);
        assert!(
            odd.unwrap().contains_key("tracing_id"),
            "left for the SPI to judge"
        );
        assert_eq!(take_tracing_id(&mut None), None);
    }
}
