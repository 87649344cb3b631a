//! The failures of an SPI's requests, by kind of answer: [`ErrorKind`] gives each its status,
//! code and description in the error envelope of `service_edge::error`, where unexpected ones
//! are a 500 with a generic description, their detail logged once under the request id.

use crate::binding::Unavailable;
use crate::offering::Refusal;
use crate::request::RequestId;
use actix_web::http::StatusCode;
use service_edge::Failure;

/// What went wrong, by kind of answer.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// A refusal meant for the user (400).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such route (404).
    #[error("{0}")]
    NotFound(String),
    /// The instance cannot be reached now; the broker retries (503).
    #[error("{0}")]
    InstanceUnavailable(String),
    /// Anything else (500).
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<Unavailable> for ErrorKind {
    fn from(e: Unavailable) -> Self {
        Self::InstanceUnavailable(e.0)
    }
}

/// An error answer for one request.
pub type ApiError = service_edge::ApiError<ErrorKind>;

impl Failure for ErrorKind {
    fn bad_request(message: String) -> Self {
        Self::BadRequest(message)
    }

    fn route_not_found(method: &str, path: &str) -> Self {
        Self::NotFound(format!("no route {method} {path}"))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Refused(Refusal::InvalidParameters(_))
            | Self::Refused(Refusal::PlanChangeNotAllowed(_))
            | Self::Refused(Refusal::UnknownPlan(_))
            | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InstanceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Refused(Refusal::InvalidParameters(_)) => "InvalidParameters",
            Self::Refused(Refusal::PlanChangeNotAllowed(_)) => "PlanChangeNotAllowed",
            Self::Refused(Refusal::UnknownPlan(_)) => "UnknownPlan",
            Self::BadRequest(_) => "BadRequest",
            Self::NotFound(_) => "NotFound",
            Self::InstanceUnavailable(_) => "InstanceUnavailable",
            Self::Internal(_) => "InternalError",
        }
    }

    fn description(&self, request_id: &RequestId) -> String {
        match self {
            Self::Refused(
                Refusal::InvalidParameters(d)
                | Refusal::PlanChangeNotAllowed(d)
                | Refusal::UnknownPlan(d),
            )
            | Self::BadRequest(d)
            | Self::NotFound(d) => d.clone(),
            Self::InstanceUnavailable(_) => {
                "the service instance cannot be reached right now; try again later".to_string()
            }
            Self::Internal(_) => format!(
                "an internal error occurred; the operator can find it in the log under request id {request_id}"
            ),
        }
    }

    fn internal(&self) -> Option<&anyhow::Error> {
        match self {
            Self::Internal(e) => Some(e),
            _ => None,
        }
    }

    fn log_hidden_detail(&self, request_id: &RequestId) {
        if let Self::InstanceUnavailable(detail) = self {
            tracing::warn!(request.id = %request_id, error = %detail, "instance unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    fn rid() -> RequestId {
        RequestId("req-1".into())
    }

    #[test]
    fn refusals_are_400_with_the_users_message() {
        let e = ApiError::new(
            &rid(),
            Refusal::PlanChangeNotAllowed("plan change from medium to small…".into()),
        );
        assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
        let env = e.envelope();
        assert_eq!(env.error, "PlanChangeNotAllowed");
        assert_eq!(env.description, "plan change from medium to small…");
        assert_eq!(env.request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn internal_errors_hide_the_detail_and_name_the_request() {
        let e = ApiError::new(
            &rid(),
            ErrorKind::Internal(anyhow::anyhow!(
                "password authentication failed for osb_admin"
            )),
        );
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let env = e.envelope();
        assert_eq!(env.error, "InternalError");
        assert!(!env.description.contains("osb_admin"));
        assert!(env.description.contains("req-1"));
    }

    #[test]
    fn an_unavailable_instance_is_a_503_that_hides_the_detail() {
        let e = ApiError::new(&rid(), Unavailable("connection refused to 10.0.0.5".into()));
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let env = e.envelope();
        assert_eq!(env.error, "InstanceUnavailable");
        assert!(!env.description.contains("10.0.0.5"));
    }
}
