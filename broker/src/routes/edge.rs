//! What every request goes through before its handler: a request id (echoed on the answer and
//! carried by the log span), Basic auth, then `X-Broker-API-Version`; plus the extractors of
//! the request context, the query and the JSON body, which turn bad input into OSB 400s.

use super::body::{check_content_type, parse_strict, read_body};
use super::connections::ConnectionSlot;
use crate::domain::headers::{check_api_version, credentials_match, parse_originating_identity};
use crate::error::{BrokerError, REQUEST_ID};
use crate::service::RequestContext;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use common::secret::SecretString;
use common::{ORIGINATING_IDENTITY_HEADER, REQUEST_ID_HEADER};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

/// The path served without authentication.
pub const HEALTH_PATH: &str = "/healthz";
/// The operator's metrics (Basic auth, no `X-Broker-API-Version`: scrapers do not send it).
pub const METRICS_PATH: &str = "/metrics";
/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const API_VERSION_HEADER: &str = "X-Broker-API-Version";

/// The Basic auth credentials the edge checks, and how long a client may take to send a body.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// User name.
    pub username: String,
    /// Password.
    pub password: SecretString,
    /// How long a request body may take to arrive once the handler reads it.
    pub body_timeout: Duration,
}

/// The request id of the request, stored in its extensions by the middleware.
#[derive(Debug, Clone)]
struct RequestId(String);

fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| common::ids::is_valid_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(common::new_request_id)
}

/// A connection over its client's limit first (429), then auth (401 before anything else),
/// then the version header (412).
fn precheck(req: &ServiceRequest) -> Result<(), BrokerError> {
    if let Some(slot) = req.conn_data::<ConnectionSlot>() {
        slot.check()?;
    }
    let Some(config) = req.app_data::<web::Data<EdgeConfig>>() else {
        return Err(BrokerError::internal(anyhow::anyhow!(
            "edge configuration missing"
        )));
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !credentials_match(authorization, &config.username, config.password.expose()) {
        return Err(BrokerError::Unauthorized);
    }
    if req.path() == METRICS_PATH {
        return Ok(());
    }
    let version = req
        .headers()
        .get(API_VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    check_api_version(version).map_err(|e| BrokerError::VersionRefused(e.description()))?;
    Ok(())
}

/// The edge middleware.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let request_id = request_id_of(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request.id = %request_id,
        http.method = %method,
        http.path = %req.path(),
        identity.platform = tracing::field::Empty,
        identity.user = tracing::field::Empty,
    );
    let started = Instant::now();
    let echoed = HeaderValue::from_str(&request_id).ok();
    let handled = async move {
        let check = if req.path() == HEALTH_PATH {
            Ok(())
        } else {
            precheck(&req)
        };
        let mut res = match check {
            Err(e) => req.into_response(e.error_response()).map_into_right_body(),
            Ok(()) => next.call(req).await?.map_into_left_body(),
        };
        let headers = res.headers_mut();
        if let Some(id) = echoed {
            headers.insert(HeaderName::from_static("x-broker-api-request-identity"), id);
        }
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let status = res.status().as_u16();
        let duration_ms = started.elapsed().as_millis() as u64;
        if method == actix_web::http::Method::GET && status < 400 {
            tracing::debug!(http.status = status, duration_ms, "request served");
        } else {
            tracing::info!(http.status = status, duration_ms, "request served");
        }
        Ok(res)
    };
    REQUEST_ID.scope(request_id, handled).instrument(span).await
}

impl FromRequest for RequestContext {
    type Error = BrokerError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(common::new_request_id);
        // A malformed identity is a malformed request (400); it is only looked at after
        // authentication, so it never turns a 401 into something else.
        let originating_identity = match req.headers().get(ORIGINATING_IDENTITY_HEADER) {
            None => None,
            Some(value) => {
                let parsed = value
                    .to_str()
                    .map_err(|_| {
                        "X-Broker-API-Originating-Identity is not printable text".to_string()
                    })
                    .and_then(|text| parse_originating_identity(text).map(|id| (text, id)));
                match parsed {
                    Ok((text, identity)) => {
                        let span = tracing::Span::current();
                        span.record("identity.platform", identity.platform.as_str());
                        span.record("identity.user", identity.user.as_str());
                        Some(text.to_string())
                    }
                    Err(e) => return std::future::ready(Err(BrokerError::BadRequest(e))),
                }
            }
        };
        std::future::ready(Ok(Self {
            request_id,
            originating_identity,
            tracing_id: None,
        }))
    }
}

/// The query parameters the OSB endpoints read; others are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct OsbQuery {
    /// `true` when the client accepts an asynchronous answer.
    #[serde(default)]
    pub accepts_incomplete: Option<String>,
    /// Offering id (DELETE, hints elsewhere).
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id (DELETE, hints elsewhere).
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Operation hint of last_operation.
    #[serde(default)]
    pub operation: Option<String>,
}

impl OsbQuery {
    /// Parses the query string; a malformed one is a 400.
    pub fn parse(req: &HttpRequest) -> Result<Self, BrokerError> {
        web::Query::<Self>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .map_err(|e| BrokerError::BadRequest(format!("malformed query string: {e}")))
    }

    /// [`OsbQuery::parse`] for the endpoints that define `accepts_incomplete` (PUT, PATCH,
    /// DELETE): a value other than `true`, `false` or empty is a 400 too, before any lookup,
    /// so the answer does not depend on whether the resource exists.
    pub fn parse_mutating(req: &HttpRequest) -> Result<Self, BrokerError> {
        let query = Self::parse(req)?;
        match query.accepts_incomplete.as_deref() {
            None | Some("" | "true" | "false") => Ok(query),
            Some(other) => Err(BrokerError::BadRequest(format!(
                "accepts_incomplete must be true or false, not {:?}",
                other.chars().take(50).collect::<String>()
            ))),
        }
    }

    /// Only `accepts_incomplete=true` counts (absent, empty and `false` do not).
    pub fn accepts_incomplete(&self) -> bool {
        self.accepts_incomplete.as_deref() == Some("true")
    }

    /// The operation hint, if non-empty.
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref().filter(|o| !o.is_empty())
    }
}

/// A path segment of the matched route: an id, checked against the id rules of
/// [`common::ids`] (non-empty, at most [`common::ids::MAX_ID_LEN`] bytes, no control
/// characters), else a 400 naming the rule.
pub fn path_param(req: &HttpRequest, name: &str) -> Result<String, BrokerError> {
    let value = req
        .match_info()
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BrokerError::BadRequest(format!("{name} is required")))?;
    common::ids::validate_id(name, value).map_err(|e| BrokerError::BadRequest(e.to_string()))?;
    Ok(value.to_string())
}

/// Reads the body (`Content-Type: application/json`, at most [`MAX_BODY_BYTES`], within the
/// body timeout) and decodes it as a JSON object without duplicate keys into `T`, answering
/// 400 with what is wrong otherwise (408 for a body too slow to arrive).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, BrokerError> {
    check_content_type(req)?;
    let timeout = req
        .app_data::<web::Data<EdgeConfig>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |c| c.body_timeout);
    let bytes = read_body(payload, MAX_BODY_BYTES, timeout).await?;
    parse_json(&bytes)
}

/// The body timeout when no edge configuration is registered.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Decodes a request body as a JSON object into `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BrokerError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BrokerError::BadRequest(
            "the request body must be a JSON object; it is empty".into(),
        ));
    }
    let value = parse_strict(bytes).map_err(|e| {
        BrokerError::BadRequest(if e.to_string().starts_with("duplicate key") {
            format!("the request body is refused: {e}")
        } else {
            format!("the request body is not valid JSON: {e}")
        })
    })?;
    if !value.is_object() {
        return Err(BrokerError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| BrokerError::BadRequest(format!("the request body is invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::osb::ProvisionRequest;

    #[test]
    fn malformed_json_a_non_object_and_wrong_types_are_400s_that_say_why() {
        let e = parse_json::<ProvisionRequest>(b"{not json").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let e = parse_json::<ProvisionRequest>(b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        let e = parse_json::<ProvisionRequest>(b"").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = parse_json::<ProvisionRequest>(br#"{"service_id": 5}"#).unwrap_err();
        assert!(e.to_string().contains("invalid"), "{e}");
    }

    #[test]
    fn a_body_with_a_duplicate_key_is_a_400_naming_the_key() {
        let e =
            parse_json::<ProvisionRequest>(br#"{"service_id":"a","service_id":"b"}"#).unwrap_err();
        assert!(
            e.to_string().contains("duplicate key \"service_id\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let req: ProvisionRequest =
            parse_json(br#"{"service_id":"s","x-vendor":{"a":1}}"#).unwrap();
        assert_eq!(req.service_id.as_deref(), Some("s"));
    }
}
