//! A client of the BOSH Director's HTTP API: HTTPS trusting only the configured CA, the login
//! chosen from `GET /info` (basic, or a UAA client-credentials token fetched again before it
//! expires, see [`super::auth`]), redirects never followed (a mutating call's task id is read
//! from its `302 Location`), errors decoded from the Director's `{code, description}`, and
//! every call retried while the Director is unreachable or answers 5xx, up to the configured
//! time.

use super::api::{task_id_from_location, ErrorBody, CONTEXT_HEADER};
pub use super::api::{DirectorError, DirectorInstance, DirectorTask};
use super::auth::Login;
use crate::config::BoshSettings;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// First pause before calling an unreachable Director again; it doubles up to [`MAX_NAP`].
const FIRST_NAP: Duration = Duration::from_millis(200);
const MAX_NAP: Duration = Duration::from_secs(10);

/// A request to send: method, path (with query), body, extra headers.
#[derive(Clone)]
pub(super) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub body: Option<(&'a str, String)>,
    pub headers: HeaderMap,
    /// Whether an unreachable Director is called again (within the retry window).
    pub retry: bool,
}

impl<'a> Call<'a> {
    /// `method path`, retried while the Director is unreachable.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
            headers: HeaderMap::new(),
            retry: true,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// The call with `body` of `content_type`.
    pub fn with_body(self, content_type: &'a str, body: String) -> Self {
        Self {
            body: Some((content_type, body)),
            ..self
        }
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A logged-in client of one Director.
pub struct Director {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    login: Login,
    unreachable: Duration,
}

impl Director {
    /// A client of the Director in `settings` (nothing is called yet: the login method is
    /// learnt from `GET /info` on the first call).
    pub fn new(settings: &BoshSettings) -> Result<Self, String> {
        let url = settings.director_url.trim_end_matches('/').to_string();
        if !url.starts_with("https://") {
            return Err(format!(
                "bosh.director_url must be an https:// URL (the Director speaks only HTTPS), got {url}"
            ));
        }
        let http = http_client(settings)?;
        let login = Login::new(&settings.client, settings.secret()?);
        Ok(Self {
            http,
            url,
            login,
            unreachable: Duration::from_secs(settings.unreachable_timeout_secs),
        })
    }

    /// Sends `call` with the login, once again after a 401 with a fresh login, and again while
    /// the Director is unreachable (within the retry window). Answers the response of any
    /// status below 500 but 401.
    pub(super) async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, DirectorError> {
        let started = Instant::now();
        let mut nap = FIRST_NAP;
        let mut fresh_login = false;
        loop {
            let failure = match self.send_once(call, fresh_login).await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !fresh_login => {
                    // A token that expired early, or revoked: log in again, once.
                    fresh_login = true;
                    continue;
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    return Err(DirectorError::Other(format!(
                        "the BOSH Director refused the credentials of client {:?} for {}",
                        self.login.client(),
                        call.what()
                    )));
                }
                Ok(response) if response.status().is_server_error() => {
                    format!("{} answered {}", call.what(), response.status())
                }
                Ok(response) => return Ok(response),
                Err(Failure::Unreachable(message)) => message,
                Err(Failure::Fatal(e)) => return Err(e),
            };
            if !call.retry || started.elapsed() + nap > self.unreachable {
                return Err(DirectorError::Unreachable {
                    url: self.url.clone(),
                    message: failure,
                });
            }
            tracing::warn!(director = %self.url, error = %failure, "BOSH Director unreachable; trying again");
            tokio::time::sleep(nap).await;
            nap = (nap * 2).min(MAX_NAP);
        }
    }

    async fn send_once(&self, call: &Call<'_>, fresh: bool) -> Result<reqwest::Response, Failure> {
        let authorization = self.login.header(self, fresh).await?;
        let mut authorization = HeaderValue::from_str(authorization.expose()).map_err(|_| {
            Failure::Fatal(DirectorError::Other(
                "the client credentials are not valid in an HTTP header".into(),
            ))
        })?;
        authorization.set_sensitive(true);
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.url, call.path))
            .headers(call.headers.clone())
            .header(reqwest::header::AUTHORIZATION, authorization);
        if let Some((content_type, body)) = &call.body {
            request = request
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        request
            .send()
            .await
            .map_err(|e| Failure::Unreachable(transport_message(&e)))
    }

    /// `GET path`, decoded; a 2xx only.
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, DirectorError> {
        self.get_decoded(Call::get(path)).await
    }

    /// [`Self::get_json`] tried once: an unreachable Director is an error at once.
    pub(super) async fn get_json_once<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, DirectorError> {
        self.get_decoded(Call {
            retry: false,
            ..Call::get(path)
        })
        .await
    }

    async fn get_decoded<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, DirectorError> {
        let response = self.send(&call).await?;
        let response = check(&call, response).await?;
        response.json().await.map_err(|e| {
            DirectorError::Other(format!("undecodable answer to {}: {e}", call.what()))
        })
    }

    /// Sends a mutating `call` tagged with `context_id`; answers the task id of its `302`.
    /// When the connection fails, the request may still have reached the Director: before
    /// sending it again, a task with that context id is looked for (and answered if found),
    /// so that one operation never makes two tasks.
    pub(super) async fn start_task(
        &self,
        mut call: Call<'_>,
        context_id: &str,
    ) -> Result<u64, DirectorError> {
        let context = HeaderValue::from_str(context_id).map_err(|_| {
            DirectorError::Other(format!("context id {context_id:?} is not a header value"))
        })?;
        call.headers.insert(CONTEXT_HEADER, context);
        call.retry = false;
        let started = Instant::now();
        let mut nap = FIRST_NAP;
        loop {
            match self.send(&call).await {
                Ok(response) => return task_of(&call, response).await,
                Err(e @ DirectorError::Unreachable { .. }) => {
                    if started.elapsed() + nap > self.unreachable {
                        return Err(e);
                    }
                    tracing::warn!(director = %self.url, error = %e, "BOSH Director unreachable; trying again");
                    tokio::time::sleep(nap).await;
                    nap = (nap * 2).min(MAX_NAP);
                    if let Some(task) = self.task_with_context(context_id).await? {
                        return Ok(task);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The newest task made by a request with `context_id`, if any.
    async fn task_with_context(&self, context_id: &str) -> Result<Option<u64>, DirectorError> {
        let tasks: Vec<DirectorTask> = self
            .get_json(&format!("/tasks?context_id={context_id}&verbose=2"))
            .await?;
        Ok(tasks
            .iter()
            .filter(|t| t.context_id.as_deref() == Some(context_id))
            .map(|t| t.id)
            .max())
    }

    /// The event output of task `id` from byte `offset` on (`Range: bytes=N-`): the new bytes.
    pub(super) async fn events_from(&self, id: u64, offset: u64) -> Result<Vec<u8>, DirectorError> {
        let mut call = Call::get(format!("/tasks/{id}/output?type=event"));
        if offset > 0 {
            let range = HeaderValue::from_str(&format!("bytes={offset}-"))
                .map_err(|e| DirectorError::Other(e.to_string()))?;
            call.headers.insert(RANGE, range);
        }
        let response = self.send(&call).await?;
        match response.status() {
            StatusCode::RANGE_NOT_SATISFIABLE | StatusCode::NO_CONTENT => Ok(Vec::new()),
            StatusCode::PARTIAL_CONTENT => Ok(body_of(&call, response).await?),
            // A Director that ignored the range sent everything: skip what was read already.
            StatusCode::OK => {
                let all = body_of(&call, response).await?;
                Ok(all.get(offset as usize..).unwrap_or_default().to_vec())
            }
            _ => Err(check(&call, response).await.err().unwrap_or_else(|| {
                DirectorError::Other(format!("{} answered unexpectedly", call.what()))
            })),
        }
    }
}

/// The task id of a mutating call's `302 Location`.
async fn task_of(call: &Call<'_>, response: reqwest::Response) -> Result<u64, DirectorError> {
    if response.status() != StatusCode::FOUND {
        let response = check(call, response).await?;
        return Err(DirectorError::Other(format!(
            "{} answered {} instead of a redirect to a task",
            call.what(),
            response.status()
        )));
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    task_id_from_location(location).ok_or_else(|| {
        DirectorError::Other(format!(
            "{} redirected to {location:?}, which names no task",
            call.what()
        ))
    })
}

async fn body_of(call: &Call<'_>, response: reqwest::Response) -> Result<Vec<u8>, DirectorError> {
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| DirectorError::Other(format!("reading the answer to {}: {e}", call.what())))
}

/// Why one attempt failed: worth another try, or not.
pub(super) enum Failure {
    Unreachable(String),
    Fatal(DirectorError),
}

impl From<DirectorError> for Failure {
    fn from(e: DirectorError) -> Self {
        match e {
            DirectorError::Unreachable { message, .. } => Self::Unreachable(message),
            other => Self::Fatal(other),
        }
    }
}

/// A 2xx answer, or the Director's error decoded from its `{code, description}`.
pub(super) async fn check(
    call: &Call<'_>,
    response: reqwest::Response,
) -> Result<reqwest::Response, DirectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (code, description) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.code, body.description),
        Err(_) => (0, text.chars().take(200).collect()),
    };
    Err(DirectorError::Api {
        what: call.what(),
        status: status.as_u16(),
        code,
        description,
    })
}

/// The transport error and its causes in one line (no URL credentials: none are in URLs).
fn transport_message(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// An HTTPS client trusting only the CA in `settings.ca_file`, following no redirect.
fn http_client(settings: &BoshSettings) -> Result<reqwest::Client, String> {
    let tls =
        common::tls::trusting_only(&settings.ca_file).map_err(|e| format!("bosh.ca_file: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("building the Director client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, ca_file: &std::path::Path) -> BoshSettings {
        BoshSettings::new(url, ca_file.to_path_buf(), "osb", "s".to_string().into())
    }

    fn refusal(settings: &BoshSettings) -> String {
        match Director::new(settings) {
            Ok(_) => panic!("accepted {settings:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_director_needs_https_and_a_ca_file_holding_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let said = refusal(&settings("https://10.0.0.6:25555", &missing));
        assert!(
            said.starts_with("bosh.ca_file: cannot read") && said.contains("missing.pem"),
            "{said}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let said = refusal(&settings("https://10.0.0.6:25555", &empty));
        assert!(said.contains("no certificate"), "{said}");
        let said = refusal(&settings("http://10.0.0.6:25555", &empty));
        assert!(said.contains("must be an https:// URL"), "{said}");

        common::certs::write_bundle(dir.path(), &["director"], &["127.0.0.1".to_string()]).unwrap();
        Director::new(&settings(
            "https://10.0.0.6:25555/",
            &dir.path().join("ca.pem"),
        ))
        .map(|d| assert_eq!(d.url, "https://10.0.0.6:25555"))
        .unwrap();
    }
}
