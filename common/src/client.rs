//! The one `send` path shared by the typed internal clients: builds the mTLS reqwest client,
//! propagates the request id and originating identity, and turns every non-2xx answer into a
//! structured [`ClientError`] carrying the callee's error envelope.

use crate::envelope::ErrorEnvelope;
use crate::tls::TlsFiles;
use crate::{ORIGINATING_IDENTITY_HEADER, REQUEST_ID_HEADER};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Failure of an internal call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The callee could not be reached or the connection broke (retryable).
    #[error("transport error calling {url}: {source}")]
    Transport {
        /// What was called.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The callee answered with a non-2xx status.
    #[error("{url} answered {status}: {} ({})", .envelope.description, .envelope.error)]
    Status {
        /// What was called.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The callee's error envelope (or a synthesised one for a non-JSON body).
        envelope: ErrorEnvelope,
    },
    /// The callee's 2xx body did not decode.
    #[error("undecodable answer from {url}: {message}")]
    Decode {
        /// What was called.
        url: String,
        /// Decoder message.
        message: String,
    },
    /// The client could not be built (bad TLS material).
    #[error("client setup: {0}")]
    Setup(String),
}

impl ClientError {
    /// HTTP status of a `Status` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (transport failures and 5xx), except a TLS
    /// handshake that failed on a certificate: see [`ClientError::certificate_refusal`].
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => self.certificate_refusal().is_none(),
            Self::Status { status, .. } => *status >= 500,
            Self::Decode { .. } | Self::Setup(_) => false,
        }
    }
}

impl ClientError {
    /// Why the TLS handshake failed, when it failed on a certificate: the callee's was refused
    /// here (unknown issuer, expired, wrong name) or ours by the callee (bad, unknown or
    /// expired certificate, access denied). Retrying cannot help until someone changes the
    /// certificates, so such a failure is permanent.
    pub fn certificate_refusal(&self) -> Option<String> {
        let Self::Transport { source, .. } = self else {
            return None;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
        while let Some(error) = cause {
            if let Some(tls) = error.downcast_ref::<rustls::Error>() {
                return is_certificate_refusal(tls).then(|| tls.to_string());
            }
            // An I/O error's `source` skips the error it wraps (where the TLS error sits,
            // sometimes inside another I/O error): follow the wrapped error instead.
            cause = match error.downcast_ref::<std::io::Error>() {
                Some(io) => io
                    .get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static)),
                None => error.source(),
            };
        }
        None
    }
}

/// Whether a TLS error is a refusal of a certificate (by either side).
fn is_certificate_refusal(error: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::CertificateRequired
        ),
        _ => false,
    }
}

/// Per-call headers propagated to the callee.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Request id (`X-Broker-API-Request-Identity`).
    pub request_id: Option<String>,
    /// Originating identity, verbatim.
    pub originating_identity: Option<String>,
}

impl CallContext {
    /// A context carrying only a request id.
    pub fn with_request_id(id: impl Into<String>) -> Self {
        Self {
            request_id: Some(id.into()),
            originating_identity: None,
        }
    }
}

/// How long an idle pooled connection is kept. The services' servers (actix-web) close an idle
/// keep-alive connection after 5 s; a client that reuses one just as the server closes it gets
/// a transport error ("connection closed before message completed"). Dropping idle
/// connections well before the server does closes that race.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP client for one internal service at `base_url`, speaking mTLS.
#[derive(Debug, Clone)]
pub struct InternalClient {
    http: reqwest::Client,
    base_url: String,
}

impl InternalClient {
    /// Builds a client that presents the certificate in `tls` and trusts only its CA.
    pub fn new(base_url: &str, tls: &TlsFiles, timeout: Duration) -> Result<Self, ClientError> {
        let config = tls
            .client_config()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self::from_reqwest(base_url, http))
    }

    /// Wraps an existing reqwest client (tests use this to call without a certificate).
    pub fn from_reqwest(base_url: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Starts a request to `path` (which begins with `/`).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
    }

    /// Sends `req` with the context's headers and decodes a 2xx JSON body into `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        ctx: &CallContext,
    ) -> Result<T, ClientError> {
        let mut req = req;
        if let Some(id) = &ctx.request_id {
            req = req.header(REQUEST_ID_HEADER, id);
        }
        if let Some(oi) = &ctx.originating_identity {
            req = req.header(ORIGINATING_IDENTITY_HEADER, oi);
        }
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: source
                .url()
                .map(|u| u.to_string())
                .unwrap_or_else(|| self.base_url.clone()),
            source,
        })?;
        let url = resp.url().to_string();
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let envelope = serde_json::from_slice::<ErrorEnvelope>(&bytes).unwrap_or_else(|_| {
                ErrorEnvelope::new(
                    "UnexpectedResponse",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
                )
            });
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                envelope,
            });
        }
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            url,
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_certificate_refusal;
    use rustls::{AlertDescription, CertificateError, Error};

    #[test]
    fn only_certificate_failures_of_the_handshake_are_refusals() {
        assert!(is_certificate_refusal(&Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        )));
        assert!(is_certificate_refusal(&Error::InvalidCertificate(
            CertificateError::Expired
        )));
        assert!(is_certificate_refusal(&Error::AlertReceived(
            AlertDescription::BadCertificate
        )));
        assert!(is_certificate_refusal(&Error::AlertReceived(
            AlertDescription::AccessDenied
        )));
        assert!(!is_certificate_refusal(&Error::AlertReceived(
            AlertDescription::CloseNotify
        )));
        assert!(!is_certificate_refusal(&Error::DecryptError));
    }
}
