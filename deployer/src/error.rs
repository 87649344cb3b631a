//! The one error type of the HTTP edge: every non-2xx answer is a
//! [`common::envelope::ErrorEnvelope`] carrying the request id, built in
//! [`ApiError::error_response`], where unexpected failures are also logged (once).

use crate::request::RequestId;
use crate::service::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use common::envelope::ErrorEnvelope;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    BadRequest(String),
    /// No deployment of that name.
    #[error("deployment {0} does not exist")]
    DeploymentNotFound(String),
    /// The name belongs to a deployment of another instance.
    #[error("{0}")]
    Conflict(String),
    /// No task with that id.
    #[error("task {0} does not exist")]
    TaskNotFound(String),
    /// No such path or method in the deployer API.
    #[error("{method} {path} is not part of the deployer API")]
    RouteNotFound {
        /// Method asked for.
        method: String,
        /// Path asked for.
        path: String,
    },
    /// Anything unexpected; the detail goes to the log only.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// An error answer to one request.
#[derive(Debug, thiserror::Error)]
#[error("{kind} (request {request_id})")]
pub struct ApiError {
    /// Id of the request that failed.
    pub request_id: RequestId,
    /// What failed.
    pub kind: ErrorKind,
}

impl ApiError {
    /// An error for the request `request_id`.
    pub fn new(request_id: &RequestId, kind: ErrorKind) -> Self {
        Self {
            request_id: request_id.clone(),
            kind,
        }
    }

    /// Maps a task-runner error for the request `request_id`.
    pub fn from_service(request_id: &RequestId, error: ServiceError) -> Self {
        let kind = match error {
            ServiceError::Invalid(message) => ErrorKind::BadRequest(message),
            ServiceError::DeploymentNotFound(name) => ErrorKind::DeploymentNotFound(name),
            ServiceError::Conflict(message) => ErrorKind::Conflict(message),
            ServiceError::Store(e) => ErrorKind::Internal(e.into()),
        };
        Self::new(request_id, kind)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            ErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict(_) => StatusCode::CONFLICT,
            ErrorKind::DeploymentNotFound(_)
            | ErrorKind::TaskNotFound(_)
            | ErrorKind::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description) = match &self.kind {
            ErrorKind::BadRequest(message) => ("BadRequest", message.clone()),
            ErrorKind::Conflict(message) => ("Conflict", message.clone()),
            ErrorKind::DeploymentNotFound(_)
            | ErrorKind::TaskNotFound(_)
            | ErrorKind::RouteNotFound { .. } => ("NotFound", self.kind.to_string()),
            ErrorKind::Internal(detail) => {
                tracing::error!(request.id = %self.request_id, error = %format!("{detail:#}"), "request failed");
                (
                    "InternalError",
                    format!(
                        "the deployer failed unexpectedly; its log has the detail under request id {}",
                        self.request_id
                    ),
                )
            }
        };
        let envelope = ErrorEnvelope {
            request_id: Some(self.request_id.to_string()),
            ..ErrorEnvelope::new(code, description)
        };
        HttpResponse::build(self.status_code()).json(envelope)
    }
}
