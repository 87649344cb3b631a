//! Running one operation: the task that drives it beside its lease renewal, loading it for
//! each step, and dispatching the step through the step table.

use super::ending::ended_changes;
use super::failure::StepError;
use super::Journal;
use crate::domain::operation::{OperationKind, OperationPayload, Step};
use crate::domain::policy;
use crate::domain::steps::{step_action, StepAction};
use crate::store::models::{BindingRow, InstanceRow, OperationRow};
use anyhow::anyhow;
use common::client::CallContext;
use common::osb::OperationState;
use std::sync::Arc;
use tracing::Instrument as _;

/// What the step loop does next.
pub(super) enum Flow {
    /// Run the (newly persisted) next step.
    Continue,
    /// The operation ended.
    Finished,
}

/// An operation loaded for one step.
pub(super) struct OpCtx {
    pub(super) op: OperationRow,
    pub(super) kind: OperationKind,
    pub(super) payload: OperationPayload,
    pub(super) instance: InstanceRow,
    pub(super) binding: Option<BindingRow>,
    pub(super) call: CallContext,
    pub(super) deadline_ms: i64,
    /// The maximum polling duration the deadline comes from, for descriptions.
    pub(super) max_secs: u64,
}

impl Journal {
    /// Drives `op_id` to its end while renewing its lease beside the steps; when renewal fails
    /// (cancelled or taken over) the step future is dropped mid-call, and the step's own
    /// lease-checked writes could not have landed anyway.
    pub(super) async fn drive(self: &Arc<Self>, op_id: &str) {
        let span = tracing::info_span!("operation", operation.id = %op_id);
        async {
            let outcome = tokio::select! {
                r = self.execute(op_id) => r,
                () = self.keep_lease(op_id) => Err(StepError::LeaseLost),
            };
            match outcome {
                Ok(()) => {}
                Err(StepError::LeaseLost) => {
                    tracing::info!("operation cancelled or taken over; this worker stops");
                    if let Err(e) = self.store.release_lease(op_id, &self.owner).await {
                        tracing::warn!(error = %e, "lease release failed");
                    }
                }
                Err(StepError::Store(e)) => tracing::error!(
                    error = %e,
                    "journal write failed; the operation resumes when its lease expires"
                ),
                Err(other) => tracing::error!(error = ?other, "operation stopped unexpectedly"),
            }
        }
        .instrument(span)
        .await
    }

    /// Loads `op_id` for its next step; `LeaseLost` once this process no longer runs it.
    async fn load(&self, op_id: &str) -> Result<Option<OpCtx>, StepError> {
        let Some(op) = self.store.operation(op_id).await? else {
            return Ok(None);
        };
        if op.state != OperationState::InProgress
            || op.lease_owner.as_deref() != Some(self.owner.as_str())
        {
            return Err(StepError::LeaseLost);
        }
        let kind = OperationKind::parse(&op.kind)
            .ok_or_else(|| StepError::Internal(anyhow!("unknown operation kind {:?}", op.kind)))?;
        let Some((instance, _)) = self.store.instance(&op.instance_id).await? else {
            return Err(StepError::Internal(anyhow!(
                "the operation's instance is missing"
            )));
        };
        let binding = match &op.binding_id {
            Some(id) => self.store.binding(id).await?.map(|(b, _)| b),
            None => None,
        };
        let payload = OperationPayload::decode(&op.payload);
        let plan_id = payload.plan_id.as_deref().unwrap_or(&instance.plan_id);
        let plan_max_secs = self
            .catalog
            .snapshot()
            .plan(&instance.service_id, plan_id)
            .ok()
            .and_then(|(_, plan)| plan.maximum_polling_duration);
        let max_secs = policy::max_operation_secs(plan_max_secs, self.settings.max_operation_secs);
        let call = CallContext {
            request_id: op.request_id.clone(),
            originating_identity: op.originating_identity.clone(),
        };
        Ok(Some(OpCtx {
            deadline_ms: policy::deadline_ms(op.created_at_ms, max_secs),
            max_secs,
            kind,
            payload,
            instance,
            binding,
            call,
            op,
        }))
    }

    /// Runs steps until the operation ends, or this worker must stop (lease lost, journal
    /// write failed); a failed step ends the operation as failed.
    async fn execute(&self, op_id: &str) -> Result<(), StepError> {
        loop {
            let ctx = match self.load(op_id).await {
                Ok(Some(ctx)) => ctx,
                Ok(None) => return Ok(()),
                Err(StepError::Internal(e)) => {
                    // A row this build cannot run would otherwise be claimed again forever.
                    tracing::error!(error = format!("{e:#}"), "operation cannot be run");
                    let description = format!("internal error; operation {op_id}");
                    let changes = ended_changes(OperationState::Failed, description, None);
                    self.store
                        .advance(op_id, &self.owner, changes, vec![])
                        .await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let span = tracing::info_span!(
                "step",
                operation.kind = ctx.kind.as_str(),
                step = %ctx.op.step,
                instance.id = %ctx.op.instance_id,
                binding.id = ctx.op.binding_id.as_deref().unwrap_or(""),
                request.id = ctx.op.request_id.as_deref().unwrap_or(""),
            );
            let result = self.run_step(&ctx).instrument(span.clone()).await;
            match result {
                Ok(Flow::Continue) => continue,
                Ok(Flow::Finished) => return Ok(()),
                Err(e @ (StepError::LeaseLost | StepError::Store(_))) => return Err(e),
                Err(failure) => {
                    return self.fail(&ctx, failure).instrument(span).await;
                }
            }
        }
    }

    /// Runs the current step of `ctx` as the step table says.
    async fn run_step(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let step = Step::parse(&ctx.op.step)
            .ok_or_else(|| StepError::Internal(anyhow!("unknown step {:?}", ctx.op.step)))?;
        tracing::debug!("running step");
        let Some(action) = step_action(ctx.kind, step) else {
            return Err(StepError::Internal(anyhow!(
                "no step {} for a {} operation",
                step.as_str(),
                ctx.kind.as_str()
            )));
        };
        match action {
            StepAction::RequestSpec => self.step_spec(ctx).await,
            StepAction::Deploy => self.step_deploy(ctx).await,
            StepAction::WaitForTask => self.step_wait(ctx).await,
            StepAction::DeleteDeployment => self.step_delete_deployment(ctx).await,
            StepAction::CreateBinding => self.step_bind(ctx).await,
            StepAction::DeleteBinding => self.step_unbind(ctx).await,
        }
    }
}
