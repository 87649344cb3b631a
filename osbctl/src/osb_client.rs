//! An OSB v2.17 client for any broker: the calls a platform makes, with Basic auth, the version
//! header and a request id on every request, and last_operation polling that reports progress.

use common::osb::{
    BindRequest, Catalog, ErrorBody, LastOperationResponse, OperationState, ProvisionRequest,
    UpdateRequest,
};
use common::REQUEST_ID_HEADER;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The API version this client speaks.
pub const API_VERSION: &str = "2.17";

/// Failure of a broker call.
#[derive(Debug, thiserror::Error)]
pub enum OsbError {
    /// The broker could not be reached.
    #[error("cannot reach the broker: {0}")]
    Transport(#[from] reqwest::Error),
    /// The broker answered with an unexpected status.
    #[error("broker answered {status}: {}", describe(.body))]
    Status {
        /// HTTP status.
        status: u16,
        /// The OSB error body, when there was one.
        body: Option<ErrorBody>,
    },
    /// An operation ended in `failed`.
    #[error("operation failed: {0}")]
    Failed(String),
    /// Polling gave up.
    #[error("gave up waiting after {0:?}")]
    Timeout(Duration),
}

fn describe(body: &Option<ErrorBody>) -> String {
    match body {
        Some(b) => format!(
            "{}{}",
            b.error
                .as_deref()
                .map(|e| format!("{e}: "))
                .unwrap_or_default(),
            b.description.as_deref().unwrap_or("(no description)")
        ),
        None => "(no OSB error body)".into(),
    }
}

/// A broker's answer: status, body and the request id it echoed.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The echoed request identity.
    pub request_id: Option<String>,
}

impl Answer {
    /// The `operation` field of an async answer.
    pub fn operation(&self) -> Option<&str> {
        self.body.get("operation").and_then(Value::as_str)
    }

    fn expect(self, ok: &[u16]) -> Result<Self, OsbError> {
        if ok.contains(&self.status) {
            Ok(self)
        } else {
            Err(OsbError::Status {
                status: self.status,
                body: serde_json::from_value(self.body).ok(),
            })
        }
    }
}

/// Whether the call is for an instance or one of its bindings (for last_operation).
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// `/v2/service_instances/{id}`.
    Instance(&'a str),
    /// `/v2/service_instances/{id}/service_bindings/{bid}`.
    Binding(&'a str, &'a str),
}

impl Target<'_> {
    fn path(&self) -> String {
        match self {
            Target::Instance(i) => format!("/v2/service_instances/{i}"),
            Target::Binding(i, b) => format!("/v2/service_instances/{i}/service_bindings/{b}"),
        }
    }
}

/// A client for one broker.
#[derive(Debug, Clone)]
pub struct OsbClient {
    http: reqwest::Client,
    base_url: String,
    username: String,
    password: String,
}

impl OsbClient {
    /// A client for the broker at `base_url` with Basic-auth credentials.
    pub fn new(base_url: &str, username: &str, password: &str) -> Result<Self, OsbError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            // Brokers (actix-web among them) close idle keep-alive connections after a few
            // seconds; reusing one as it closes fails the request. Idle ones are dropped first.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// Sends one request with auth, version header and a fresh request id.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Answer, OsbError> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base_url, path_and_query))
            .basic_auth(&self.username, Some(&self.password))
            .header("X-Broker-API-Version", API_VERSION)
            .header(REQUEST_ID_HEADER, common::new_request_id());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            request_id,
        })
    }

    /// `GET /v2/catalog`.
    pub async fn catalog(&self) -> Result<Catalog, OsbError> {
        let a = self
            .call(reqwest::Method::GET, "/v2/catalog", None)
            .await?
            .expect(&[200])?;
        serde_json::from_value(a.body).map_err(|e| OsbError::Failed(e.to_string()))
    }

    /// `PUT /v2/service_instances/{id}?accepts_incomplete=true`.
    pub async fn provision(&self, id: &str, req: &ProvisionRequest) -> Result<Answer, OsbError> {
        let body = serde_json::to_value(req).expect("serialisable");
        self.call(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(&body),
        )
        .await?
        .expect(&[200, 201, 202])
    }

    /// `PATCH /v2/service_instances/{id}?accepts_incomplete=true`.
    pub async fn update(&self, id: &str, req: &UpdateRequest) -> Result<Answer, OsbError> {
        let body = serde_json::to_value(req).expect("serialisable");
        self.call(
            reqwest::Method::PATCH,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(&body),
        )
        .await?
        .expect(&[200, 202])
    }

    /// `DELETE /v2/service_instances/{id}?accepts_incomplete=true&service_id=..&plan_id=..`.
    pub async fn deprovision(
        &self,
        id: &str,
        service_id: &str,
        plan_id: &str,
    ) -> Result<Answer, OsbError> {
        self.call(
            reqwest::Method::DELETE,
            &format!(
                "/v2/service_instances/{id}?accepts_incomplete=true&service_id={}&plan_id={}",
                common::percent_encode(service_id),
                common::percent_encode(plan_id)
            ),
            None,
        )
        .await?
        .expect(&[200, 202, 410])
    }

    /// `PUT …/service_bindings/{bid}?accepts_incomplete=true`.
    pub async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &BindRequest,
    ) -> Result<Answer, OsbError> {
        let body = serde_json::to_value(req).expect("serialisable");
        self.call(
            reqwest::Method::PUT,
            &format!(
                "{}?accepts_incomplete=true",
                Target::Binding(instance_id, binding_id).path()
            ),
            Some(&body),
        )
        .await?
        .expect(&[200, 201, 202])
    }

    /// `GET …/service_bindings/{bid}`.
    pub async fn get_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<Answer, OsbError> {
        self.call(
            reqwest::Method::GET,
            &Target::Binding(instance_id, binding_id).path(),
            None,
        )
        .await?
        .expect(&[200])
    }

    /// `DELETE …/service_bindings/{bid}?accepts_incomplete=true&service_id=..&plan_id=..`.
    pub async fn unbind(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: &str,
        plan_id: &str,
    ) -> Result<Answer, OsbError> {
        self.call(
            reqwest::Method::DELETE,
            &format!(
                "{}?accepts_incomplete=true&service_id={}&plan_id={}",
                Target::Binding(instance_id, binding_id).path(),
                common::percent_encode(service_id),
                common::percent_encode(plan_id)
            ),
            None,
        )
        .await?
        .expect(&[200, 202, 410])
    }

    /// `GET …/last_operation` for an instance or binding.
    pub async fn last_operation(
        &self,
        target: Target<'_>,
        operation: Option<&str>,
    ) -> Result<(u16, Option<LastOperationResponse>), OsbError> {
        let mut path = format!("{}/last_operation", target.path());
        if let Some(op) = operation {
            path.push_str(&format!("?operation={}", common::percent_encode(op)));
        }
        let a = self.call(reqwest::Method::GET, &path, None).await?;
        match a.status {
            200 => Ok((200, serde_json::from_value(a.body).ok())),
            410 => Ok((410, None)),
            _ => Err(a.expect(&[]).unwrap_err()),
        }
    }

    /// Polls last_operation every `interval` until a terminal state, calling `progress` with each
    /// new description. A 410 (after a delete) counts as success.
    pub async fn wait(
        &self,
        target: Target<'_>,
        operation: Option<&str>,
        interval: Duration,
        limit: Duration,
        mut progress: impl FnMut(&str),
    ) -> Result<(), OsbError> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            let (status, lo) = self.last_operation(target, operation).await?;
            if status == 410 {
                return Ok(());
            }
            if let Some(lo) = lo {
                let text = lo.description.clone().unwrap_or_default();
                if text != last && !text.is_empty() {
                    progress(&text);
                    last = text;
                }
                match lo.state {
                    OperationState::Succeeded => return Ok(()),
                    OperationState::Failed => return Err(OsbError::Failed(last)),
                    OperationState::InProgress => {}
                }
            }
            if start.elapsed() > limit {
                return Err(OsbError::Timeout(limit));
            }
            tokio::time::sleep(interval).await;
        }
    }
}
