//! Writing step results, and the one place an operation ends: its final state, description
//! and payload, its lease released, and the state [`end_state`] gives its instance or
//! binding, together with whatever else the last step changes there.

use super::failure::{failure_description, StepError};
use super::run::{Flow, OpCtx};
use super::Journal;
use crate::domain::ending::{end_state, EndState};
use crate::domain::operation::{OperationPayload, Step};
use crate::store::models::{BindingChanges, InstanceChanges, OperationChanges};
use crate::store::{now_ms, Effect};
use common::osb::OperationState;

/// The operation row of an operation that ended in `state` (succeeded or failed) with
/// `description`: lease released, end time set, a succeeded one at the `done` step, and the
/// final payload when one is given.
pub(super) fn ended_changes(
    state: OperationState,
    description: String,
    payload: Option<&OperationPayload>,
) -> OperationChanges {
    OperationChanges {
        state: Some(state.into()),
        description: Some(description),
        step: (state == OperationState::Succeeded).then(|| Step::Done.as_str().into()),
        payload: payload.map(OperationPayload::encode),
        lease_owner: Some(None),
        lease_expires_ms: Some(None),
        finished_at_ms: Some(Some(now_ms())),
        ..Default::default()
    }
}

/// What the last step changes on the instance or binding besides its state.
#[derive(Debug, Default)]
pub(super) struct Ending {
    /// Changes to the operation's instance.
    pub(super) instance: Option<InstanceChanges>,
    /// Changes to the operation's binding.
    pub(super) binding: Option<BindingChanges>,
    /// Further effects, written after those two.
    pub(super) more: Vec<Effect>,
}

impl Ending {
    /// The effects of ending `ctx`'s operation in `state`: the step's own changes with the
    /// end state of the instance or binding set (a binding operation whose binding is gone
    /// changes no binding).
    fn effects(mut self, ctx: &OpCtx, state: OperationState) -> Vec<Effect> {
        match end_state(ctx.kind, state) {
            Some(EndState::Instance(s)) => {
                self.instance.get_or_insert_with(Default::default).state = Some(s)
            }
            Some(EndState::Binding(s)) => {
                self.binding.get_or_insert_with(Default::default).state = Some(s)
            }
            None => {}
        }
        let mut effects = Vec::with_capacity(2 + self.more.len());
        if let Some(changes) = self.instance {
            effects.push(Effect::Instance {
                id: ctx.instance.id.clone(),
                changes,
            });
        }
        if let (Some(changes), Some(binding)) = (self.binding, &ctx.binding) {
            effects.push(Effect::Binding {
                id: binding.id.clone(),
                changes,
            });
        }
        effects.extend(self.more);
        effects
    }
}

impl Journal {
    /// Writes a step result; a lost lease stops the worker.
    pub(super) async fn advance(
        &self,
        ctx: &OpCtx,
        changes: OperationChanges,
        effects: Vec<Effect>,
    ) -> Result<(), StepError> {
        if self
            .store
            .advance(&ctx.op.id, &self.owner, changes, effects)
            .await?
        {
            Ok(())
        } else {
            Err(StepError::LeaseLost)
        }
    }

    /// Moves to `step` with a new description and payload.
    pub(super) async fn next_step(
        &self,
        ctx: &OpCtx,
        step: Step,
        description: String,
        payload: &OperationPayload,
        effects: Vec<Effect>,
    ) -> Result<Flow, StepError> {
        let changes = OperationChanges {
            step: Some(step.as_str().into()),
            description: Some(description),
            payload: Some(payload.encode()),
            ..Default::default()
        };
        self.advance(ctx, changes, effects).await?;
        Ok(Flow::Continue)
    }

    /// Ends the operation in `state`, with what the last step changes, in one write.
    async fn end(
        &self,
        ctx: &OpCtx,
        state: OperationState,
        description: String,
        payload: &OperationPayload,
        ending: Ending,
    ) -> Result<(), StepError> {
        let changes = ended_changes(state, description, Some(payload));
        self.advance(ctx, changes, ending.effects(ctx, state)).await
    }

    /// Ends the operation successfully, releasing the lease.
    pub(super) async fn succeed(
        &self,
        ctx: &OpCtx,
        payload: &OperationPayload,
        ending: Ending,
    ) -> Result<Flow, StepError> {
        let description = ctx.kind.success_description().to_string();
        self.end(ctx, OperationState::Succeeded, description, payload, ending)
            .await?;
        tracing::info!(
            operation.kind = ctx.kind.as_str(),
            duration_ms = now_ms() - ctx.op.created_at_ms,
            "operation succeeded"
        );
        Ok(Flow::Finished)
    }

    /// Ends the operation as failed with a user-facing description, releasing the lease.
    pub(super) async fn fail(&self, ctx: &OpCtx, failure: StepError) -> Result<(), StepError> {
        let mut payload = ctx.payload.clone();
        payload.new_spec_enc = None;
        let request_id = ctx.op.request_id.as_deref().unwrap_or(&ctx.op.id);
        let description = failure_description(failure, request_id, &mut payload)?;
        tracing::warn!(
            operation.kind = ctx.kind.as_str(),
            description = %description,
            "operation failed"
        );
        let state = OperationState::Failed;
        self.end(ctx, state, description, &payload, Ending::default())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::binding::BindingState;
    use crate::domain::instance::InstanceState;
    use crate::domain::operation::{OperationKind, OperationPayload};
    use crate::store::models::{BindingRow, InstanceRow, OperationRow};
    use common::client::CallContext;

    fn ctx(kind: OperationKind, binding: bool) -> OpCtx {
        let instance = InstanceRow::bare("i1", "svc", "small", InstanceState::Ready, 1);
        let binding = binding
            .then(|| BindingRow::bare("b1", "i1", "svc", "small", BindingState::Creating, 1));
        let op = OperationRow {
            id: "op1".into(),
            instance_id: "i1".into(),
            binding_id: binding.as_ref().map(|b| b.id.clone()),
            kind: kind.as_str().into(),
            state: OperationState::InProgress,
            description: String::new(),
            step: kind.first_step().as_str().into(),
            payload: "{}".into(),
            request_id: None,
            originating_identity: None,
            lease_owner: Some("me".into()),
            lease_expires_ms: Some(2),
            attempts: 1,
            created_at_ms: 1,
            updated_at_ms: 1,
            finished_at_ms: None,
        };
        OpCtx {
            op,
            kind,
            payload: OperationPayload::default(),
            instance,
            binding,
            call: CallContext::default(),
            deadline_ms: 10,
            max_secs: 1,
        }
    }

    #[test]
    fn a_succeeded_provision_makes_its_instance_ready_together_with_the_step_changes() {
        let ending = Ending {
            instance: Some(InstanceChanges {
                endpoints: Some(Some("[]".into())),
                ..Default::default()
            }),
            ..Ending::default()
        };
        let effects = ending.effects(
            &ctx(OperationKind::Provision, false),
            OperationState::Succeeded,
        );
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Instance { id, changes }]
                    if id == "i1"
                        && changes.state == Some(InstanceState::Ready)
                        && changes.endpoints == Some(Some("[]".into()))
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn a_succeeded_deprovision_deletes_the_instance_before_its_bindings() {
        let ending = Ending {
            instance: Some(InstanceChanges::default()),
            more: vec![Effect::DeleteBindingsOf {
                instance_id: "i1".into(),
            }],
            ..Ending::default()
        };
        let effects = ending.effects(
            &ctx(OperationKind::Deprovision, false),
            OperationState::Succeeded,
        );
        assert!(
            matches!(
                effects.as_slice(),
                [
                    Effect::Instance { changes, .. },
                    Effect::DeleteBindingsOf { .. }
                ] if changes.state == Some(InstanceState::Deleted)
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn a_failed_update_changes_nothing_but_a_failed_provision_fails_the_instance() {
        let update =
            Ending::default().effects(&ctx(OperationKind::Update, false), OperationState::Failed);
        assert!(update.is_empty(), "{update:?}");
        let provision = Ending::default().effects(
            &ctx(OperationKind::Provision, false),
            OperationState::Failed,
        );
        assert!(
            matches!(
                provision.as_slice(),
                [Effect::Instance { changes, .. }] if changes.state == Some(InstanceState::Failed)
            ),
            "{provision:?}"
        );
    }

    #[test]
    fn a_failed_bind_fails_its_binding_and_one_whose_binding_is_gone_changes_nothing() {
        let effects =
            Ending::default().effects(&ctx(OperationKind::Bind, true), OperationState::Failed);
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Binding { id, changes }]
                    if id == "b1" && changes.state == Some(BindingState::Failed)
            ),
            "{effects:?}"
        );
        let gone =
            Ending::default().effects(&ctx(OperationKind::Unbind, false), OperationState::Failed);
        assert!(gone.is_empty(), "{gone:?}");
    }

    #[test]
    fn an_ended_operation_releases_its_lease_and_only_a_success_reaches_the_done_step() {
        let done = ended_changes(OperationState::Succeeded, "ready".into(), None);
        assert_eq!(done.state, Some(OperationState::Succeeded.into()));
        assert_eq!(done.step.as_deref(), Some("done"));
        assert_eq!(done.lease_owner, Some(None));
        assert_eq!(done.lease_expires_ms, Some(None));
        assert!(matches!(done.finished_at_ms, Some(Some(_))));
        assert_eq!(done.payload, None);
        let failed = ended_changes(
            OperationState::Failed,
            "bad".into(),
            Some(&OperationPayload::default()),
        );
        assert_eq!(failed.step, None);
        assert_eq!(failed.payload.as_deref(), Some("{}"));
    }
}
