//! The one error type of the OSB edge: every refusal and failure the broker answers with, its
//! status code, and the one function that builds its OSB error body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use common::client::ClientError;
use common::osb::{codes, ErrorBody};

tokio::task_local! {
    /// The request id of the request being served (set by the edge middleware), so a 500's
    /// description and log line can name it.
    pub static REQUEST_ID: String;
}

/// The request id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Every answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Missing or wrong Basic auth: 401.
    #[error("unauthorized")]
    Unauthorized,
    /// Missing, malformed or unsupported `X-Broker-API-Version`: 412.
    #[error("{0}")]
    VersionRefused(String),
    /// Malformed request or missing mandatory data: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown resource: 404.
    #[error("{0}")]
    NotFound(String),
    /// A route that exists with another method: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Unknown or deleted instance/binding on DELETE: 410 with `{}`.
    #[error("gone")]
    Gone,
    /// Same id, different attributes: 409.
    #[error("{0}")]
    Conflict(String),
    /// Request body above the limit: 413.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body did not arrive within the body timeout: 408, connection closed.
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    BodyTimeout(std::time::Duration),
    /// The client holds more connections than allowed: 429, connection closed.
    #[error("too many concurrent connections from this client address (the limit is {0}); close idle connections and retry")]
    TooManyConnections(usize),
    /// Async-only operation without `accepts_incomplete=true`: 422 `AsyncRequired`.
    #[error("this service plan requires client support for asynchronous service operations")]
    AsyncRequired,
    /// Another operation is in progress: 422 `ConcurrencyError`.
    #[error("{0}")]
    Concurrency(String),
    /// `maintenance_info.version` differs from the plan's: 422 `MaintenanceInfoConflict`.
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    /// A user-facing refusal of an SPI, passed through (400 or 422).
    #[error("{description}")]
    Refused {
        /// 400 or 422.
        status: RefusalStatus,
        /// The SPI's error code, passed on for 422s.
        error: Option<String>,
        /// The SPI's description.
        description: String,
    },
    /// An SPI or the deployer cannot be reached, or an operation outran the synchronous
    /// window: 503.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected: 500 with a generic description; the detail is logged once.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Statuses an SPI refusal may be passed through with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalStatus {
    /// 400.
    BadRequest,
    /// 422.
    Unprocessable,
    /// The 4xx an initialization flow chose (`crate::flows::FlowRefusal`).
    Chosen(u16),
}

impl BrokerError {
    /// Wraps any unexpected failure.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// Maps a failed SPI or deployer call made while serving a request: user-facing refusals
    /// pass through, an unreachable callee is 503, anything else is internal.
    pub fn from_call(callee: &str, e: ClientError) -> Self {
        match e {
            ClientError::Status {
                status: 400,
                envelope,
                ..
            } => Self::Refused {
                status: RefusalStatus::BadRequest,
                error: None,
                description: envelope.description,
            },
            ClientError::Status {
                status: 422,
                envelope,
                ..
            } => Self::Refused {
                status: RefusalStatus::Unprocessable,
                error: Some(envelope.error).filter(|e| !e.is_empty()),
                description: envelope.description,
            },
            // A certificate refusal is permanent: internal (500), not "retry later".
            ClientError::Transport { .. } if e.certificate_refusal().is_none() => {
                tracing::warn!(callee, error = %e, "internal call failed");
                Self::Unavailable(format!("{callee} is unavailable; retry later"))
            }
            other => Self::Internal(anyhow::Error::new(other).context(format!("calling {callee}"))),
        }
    }

    /// The OSB error body of this error; the only place error bodies are built.
    pub fn body(&self) -> ErrorBody {
        let (error, description) = match self {
            Self::Gone => (None, None),
            Self::AsyncRequired => (
                Some(codes::ASYNC_REQUIRED.to_string()),
                Some(
                    "This Service Plan requires client support for asynchronous service operations."
                        .to_string(),
                ),
            ),
            Self::Concurrency(d) => (Some(codes::CONCURRENCY_ERROR.to_string()), Some(d.clone())),
            Self::MaintenanceInfoConflict(d) => (
                Some(codes::MAINTENANCE_INFO_CONFLICT.to_string()),
                Some(d.clone()),
            ),
            Self::Refused {
                error, description, ..
            } => (error.clone(), Some(description.clone())),
            Self::Unauthorized => (
                Some("Unauthorized".to_string()),
                Some("authentication with the broker's Basic auth credentials is required".into()),
            ),
            Self::MethodNotAllowed => (
                Some("MethodNotAllowed".to_string()),
                Some("this method is not supported on this resource".into()),
            ),
            Self::Internal(_) => (
                Some("InternalError".to_string()),
                Some(match current_request_id() {
                    Some(id) => format!("internal error; request id {id}"),
                    None => "internal error".to_string(),
                }),
            ),
            Self::VersionRefused(d) => (Some("PreconditionFailed".into()), Some(d.clone())),
            Self::BadRequest(d) => (Some("BadRequest".into()), Some(d.clone())),
            Self::NotFound(d) => (Some("NotFound".into()), Some(d.clone())),
            Self::Conflict(d) => (Some("Conflict".into()), Some(d.clone())),
            Self::PayloadTooLarge(_) => (Some("PayloadTooLarge".into()), Some(self.to_string())),
            Self::BodyTimeout(_) => (Some("RequestTimeout".into()), Some(self.to_string())),
            Self::TooManyConnections(_) => {
                (Some("TooManyRequests".into()), Some(self.to_string()))
            }
            Self::Unavailable(d) => (Some("ServiceUnavailable".into()), Some(d.clone())),
        };
        ErrorBody {
            error,
            description: description.filter(|d| !d.is_empty()),
            instance_usable: None,
            update_repeatable: None,
        }
    }
}

impl ResponseError for BrokerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::VersionRefused(_) => StatusCode::PRECONDITION_FAILED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Gone => StatusCode::GONE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::AsyncRequired | Self::Concurrency(_) | Self::MaintenanceInfoConflict(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Refused { status, .. } => match status {
                RefusalStatus::BadRequest => StatusCode::BAD_REQUEST,
                RefusalStatus::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                RefusalStatus::Chosen(status) => StatusCode::from_u16(*status)
                    .ok()
                    .filter(StatusCode::is_client_error)
                    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            },
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            // The one log line of a 500, under the request id the client was given.
            tracing::error!(
                request.id = current_request_id().as_deref().unwrap_or("-"),
                error = format!("{detail:#}"),
                "internal error"
            );
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::BodyTimeout(_) | Self::TooManyConnections(_)) {
            // The connection is not reused: a half-sent body leaves it in an unknown state,
            // and an over-limit connection must go away.
            response.force_close();
        }
        if matches!(self, Self::Unauthorized) {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"osb\""),
            ));
        }
        response.json(self.body())
    }
}

impl From<crate::store::StoreError> for BrokerError {
    /// A quota refusal is 422 with its description; the database down (or its connection
    /// broken) is 503, so the platform retries; anything else is internal.
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::QuotaExceeded(exceeded) = e {
            tracing::info!(refusal = %exceeded, "request refused by an instance quota");
            return Self::Refused {
                status: RefusalStatus::Unprocessable,
                error: None,
                description: exceeded.to_string(),
            };
        }
        if e.is_unavailable() {
            tracing::warn!(error = %e, "state database unavailable");
            Self::Unavailable("the state database is unavailable; retry later".into())
        } else {
            Self::internal(e)
        }
    }
}

impl From<crate::crypto::CryptoError> for BrokerError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::envelope::ErrorEnvelope;

    #[test]
    fn gone_answers_an_empty_object() {
        assert_eq!(
            serde_json::to_string(&BrokerError::Gone.body()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn fixed_codes_are_used_verbatim() {
        assert_eq!(
            BrokerError::AsyncRequired.body().error.as_deref(),
            Some("AsyncRequired")
        );
        assert_eq!(
            BrokerError::Concurrency("x".into()).body().error.as_deref(),
            Some("ConcurrencyError")
        );
        assert_eq!(
            BrokerError::MaintenanceInfoConflict("x".into())
                .body()
                .error
                .as_deref(),
            Some("MaintenanceInfoConflict")
        );
    }

    #[test]
    fn an_spi_refusal_passes_through_with_its_description() {
        let e = BrokerError::from_call(
            "spi-postgres",
            ClientError::Status {
                url: "u".into(),
                status: 400,
                envelope: ErrorEnvelope::new(
                    "BadRequest",
                    "parameter max_connections must be an integer",
                ),
            },
        );
        assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body().description.as_deref(),
            Some("parameter max_connections must be an integer")
        );
    }

    #[test]
    fn an_internal_error_shows_only_the_request_id() {
        let body =
            futures_util::FutureExt::now_or_never(REQUEST_ID.scope("req-42".to_string(), async {
                BrokerError::internal(anyhow::anyhow!("secret detail")).body()
            }))
            .unwrap();
        assert_eq!(
            body.description.as_deref(),
            Some("internal error; request id req-42")
        );
    }
}
