//! The views flows get: the request (built by the use cases, without secrets), the decoded
//! originating identity, and how a stored operation ended.

use super::{FlowError, FlowKind, FlowRequest, FlowResponse};
use crate::domain::headers::parse_originating_identity;
use crate::domain::operation::OperationPayload;
use crate::service::RequestContext;
use crate::store::models::OperationRow;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::osb::{JsonObject, OperationState};
use serde::{Deserialize, Serialize};

/// The decoded `X-Broker-API-Originating-Identity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowIdentity {
    /// `cloudfoundry`, `kubernetes` or another platform's token.
    pub platform: String,
    /// The Cloud Foundry `user_id`, the Kubernetes `username`, or `-` for other platforms.
    pub user: String,
    /// The whole identity object the platform sent.
    pub value: JsonObject,
}

impl FlowIdentity {
    /// Decodes a header value (`<platform> <base64 of a JSON object>`); `None` when malformed
    /// (the edge refuses those before any flow runs).
    pub fn from_header(header: &str) -> Option<Self> {
        let parsed = parse_originating_identity(header).ok()?;
        let (_, encoded) = header.trim().split_once(' ')?;
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let value = serde_json::from_slice::<JsonObject>(&decoded).ok()?;
        Some(Self {
            platform: parsed.platform,
            user: parsed.user,
            value,
        })
    }
}

impl FlowRequest {
    /// The view of a request of `kind` on `instance_id` (and `binding_id`) from `ctx` (request
    /// id, originating identity, the `tracing_id` the route took out of the parameters); the
    /// offering, plan and context are added with [`Self::offering`] and [`Self::sent`].
    pub(crate) fn new(
        kind: FlowKind,
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: Option<&str>,
    ) -> Self {
        Self {
            kind,
            operation: None,
            instance_id: instance_id.to_string(),
            binding_id: binding_id.map(str::to_string),
            service_id: None,
            plan_id: None,
            context: None,
            tracing_id: ctx.tracing_id.clone(),
            originating_identity: ctx
                .originating_identity
                .as_deref()
                .and_then(FlowIdentity::from_header),
            request_id: ctx.request_id.clone(),
        }
    }

    /// With the offering and plan ids.
    pub(crate) fn offering(mut self, service_id: Option<&str>, plan_id: Option<&str>) -> Self {
        self.service_id = service_id.map(str::to_string);
        self.plan_id = plan_id.map(str::to_string);
        self
    }

    /// With the context the request sent.
    pub(crate) fn sent(mut self, context: Option<&JsonObject>) -> Self {
        self.context = context.cloned();
        self
    }
}

/// How an operation ended, as its flows see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ended {
    /// It succeeded: the completion flows run.
    Succeeded(FlowResponse),
    /// It failed: the error flows run.
    Failed(FlowError),
}

/// How `op` ended; `None` while it runs.
pub(super) fn ended(op: &OperationRow) -> Option<Ended> {
    match op.state {
        OperationState::InProgress => None,
        OperationState::Succeeded => Some(Ended::Succeeded(FlowResponse {
            state: OperationState::Succeeded,
            description: Some(op.description.clone()),
        })),
        OperationState::Failed => Some(Ended::Failed(FlowError {
            status: OperationPayload::decode(&op.payload).error_status,
            description: op.description.clone(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_identity_is_decoded_with_its_user_and_whole_object() {
        let value = json!({"user_id": "683ea748", "extra": 1});
        let header = format!("cloudfoundry {}", STANDARD.encode(value.to_string()));
        let identity = FlowIdentity::from_header(&header).unwrap();
        assert_eq!(identity.platform, "cloudfoundry");
        assert_eq!(identity.user, "683ea748");
        assert_eq!(serde_json::Value::Object(identity.value), value);
        assert_eq!(FlowIdentity::from_header("cloudfoundry !!"), None);
    }
}
