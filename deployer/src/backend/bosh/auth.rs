//! Logging in to the Director the way its `GET /info` asks: `basic` (client and secret as
//! basic auth on every call), or `uaa` (a client-credentials token from `<uaa>/oauth/token`,
//! sent as `bearer`, fetched again shortly before it expires or after a 401).

use super::api::Info;
use super::director::{Call, Director, DirectorError, Failure};
use common::secret::SecretString;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Longest time before its expiry that a token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How the Director wants its calls authenticated, learnt once.
#[derive(Debug)]
enum Method {
    Basic,
    Uaa {
        token_url: String,
        token: Option<Token>,
    },
}

#[derive(Debug)]
struct Token {
    value: SecretString,
    /// When it is replaced: a margin before it expires.
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The client's credentials and the Director's login method (`None` until `/info` is read).
pub(super) struct Login {
    client: String,
    secret: SecretString,
    method: Mutex<Option<Method>>,
}

impl Login {
    pub fn new(client: &str, secret: SecretString) -> Self {
        Self {
            client: client.to_string(),
            secret,
            method: Mutex::new(None),
        }
    }

    pub fn client(&self) -> &str {
        &self.client
    }

    /// The `Authorization` header value for the next call; `fresh` (after a 401) reads
    /// `/info` again first, which also drops the token.
    pub(super) async fn header(
        &self,
        director: &Director,
        fresh: bool,
    ) -> Result<SecretString, Failure> {
        let mut method = self.method.lock().await;
        if fresh || method.is_none() {
            *method = Some(self.learn(director).await?);
        }
        match method.as_mut() {
            Some(Method::Uaa { token_url, token }) => {
                let valid = token.as_ref().filter(|t| Instant::now() < t.refresh_at);
                if let Some(t) = valid {
                    return Ok(bearer(&t.value));
                }
                let fetched = self.fetch_token(director, token_url).await?;
                let header = bearer(&fetched.value);
                *token = Some(fetched);
                Ok(header)
            }
            _ => Ok(self.basic()),
        }
    }

    fn basic(&self) -> SecretString {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.client, self.secret.expose());
        SecretString::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// Reads `GET /info` (no credentials) for the login method.
    async fn learn(&self, director: &Director) -> Result<Method, Failure> {
        let call = Call::get("/info");
        let response = director
            .http
            .get(format!("{}/info", director.url))
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("GET /info: {e}")))?;
        if response.status().is_server_error() {
            return Err(Failure::Unreachable(format!(
                "GET /info answered {}",
                response.status()
            )));
        }
        let info: Info = super::director::check(&call, response)
            .await?
            .json()
            .await
            .map_err(|e| DirectorError::Other(format!("undecodable GET /info: {e}")))?;
        match info.user_authentication.kind.as_str() {
            "basic" => Ok(Method::Basic),
            "uaa" => {
                let url = info.user_authentication.options.url.ok_or_else(|| {
                    DirectorError::Other("GET /info names uaa without its url".into())
                })?;
                Ok(Method::Uaa {
                    token_url: format!("{}/oauth/token", url.trim_end_matches('/')),
                    token: None,
                })
            }
            other => Err(DirectorError::Other(format!(
                "the Director asks for login method {other:?}; only basic and uaa are supported"
            ))
            .into()),
        }
    }

    /// A client-credentials token from the UAA.
    async fn fetch_token(&self, director: &Director, token_url: &str) -> Result<Token, Failure> {
        let response = director
            .http
            .post(token_url)
            .basic_auth(&self.client, Some(self.secret.expose()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("POST {token_url}: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Failure::Unreachable(format!(
                "POST {token_url} answered {status}"
            )));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(DirectorError::Other(format!(
                "the UAA at {token_url} refused client {:?} ({status})",
                self.client
            ))
            .into());
        }
        if !status.is_success() {
            return Err(DirectorError::Other(format!("POST {token_url} answered {status}")).into());
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            DirectorError::Other(format!("undecodable token from {token_url}: {e}"))
        })?;
        if let Some(kind) = answer.token_type.as_deref() {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(DirectorError::Other(format!(
                    "the UAA gave a {kind} token; a bearer token is needed"
                ))
                .into());
            }
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(0));
        Ok(Token {
            value: answer.access_token,
            refresh_at: Instant::now() + lifetime - refresh_margin(lifetime),
        })
    }
}

/// How long before its expiry a token of `lifetime` is replaced: a quarter of its life, at
/// most [`REFRESH_MARGIN`].
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(REFRESH_MARGIN)
}

fn bearer(token: &SecretString) -> SecretString {
    SecretString::new(format!("bearer {}", token.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_replaced_a_quarter_of_its_life_early_but_at_most_a_minute() {
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }
}
