//! The one error type of the HTTP edge: every failure becomes a status and an
//! [`ErrorEnvelope`] built in [`ApiError::envelope`]; unexpected ones are a 500 with a generic
//! description, their detail logged once under the request id.

use crate::binding::Unavailable;
use crate::offering::Refusal;
use crate::request::RequestId;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use common::envelope::ErrorEnvelope;

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
#[derive(Debug, thiserror::Error)]
#[error("{kind} (request {request_id})")]
pub struct ApiError {
    /// The request it answers.
    pub request_id: RequestId,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl ApiError {
    /// An error of `kind` answering request `request_id`.
    pub fn new(request_id: &RequestId, kind: impl Into<ErrorKind>) -> Self {
        Self {
            request_id: request_id.clone(),
            kind: kind.into(),
        }
    }

    /// The body of the answer.
    pub fn envelope(&self) -> ErrorEnvelope {
        let (error, description) = match &self.kind {
            ErrorKind::Refused(Refusal::InvalidParameters(d)) => ("InvalidParameters", d.clone()),
            ErrorKind::Refused(Refusal::PlanChangeNotAllowed(d)) => {
                ("PlanChangeNotAllowed", d.clone())
            }
            ErrorKind::Refused(Refusal::UnknownPlan(d)) => ("UnknownPlan", d.clone()),
            ErrorKind::BadRequest(d) => ("BadRequest", d.clone()),
            ErrorKind::NotFound(d) => ("NotFound", d.clone()),
            ErrorKind::InstanceUnavailable(_) => (
                "InstanceUnavailable",
                "the service instance cannot be reached right now; try again later".to_string(),
            ),
            ErrorKind::Internal(_) => (
                "InternalError",
                format!(
                    "an internal error occurred; the operator can find it in the log under request id {}",
                    self.request_id
                ),
            ),
        };
        ErrorEnvelope {
            error: error.to_string(),
            description,
            request_id: Some(self.request_id.0.clone()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            ErrorKind::Refused(Refusal::InvalidParameters(_))
            | ErrorKind::Refused(Refusal::PlanChangeNotAllowed(_))
            | ErrorKind::Refused(Refusal::UnknownPlan(_))
            | ErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound(_) => StatusCode::NOT_FOUND,
            ErrorKind::InstanceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The one place 5xx details are logged.
        match &self.kind {
            ErrorKind::Internal(e) => {
                tracing::error!(request.id = %self.request_id, error = format!("{e:#}"), "request failed")
            }
            ErrorKind::InstanceUnavailable(detail) => {
                tracing::warn!(request.id = %self.request_id, error = %detail, "instance unavailable")
            }
            _ => {}
        }
        HttpResponse::build(self.status_code())
            .insert_header((common::REQUEST_ID_HEADER, self.request_id.0.as_str()))
            .json(self.envelope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
