//! Who may call the fake Director: HTTP basic credentials, or bearer tokens from its UAA
//! (`POST /uaa/oauth/token`, `grant_type=client_credentials`, the client's id and secret as
//! basic auth or form fields), which expire after the configured TTL. Every route but
//! `GET /info` and the UAA answers `401` with `WWW-Authenticate: Basic realm="BOSH Director"`
//! without valid credentials. The middleware also records every request.

use super::knobs::lock;
use super::state::{Director, RecordedRequest};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use base64::Engine as _;
use common::secret::SecretString;
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

/// The UAA token path on the fake.
pub const TOKEN_PATH: &str = "/uaa/oauth/token";

/// How clients authenticate.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// `Authorization: Basic` with this user and password.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// Bearer tokens from the UAA, issued to this client.
    Uaa {
        /// Client id.
        client: String,
        /// Client secret.
        secret: SecretString,
    },
}

/// The authenticated caller, put in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct User(pub String);

/// Middleware: records the request and then its answer's status, lets `GET /info` and the
/// UAA through, and answers 401 to anything else without valid credentials.
pub(crate) async fn guard<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let director = req
        .app_data::<web::Data<Director>>()
        .expect("the Director is in the app data")
        .clone();
    let index = director.record_request(record(req.request()));
    let open = req.path() == "/info" || req.path().starts_with("/uaa/");
    let answer = if open {
        next.call(req).await.map(|r| r.map_into_left_body())
    } else if let Some(user) = authenticate(&director, req.request()) {
        req.extensions_mut().insert(User(user));
        next.call(req).await.map(|r| r.map_into_left_body())
    } else {
        Ok(req.into_response(unauthorized()).map_into_right_body())
    };
    let status = match &answer {
        Ok(response) => response.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    director.record_status(index, status.as_u16());
    answer
}

/// The 401 every protected route answers without valid credentials.
pub(crate) fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Basic realm=\"BOSH Director\""))
        .json(json!({"code": 401, "description": "Not authorized"}))
}

/// The caller's name when its credentials are valid.
fn authenticate(director: &Director, req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, value) = header.split_once(' ')?;
    match &director.auth {
        AuthConfig::Basic { username, password } if scheme.eq_ignore_ascii_case("basic") => {
            let (user, pass) = decode_basic(value)?;
            (user == *username && pass == password.expose()).then_some(user)
        }
        AuthConfig::Uaa { client, .. } if scheme.eq_ignore_ascii_case("bearer") => {
            let mut tokens = lock(&director.tokens);
            let now = Instant::now();
            tokens.retain(|_, expiry| *expiry > now);
            tokens.contains_key(value.trim()).then(|| client.clone())
        }
        _ => None,
    }
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The form of a token request.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /uaa/oauth/token`: a client-credentials token for the configured client.
pub(crate) async fn token(
    director: web::Data<Director>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let AuthConfig::Uaa { client, secret } = &director.auth else {
        return HttpResponse::NotFound().json(json!({"error": "not_found"}));
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return HttpResponse::BadRequest().json(json!({
            "error": "unsupported_grant_type",
            "error_description": "only client_credentials is supported"
        }));
    }
    let from_header = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(decode_basic);
    let (id, given) = match (from_header, &form.client_id, &form.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(s)) => (id.clone(), s.clone()),
        _ => (String::new(), String::new()),
    };
    if id != *client || given != secret.expose() {
        return HttpResponse::Unauthorized().json(json!({
            "error": "unauthorized",
            "error_description": "Bad credentials"
        }));
    }
    let ttl = director.knobs.token_ttl();
    let access_token = common::secret::random_password(40);
    lock(&director.tokens).insert(access_token.expose().to_string(), Instant::now() + ttl);
    HttpResponse::Ok().json(json!({
        "access_token": access_token.expose(),
        "token_type": "bearer",
        "expires_in": ttl.as_secs(),
        "scope": "bosh.admin",
        "jti": uuid::Uuid::new_v4().simple().to_string(),
    }))
}

fn record(req: &HttpRequest) -> RecordedRequest {
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if name == "authorization" {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect();
    RecordedRequest {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers,
        status: None,
    }
}
