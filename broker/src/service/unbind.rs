//! The unbind use case: starts the deletion of a binding (halting its bind, if one runs) and
//! waits for it up to the synchronous window.

use super::bindings::failure;
use super::start::{NewOperation, Started};
use super::{Broker, RequestContext};
use crate::domain::binding::{decide_unbind, UnbindDecision};
use crate::domain::operation::OperationKind;
use crate::domain::request::required;
use crate::error::BrokerError;
use crate::flows::{FlowKind, FlowRequest};
use common::osb::OperationState;

/// How an unbind request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbindOutcome {
    /// Deleted: 200 `{}`.
    Deleted,
    /// Still being deleted (the client accepts async): 202.
    Accepted {
        /// The OSB operation.
        operation: String,
    },
}

impl Broker {
    /// `DELETE /v2/service_instances/{id}/service_bindings/{bid}`.
    pub async fn unbind(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: &str,
        service_id: Option<String>,
        plan_id: Option<String>,
        accepts_incomplete: bool,
    ) -> Result<UnbindOutcome, BrokerError> {
        let service_id = required(service_id, "service_id")?;
        let plan_id = required(plan_id, "plan_id")?;
        let existing = self.load_binding(binding_id).await?;
        let cancel = match decide_unbind(existing.as_ref().map(|b| b.view()).as_ref(), instance_id)
        {
            UnbindDecision::Gone => return Err(BrokerError::Gone),
            UnbindDecision::InProgress(operation) => {
                return self.await_unbind(operation, accepts_incomplete).await
            }
            UnbindDecision::Begin { cancel } => cancel,
        };
        let flow = FlowRequest::new(FlowKind::Unbind, ctx, instance_id, Some(binding_id))
            .offering(Some(&service_id), Some(&plan_id));
        let new = NewOperation {
            binding_id: Some(binding_id),
            flow: Some(flow),
            ..NewOperation::new(OperationKind::Unbind, instance_id, "unbind accepted")
        };
        match self
            .start_operation(ctx, new, |op| self.store.begin_unbind(op, cancel))
            .await?
        {
            Started::Running(operation) => self.await_unbind(operation, accepts_incomplete).await,
            Started::Exists | Started::Busy(_) => Err(BrokerError::Concurrency(
                "another operation is in progress on this service binding; retry after it ends"
                    .into(),
            )),
        }
    }

    async fn await_unbind(
        &self,
        operation: String,
        accepts_incomplete: bool,
    ) -> Result<UnbindOutcome, BrokerError> {
        match self
            .journal
            .wait_finished(&operation, self.worker.sync_timeout())
            .await?
        {
            Some(op) if op.state == OperationState::Succeeded => Ok(UnbindOutcome::Deleted),
            Some(op) => Err(failure(&op)),
            None if accepts_incomplete => Ok(UnbindOutcome::Accepted { operation }),
            // The deletion goes on; a repeated DELETE joins it.
            None => Err(BrokerError::AsyncRequired),
        }
    }
}
