//! Operations of the journal: their kinds, the steps each kind goes through, the data they
//! carry between steps, and how a person sees them on last_operation.

use common::osb::{JsonObject, LastOperationResponse, OperationState};
use serde::{Deserialize, Serialize};

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Create an instance.
    Provision,
    /// Change an instance's plan or parameters.
    Update,
    /// Delete an instance.
    Deprovision,
    /// Create a binding.
    Bind,
    /// Delete a binding.
    Unbind,
}

impl OperationKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Update => "update",
            Self::Deprovision => "deprovision",
            Self::Bind => "bind",
            Self::Unbind => "unbind",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "provision" => Some(Self::Provision),
            "update" => Some(Self::Update),
            "deprovision" => Some(Self::Deprovision),
            "bind" => Some(Self::Bind),
            "unbind" => Some(Self::Unbind),
            _ => None,
        }
    }

    /// The step a new operation of this kind starts with.
    pub fn first_step(self) -> Step {
        match self {
            Self::Provision | Self::Update => Step::Spec,
            Self::Deprovision | Self::Unbind => Step::Delete,
            Self::Bind => Step::Create,
        }
    }

    /// Whether the operation acts on a binding rather than on the instance.
    pub fn is_binding(self) -> bool {
        matches!(self, Self::Bind | Self::Unbind)
    }

    /// The description a new operation starts with.
    pub fn initial_description(self) -> &'static str {
        match self {
            Self::Provision => "provisioning",
            Self::Update => "updating",
            Self::Deprovision => "deprovisioning",
            Self::Bind => "creating binding",
            Self::Unbind => "deleting binding",
        }
    }

    /// The description of a successful end.
    pub fn success_description(self) -> &'static str {
        match self {
            Self::Provision | Self::Update => "ready",
            Self::Deprovision => "deleted",
            Self::Bind => "binding ready",
            Self::Unbind => "binding deleted",
        }
    }
}

/// The persisted step of an operation; a restarted broker resumes at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask the SPI for the deployment spec (provision, update).
    Spec,
    /// Hand the spec to the deployer (provision, update).
    Deploy,
    /// Poll the deployer task (provision, update, deprovision).
    Wait,
    /// Delete the deployment or the binding (deprovision, unbind).
    Delete,
    /// Create the binding credentials (bind).
    Create,
    /// Nothing left to do.
    Done,
}

impl Step {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Deploy => "deploy",
            Self::Wait => "wait",
            Self::Delete => "delete",
            Self::Create => "create",
            Self::Done => "done",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spec" => Some(Self::Spec),
            "deploy" => Some(Self::Deploy),
            "wait" => Some(Self::Wait),
            "delete" => Some(Self::Delete),
            "create" => Some(Self::Create),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// Data an operation carries between its steps (stored as JSON; no plaintext secret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationPayload {
    /// Update: the target plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Update: the parameters sent (merged into the current ones when it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Update: the requested maintenance version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_version: Option<String>,
    /// Update: the context sent with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<JsonObject>,
    /// What the SPI said the deployment does ("creating PostgreSQL 15 cluster").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spi_description: Option<String>,
    /// Update: the new deployment spec, encrypted, applied when the update succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_spec_enc: Option<String>,
    /// The deployer task being waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The HTTP status of a refusal that ended the operation (passed through by bind/unbind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// The `tracing_id` parameter of the request that started it (taken out of the parameters
    /// the SPI sees; copied into the operation's webhook events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_id: Option<String>,
}

impl OperationPayload {
    /// Decodes a stored payload (an unreadable one counts as empty).
    pub fn decode(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    /// Encodes for storage.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Merges update parameters into the current ones: top-level keys are replaced, a `null`
/// removes the key.
pub fn merge_parameters(current: &JsonObject, update: &JsonObject) -> JsonObject {
    let mut merged = current.clone();
    for (key, value) in update {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The description shown while waiting for the deployer: "<SPI description>: <progress>".
pub fn progress_description(spi_description: Option<&str>, progress: &str) -> String {
    match (spi_description.filter(|s| !s.is_empty()), progress.trim()) {
        (Some(spi), "") => spi.to_string(),
        (Some(spi), p) => format!("{spi}: {p}"),
        (None, "") => "in progress".to_string(),
        (None, p) => p.to_string(),
    }
}

/// The last_operation answer for an operation of `kind` in `state`.
pub fn last_operation_view(
    kind: OperationKind,
    state: OperationState,
    description: Option<&str>,
) -> LastOperationResponse {
    let description = description
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            match state {
                OperationState::InProgress => kind.initial_description(),
                OperationState::Succeeded => kind.success_description(),
                OperationState::Failed => "failed",
            }
            .to_string()
        });
    let (instance_usable, update_repeatable) = match (kind, state) {
        // A failed update leaves the instance as it was, and it may be tried again.
        (OperationKind::Update, OperationState::Failed) => (Some(true), Some(true)),
        // A failed deprovision leaves an instance in an unknown state.
        (OperationKind::Deprovision, OperationState::Failed) => (Some(false), None),
        _ => (None, None),
    };
    LastOperationResponse {
        state,
        description: Some(description),
        instance_usable,
        update_repeatable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn kinds_and_steps_round_trip_through_their_stored_spelling() {
        for kind in [
            OperationKind::Provision,
            OperationKind::Update,
            OperationKind::Deprovision,
            OperationKind::Bind,
            OperationKind::Unbind,
        ] {
            assert_eq!(OperationKind::parse(kind.as_str()), Some(kind));
            let step = kind.first_step();
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(OperationKind::parse("backup"), None);
    }

    #[test]
    fn update_parameters_replace_top_level_keys_and_null_removes_one() {
        let current = obj(json!({"a": 1, "b": {"x": 1}, "c": true}));
        let update = obj(json!({"b": {"y": 2}, "c": null, "d": "new"}));
        assert_eq!(
            merge_parameters(&current, &update),
            obj(json!({"a": 1, "b": {"y": 2}, "d": "new"}))
        );
    }

    #[test]
    fn progress_joins_the_spi_description_and_the_deployer_progress() {
        assert_eq!(
            progress_description(Some("creating PostgreSQL 15 cluster"), "starting server"),
            "creating PostgreSQL 15 cluster: starting server"
        );
        assert_eq!(progress_description(None, ""), "in progress");
        assert_eq!(progress_description(Some("x"), " "), "x");
    }

    #[test]
    fn a_failed_update_is_usable_and_repeatable_but_a_failed_provision_says_neither() {
        let update =
            last_operation_view(OperationKind::Update, OperationState::Failed, Some("bad"));
        assert_eq!(update.instance_usable, Some(true));
        assert_eq!(update.update_repeatable, Some(true));
        let provision = last_operation_view(
            OperationKind::Provision,
            OperationState::Failed,
            Some("bad"),
        );
        assert_eq!(provision.instance_usable, None);
        assert_eq!(provision.update_repeatable, None);
    }

    #[test]
    fn a_description_is_never_empty() {
        let view = last_operation_view(OperationKind::Bind, OperationState::Succeeded, Some(""));
        assert_eq!(view.description.as_deref(), Some("binding ready"));
    }

    #[test]
    fn a_payload_round_trips_and_garbage_decodes_as_empty() {
        let p = OperationPayload {
            task_id: Some("t1".into()),
            ..Default::default()
        };
        assert_eq!(OperationPayload::decode(&p.encode()), p);
        assert_eq!(
            OperationPayload::decode("not json"),
            OperationPayload::default()
        );
    }
}
