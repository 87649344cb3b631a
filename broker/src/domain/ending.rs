//! What ending an operation does to the instance or binding it acts on: the state each kind
//! leaves behind when it succeeds or fails.

use super::binding::BindingState;
use super::instance::InstanceState;
use super::operation::OperationKind;
use common::osb::OperationState;

/// The state an ended operation gives its instance or binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndState {
    /// The instance moves to this state.
    Instance(InstanceState),
    /// The binding moves to this state.
    Binding(BindingState),
}

/// The state an operation of `kind` that ended in `state` leaves behind; `None` when the
/// instance keeps its state (any update, and an operation still in progress).
pub fn end_state(kind: OperationKind, state: OperationState) -> Option<EndState> {
    use EndState::{Binding, Instance};
    match (kind, state) {
        (_, OperationState::InProgress) => None,
        // An update leaves the instance usable either way (a failed one changes nothing).
        (OperationKind::Update, _) => None,
        (OperationKind::Provision, OperationState::Succeeded) => {
            Some(Instance(InstanceState::Ready))
        }
        (OperationKind::Deprovision, OperationState::Succeeded) => {
            Some(Instance(InstanceState::Deleted))
        }
        (OperationKind::Provision | OperationKind::Deprovision, OperationState::Failed) => {
            Some(Instance(InstanceState::Failed))
        }
        (OperationKind::Bind, OperationState::Succeeded) => Some(Binding(BindingState::Ready)),
        (OperationKind::Unbind, OperationState::Succeeded) => Some(Binding(BindingState::Deleted)),
        (OperationKind::Bind | OperationKind::Unbind, OperationState::Failed) => {
            Some(Binding(BindingState::Failed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provision_makes_the_instance_ready_or_failed() {
        assert_eq!(
            end_state(OperationKind::Provision, OperationState::Succeeded),
            Some(EndState::Instance(InstanceState::Ready))
        );
        assert_eq!(
            end_state(OperationKind::Provision, OperationState::Failed),
            Some(EndState::Instance(InstanceState::Failed))
        );
    }

    #[test]
    fn an_update_never_changes_the_instance_state() {
        for state in [OperationState::Succeeded, OperationState::Failed] {
            assert_eq!(end_state(OperationKind::Update, state), None);
        }
    }

    #[test]
    fn a_deprovision_deletes_the_instance_or_leaves_it_failed() {
        assert_eq!(
            end_state(OperationKind::Deprovision, OperationState::Succeeded),
            Some(EndState::Instance(InstanceState::Deleted))
        );
        assert_eq!(
            end_state(OperationKind::Deprovision, OperationState::Failed),
            Some(EndState::Instance(InstanceState::Failed))
        );
    }

    #[test]
    fn binding_operations_end_on_the_binding_and_a_failure_marks_it_failed() {
        assert_eq!(
            end_state(OperationKind::Bind, OperationState::Succeeded),
            Some(EndState::Binding(BindingState::Ready))
        );
        assert_eq!(
            end_state(OperationKind::Unbind, OperationState::Succeeded),
            Some(EndState::Binding(BindingState::Deleted))
        );
        for kind in [OperationKind::Bind, OperationKind::Unbind] {
            assert_eq!(
                end_state(kind, OperationState::Failed),
                Some(EndState::Binding(BindingState::Failed))
            );
        }
    }

    #[test]
    fn an_operation_in_progress_changes_nothing() {
        assert_eq!(
            end_state(OperationKind::Provision, OperationState::InProgress),
            None
        );
    }
}
