//! The step table of the journal: which action each persisted step of an operation runs,
//! and where an operation goes back to when the deployer forgot its task.

use super::operation::{OperationKind, Step};

/// What the journal does for one persisted step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    /// Ask the SPI for the deployment spec (provision, update).
    RequestSpec,
    /// Hand the spec to the deployer (provision, update).
    Deploy,
    /// Poll the deployer task until it ends (provision, update, deprovision).
    WaitForTask,
    /// Delete the instance's deployment (deprovision).
    DeleteDeployment,
    /// Create the binding's credentials through the SPI (bind).
    CreateBinding,
    /// Revoke the binding's credentials through the SPI (unbind).
    DeleteBinding,
}

/// The action `step` of a `kind` operation runs; `None` for a step that kind does not have
/// (including `Done`, which a running operation never is at).
pub fn step_action(kind: OperationKind, step: Step) -> Option<StepAction> {
    use OperationKind::{Bind, Deprovision, Provision, Unbind, Update};
    match (kind, step) {
        (Provision | Update, Step::Spec) => Some(StepAction::RequestSpec),
        (Provision | Update, Step::Deploy) => Some(StepAction::Deploy),
        (Provision | Update | Deprovision, Step::Wait) => Some(StepAction::WaitForTask),
        (Deprovision, Step::Delete) => Some(StepAction::DeleteDeployment),
        (Bind, Step::Create) => Some(StepAction::CreateBinding),
        (Unbind, Step::Delete) => Some(StepAction::DeleteBinding),
        _ => None,
    }
}

/// The step to repeat when the deployer no longer knows the task being waited for: the
/// delete for a deprovision, else the deploy (both idempotent by deployment name).
pub fn step_after_lost_task(kind: OperationKind) -> Step {
    match kind {
        OperationKind::Deprovision => Step::Delete,
        _ => Step::Deploy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [OperationKind; 5] = [
        OperationKind::Provision,
        OperationKind::Update,
        OperationKind::Deprovision,
        OperationKind::Bind,
        OperationKind::Unbind,
    ];

    #[test]
    fn every_kind_has_an_action_for_its_first_step() {
        for kind in KINDS {
            assert!(
                step_action(kind, kind.first_step()).is_some(),
                "{kind:?} cannot start"
            );
        }
    }

    #[test]
    fn provision_and_update_request_a_spec_deploy_it_and_wait() {
        for kind in [OperationKind::Provision, OperationKind::Update] {
            assert_eq!(step_action(kind, Step::Spec), Some(StepAction::RequestSpec));
            assert_eq!(step_action(kind, Step::Deploy), Some(StepAction::Deploy));
            assert_eq!(step_action(kind, Step::Wait), Some(StepAction::WaitForTask));
            assert_eq!(step_action(kind, Step::Delete), None);
            assert_eq!(step_action(kind, Step::Create), None);
        }
    }

    #[test]
    fn deprovision_deletes_the_deployment_then_waits() {
        let kind = OperationKind::Deprovision;
        assert_eq!(
            step_action(kind, Step::Delete),
            Some(StepAction::DeleteDeployment)
        );
        assert_eq!(step_action(kind, Step::Wait), Some(StepAction::WaitForTask));
        assert_eq!(step_action(kind, Step::Spec), None);
        assert_eq!(step_action(kind, Step::Deploy), None);
    }

    #[test]
    fn binding_operations_run_one_spi_call_and_never_wait_for_the_deployer() {
        assert_eq!(
            step_action(OperationKind::Bind, Step::Create),
            Some(StepAction::CreateBinding)
        );
        assert_eq!(
            step_action(OperationKind::Unbind, Step::Delete),
            Some(StepAction::DeleteBinding)
        );
        for kind in [OperationKind::Bind, OperationKind::Unbind] {
            assert_eq!(step_action(kind, Step::Wait), None);
            assert_eq!(step_action(kind, Step::Deploy), None);
        }
    }

    #[test]
    fn no_kind_runs_the_done_step() {
        for kind in KINDS {
            assert_eq!(step_action(kind, Step::Done), None);
        }
    }

    #[test]
    fn a_lost_task_repeats_the_delete_of_a_deprovision_and_the_deploy_otherwise() {
        assert_eq!(
            step_after_lost_task(OperationKind::Deprovision),
            Step::Delete
        );
        assert_eq!(step_after_lost_task(OperationKind::Provision), Step::Deploy);
        assert_eq!(step_after_lost_task(OperationKind::Update), Step::Deploy);
    }
}
