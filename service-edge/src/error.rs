//! The JSON error envelope of the internal services: every failed request is answered with a
//! status and a [`common::envelope::ErrorEnvelope`] carrying its request id, built in one
//! place ([`ApiError`]'s `error_response`), where the detail of an unexpected failure is also
//! logged, once. Each service names its failures in its own enum implementing [`Failure`];
//! [`json_config`], [`query_config`] and [`not_found`] turn a malformed body or query and an
//! unknown route into such answers.

use crate::request::RequestId;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use common::envelope::ErrorEnvelope;
use std::fmt;

/// One kind of failure of a service, as its answer shows it.
pub trait Failure: fmt::Debug + fmt::Display + 'static {
    /// A malformed request (400), described by `message`.
    fn bad_request(message: String) -> Self
    where
        Self: Sized;

    /// A method and path outside the service's API (404).
    fn route_not_found(method: &str, path: &str) -> Self
    where
        Self: Sized;

    /// The status of the answer.
    fn status(&self) -> StatusCode;

    /// The envelope's machine-readable code (`BadRequest`, `NotFound`, `InternalError`, …).
    fn code(&self) -> &'static str;

    /// The envelope's description, for the user (never a secret); `request_id` lets it point
    /// to the log entry of a detail it hides.
    fn description(&self, request_id: &RequestId) -> String;

    /// The detail of an unexpected failure: logged under the request id, never answered.
    fn internal(&self) -> Option<&anyhow::Error> {
        None
    }

    /// Logs any other detail the description hides; nothing by default.
    fn log_hidden_detail(&self, _request_id: &RequestId) {}
}

/// The error answer to one request.
#[derive(Debug)]
pub struct ApiError<K> {
    /// The request it answers.
    pub request_id: RequestId,
    /// What went wrong.
    pub kind: K,
}

impl<K: Failure> ApiError<K> {
    /// An error of `kind` answering request `request_id`.
    pub fn new(request_id: &RequestId, kind: impl Into<K>) -> Self {
        Self {
            request_id: request_id.clone(),
            kind: kind.into(),
        }
    }

    /// The body of the answer.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            request_id: Some(self.request_id.0.clone()),
            ..ErrorEnvelope::new(self.kind.code(), self.kind.description(&self.request_id))
        }
    }
}

impl<K: fmt::Display> fmt::Display for ApiError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (request {})", self.kind, self.request_id)
    }
}

impl<K: fmt::Debug + fmt::Display> std::error::Error for ApiError<K> {}

impl<K: Failure> ResponseError for ApiError<K> {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        // The one place the detail of an internal error is logged.
        if let Some(e) = self.kind.internal() {
            tracing::error!(request.id = %self.request_id, error = format!("{e:#}"), "request failed");
        }
        self.kind.log_hidden_detail(&self.request_id);
        HttpResponse::build(self.status_code())
            .insert_header((common::REQUEST_ID_HEADER, self.request_id.as_str()))
            .json(self.envelope())
    }
}

/// JSON body extractor settings: bodies up to `limit` bytes; a malformed one is a 400 envelope
/// whose description starts with `what` (e.g. `invalid request body`) and names the problem.
pub fn json_config<K: Failure>(limit: usize, what: &'static str) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, req| {
            ApiError::<K>::new(
                &RequestId::of(req),
                K::bad_request(format!("{what}: {err}")),
            )
            .into()
        })
}

/// Query extractor settings: a malformed query is a 400 envelope naming the problem.
pub fn query_config<K: Failure>() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, req| {
        ApiError::<K>::new(
            &RequestId::of(req),
            K::bad_request(format!("invalid query: {err}")),
        )
        .into()
    })
}

/// The answer for methods and paths outside the API: a 404 envelope naming them.
pub async fn not_found<K: Failure>(req: HttpRequest) -> Result<HttpResponse, ApiError<K>> {
    Err(ApiError::new(
        &RequestId::of(&req),
        K::route_not_found(req.method().as_str(), req.path()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{call_service, init_service, read_body_json, TestRequest};
    use actix_web::App;

    /// A service's failures, as small as the trait allows.
    #[derive(Debug, thiserror::Error)]
    enum Demo {
        #[error("{0}")]
        Bad(String),
        #[error("no route {0}")]
        Route(String),
        #[error(transparent)]
        Internal(anyhow::Error),
    }

    impl Failure for Demo {
        fn bad_request(message: String) -> Self {
            Self::Bad(message)
        }
        fn route_not_found(method: &str, path: &str) -> Self {
            Self::Route(format!("{method} {path}"))
        }
        fn status(&self) -> StatusCode {
            match self {
                Self::Bad(_) => StatusCode::BAD_REQUEST,
                Self::Route(_) => StatusCode::NOT_FOUND,
                Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
        fn code(&self) -> &'static str {
            match self {
                Self::Bad(_) => "BadRequest",
                Self::Route(_) => "NotFound",
                Self::Internal(_) => "InternalError",
            }
        }
        fn description(&self, request_id: &RequestId) -> String {
            match self {
                Self::Internal(_) => format!("see the log under request id {request_id}"),
                other => other.to_string(),
            }
        }
        fn internal(&self) -> Option<&anyhow::Error> {
            match self {
                Self::Internal(e) => Some(e),
                _ => None,
            }
        }
    }

    #[test]
    fn an_internal_error_is_a_500_naming_the_request_and_hiding_the_detail() {
        let e = ApiError::<Demo>::new(
            &RequestId("req-1".into()),
            Demo::Internal(anyhow::anyhow!("password authentication failed for admin")),
        );
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let envelope = e.envelope();
        assert_eq!(envelope.error, "InternalError");
        assert_eq!(envelope.request_id.as_deref(), Some("req-1"));
        assert!(envelope.description.contains("req-1"));
        assert!(!envelope.description.contains("admin"));
        let answer = e.error_response();
        assert_eq!(
            answer.headers().get(common::REQUEST_ID_HEADER).unwrap(),
            "req-1"
        );
    }

    #[derive(serde::Deserialize)]
    struct Body {
        #[allow(dead_code, reason = "only its presence is checked")]
        name: String,
    }

    async fn take(
        _: web::Json<Body>,
        _: web::Query<std::collections::HashMap<String, u8>>,
    ) -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    #[actix_web::test]
    async fn a_malformed_body_or_query_is_a_400_and_an_unknown_route_a_404_envelope() {
        let app = init_service(
            App::new()
                .app_data(json_config::<Demo>(64, "invalid body"))
                .app_data(query_config::<Demo>())
                .route("/take", web::post().to(take))
                .default_service(web::to(not_found::<Demo>)),
        )
        .await;
        let cases = [
            (
                TestRequest::post()
                    .uri("/take")
                    .insert_header(("content-type", "application/json"))
                    .set_payload("{"),
                400,
                "invalid body: ",
            ),
            (
                TestRequest::post()
                    .uri("/take?n=300")
                    .set_json(serde_json::json!({"name": "x"})),
                400,
                "invalid query: ",
            ),
            (
                TestRequest::get().uri("/elsewhere"),
                404,
                "no route GET /elsewhere",
            ),
        ];
        for (req, status, description) in cases {
            let resp = call_service(&app, req.to_request()).await;
            assert_eq!(resp.status().as_u16(), status);
            let body: ErrorEnvelope = read_body_json(resp).await;
            assert!(body.description.starts_with(description), "{body:?}");
        }
    }
}
