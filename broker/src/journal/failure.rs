//! What went wrong in a step, and the user-facing description a failure ends the operation
//! with.

use crate::domain::operation::OperationPayload;
use crate::store::StoreError;

/// Why a step did not complete.
#[derive(Debug)]
pub(super) enum StepError {
    /// The lease is gone (cancelled, or taken over): stop and write nothing.
    LeaseLost,
    /// The journal could not be written: stop; the operation resumes once the lease expires.
    Store(StoreError),
    /// A callee refused (4xx); the description is user-facing.
    Refused { status: u16, description: String },
    /// The operation failed for a reason a person should read.
    Failed(String),
    /// Anything unexpected; logged, the operation fails with a generic description.
    Internal(anyhow::Error),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<crate::store::columns::JsonColumnError> for StepError {
    fn from(e: crate::store::columns::JsonColumnError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::crypto::CryptoError> for StepError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Internal(e.into())
    }
}

/// How a failed step ends its operation: the description a person reads, with the refusal
/// status recorded in `payload` (bind and unbind pass it through). An unexpected error is
/// logged and described by `request_id` only. `Err` gives back the errors that must not end
/// the operation (a lost lease, a journal write that failed).
pub(super) fn failure_description(
    failure: StepError,
    request_id: &str,
    payload: &mut OperationPayload,
) -> Result<String, StepError> {
    match failure {
        StepError::Refused {
            status,
            description,
        } => {
            payload.error_status = Some(status);
            Ok(description)
        }
        StepError::Failed(description) => Ok(description),
        StepError::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "operation failed unexpectedly");
            Ok(format!("internal error; request id {request_id}"))
        }
        e @ (StepError::LeaseLost | StepError::Store(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_description_and_records_its_status() {
        let mut payload = OperationPayload::default();
        let refused = StepError::Refused {
            status: 422,
            description: "no such role".into(),
        };
        let description = failure_description(refused, "req-1", &mut payload).unwrap();
        assert_eq!(description, "no such role");
        assert_eq!(payload.error_status, Some(422));
    }

    #[test]
    fn an_internal_error_is_described_by_the_request_id_alone() {
        let mut payload = OperationPayload::default();
        let internal = StepError::Internal(anyhow::anyhow!("password=hunter2"));
        let description = failure_description(internal, "req-1", &mut payload).unwrap();
        assert_eq!(description, "internal error; request id req-1");
        assert_eq!(payload.error_status, None);
    }

    #[test]
    fn a_lost_lease_does_not_end_the_operation() {
        let mut payload = OperationPayload::default();
        let lost = failure_description(StepError::LeaseLost, "req-1", &mut payload);
        assert!(matches!(lost, Err(StepError::LeaseLost)));
    }
}
