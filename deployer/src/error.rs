//! The failures of the deployer's requests: [`ErrorKind`] gives each its status, code and
//! description in the error envelope of `service_edge::error` (which logs the detail of an
//! unexpected one, once).

use crate::service::ServiceError;
use actix_web::http::StatusCode;
use service_edge::{Failure, RequestId};

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
pub type ApiError = service_edge::ApiError<ErrorKind>;

impl From<ServiceError> for ErrorKind {
    /// Maps a task-runner error.
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(message) => Self::BadRequest(message),
            ServiceError::DeploymentNotFound(name) => Self::DeploymentNotFound(name),
            ServiceError::Conflict(message) => Self::Conflict(message),
            ServiceError::Store(e) => Self::Internal(e.into()),
        }
    }
}

impl Failure for ErrorKind {
    fn bad_request(message: String) -> Self {
        Self::BadRequest(message)
    }

    fn route_not_found(method: &str, path: &str) -> Self {
        Self::RouteNotFound {
            method: method.to_string(),
            path: path.to_string(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::DeploymentNotFound(_) | Self::TaskNotFound(_) | Self::RouteNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Conflict(_) => "Conflict",
            Self::DeploymentNotFound(_) | Self::TaskNotFound(_) | Self::RouteNotFound { .. } => {
                "NotFound"
            }
            Self::Internal(_) => "InternalError",
        }
    }

    fn description(&self, request_id: &RequestId) -> String {
        match self {
            Self::BadRequest(message) | Self::Conflict(message) => message.clone(),
            Self::DeploymentNotFound(_) | Self::TaskNotFound(_) | Self::RouteNotFound { .. } => {
                self.to_string()
            }
            Self::Internal(_) => format!(
                "the deployer failed unexpectedly; its log has the detail under request id {request_id}"
            ),
        }
    }

    fn internal(&self) -> Option<&anyhow::Error> {
        match self {
            Self::Internal(e) => Some(e),
            _ => None,
        }
    }
}
