//! Asynchronous operations: the operation handle answer and last_operation.

use crate::ids::OperationId;
use serde::{Deserialize, Serialize};

/// Deprovision, unbind response body (200 `{}` or 202 with operation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncOperationResponse {
    /// Operation handle (async only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
}

/// State of an operation, spelled as the spec does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationState {
    /// Still running.
    #[serde(rename = "in progress")]
    InProgress,
    /// Finished successfully.
    #[serde(rename = "succeeded")]
    Succeeded,
    /// Finished with an error.
    #[serde(rename = "failed")]
    Failed,
}

impl OperationState {
    /// The spec's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the spec's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in progress" => Some(Self::InProgress),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// last_operation response body (instances and bindings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastOperationResponse {
    /// `in progress`, `succeeded` or `failed`.
    pub state: OperationState,
    /// Progress or error text a person can follow; non-empty if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Failed update or deprovision only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_usable: Option<bool>,
    /// Failed update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_repeatable: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_operation_states_use_the_specs_spelling() {
        let body = LastOperationResponse {
            state: OperationState::InProgress,
            description: Some("starting server".into()),
            instance_usable: None,
            update_repeatable: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"state": "in progress", "description": "starting server"})
        );
    }
}
