//! The `[webhooks]` settings: endpoints (URL, event kinds, secret, timeout), the retry policy
//! and the dispatcher's tuning; checked once at start.

use super::event::check_pattern;
use common::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Milliseconds between dispatcher rounds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 500;
/// Milliseconds the dispatcher lease lasts without renewal.
pub const DEFAULT_LEASE_MS: u64 = 10_000;
/// Milliseconds before the first retry.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 1_000;
/// The longest wait between two attempts.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 300_000;
/// Attempts before an event becomes a dead letter.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Milliseconds one attempt may take.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Seconds a delivered event is kept before it is pruned.
pub const DEFAULT_KEEP_DELIVERED_SECS: u64 = 7 * 24 * 3600;

/// Callbacks: where events go and how hard the dispatcher tries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// The endpoints; none: no event is recorded and no dispatcher runs.
    pub endpoints: Vec<EndpointSettings>,
    /// Milliseconds between dispatcher rounds.
    pub poll_interval_ms: u64,
    /// Milliseconds the dispatcher lease lasts without renewal (one dispatcher across the
    /// brokers sharing the database).
    pub lease_ms: u64,
    /// Backoff and dead letters.
    pub retry: RetrySettings,
    /// Seconds delivered events are kept (dead letters are kept until redelivered).
    pub keep_delivered_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            lease_ms: DEFAULT_LEASE_MS,
            retry: RetrySettings::default(),
            keep_delivered_secs: DEFAULT_KEEP_DELIVERED_SECS,
        }
    }
}

/// Exponential backoff (factor 2) with a cap, then a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrySettings {
    /// Milliseconds before the second attempt; each further wait doubles.
    pub initial_backoff_ms: u64,
    /// The longest wait.
    pub max_backoff_ms: u64,
    /// Attempts in all; the event is a dead letter after the last one failed.
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// Unique name (in the outbox, metrics and logs).
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// Event kinds wanted: `*`, `<operation>.<phase>`, `<operation>.*`, `*.<phase>`.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// The HMAC key (never logged); or `secret_file`.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// A file (mode 0600 or stricter) holding the HMAC key; trailing whitespace is dropped.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Milliseconds one attempt may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM CA certificate(s) an `https://` endpoint's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl WebhookSettings {
    /// Milliseconds between dispatcher rounds (at least 10).
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    /// The lease length (at least 100 ms).
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.max(100))
    }

    /// Checks every endpoint; the error names the setting.
    pub fn check(&self) -> Result<(), String> {
        for (n, endpoint) in self.endpoints.iter().enumerate() {
            let field = |name: &str| format!("webhooks.endpoints[{n}].{name}");
            common::ids::validate_id(&field("name"), &endpoint.name).map_err(|e| e.to_string())?;
            if self.endpoints[..n].iter().any(|e| e.name == endpoint.name) {
                return Err(format!(
                    "{}: {:?} is used twice",
                    field("name"),
                    endpoint.name
                ));
            }
            let url = reqwest::Url::parse(&endpoint.url)
                .map_err(|e| format!("{}: not a URL: {e}", field("url")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "{}: must be an http:// or https:// URL",
                    field("url")
                ));
            }
            if endpoint.events.is_empty() {
                return Err(format!(
                    "{}: name at least one event kind (or `*`)",
                    field("events")
                ));
            }
            for pattern in &endpoint.events {
                check_pattern(pattern).map_err(|e| format!("{}: {e}", field("events")))?;
            }
            match (&endpoint.secret, &endpoint.secret_file) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "{}: set exactly one of `secret` and `secret_file`",
                        field("secret")
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl EndpointSettings {
    /// The HMAC key: `secret`, or the contents of `secret_file`, which must not be readable
    /// by group or others. Errors name the setting, never the secret.
    pub fn load_secret(&self) -> Result<SecretString, String> {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => read_secret_file(path)?,
            (None, None) => return Err(format!("webhook endpoint {}: no secret", self.name)),
        };
        if secret.expose().is_empty() {
            return Err(format!(
                "webhook endpoint {}: the secret is empty",
                self.name
            ));
        }
        Ok(secret)
    }
}

fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("secret_file {shown}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "secret_file {shown}: readable by group or others (mode {:o}); make it 0600",
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("secret_file {shown}: {e}"))?;
    Ok(SecretString::new(text.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn endpoint(name: &str) -> EndpointSettings {
        EndpointSettings {
            name: name.into(),
            url: "http://127.0.0.1:9/hook".into(),
            events: all_events(),
            secret: Some(SecretString::new("s3cret")),
            secret_file: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            ca_file: None,
        }
    }

    #[test]
    fn each_bad_endpoint_setting_is_named() {
        let check = |e: EndpointSettings| {
            WebhookSettings {
                endpoints: vec![endpoint("ok"), e],
                ..Default::default()
            }
            .check()
            .unwrap_err()
        };
        let mut e = endpoint("b");
        e.url = "ftp://x".into();
        assert!(check(e).starts_with("webhooks.endpoints[1].url"));
        let mut e = endpoint("b");
        e.events = vec!["provision.done".into()];
        assert!(check(e).starts_with("webhooks.endpoints[1].events"));
        let mut e = endpoint("b");
        e.secret = None;
        assert!(check(e).starts_with("webhooks.endpoints[1].secret"));
        assert!(check(endpoint("ok")).contains("used twice"));
        let fine = WebhookSettings {
            endpoints: vec![endpoint("a"), endpoint("b")],
            ..Default::default()
        };
        assert_eq!(fine.check(), Ok(()));
    }

    #[test]
    fn a_secret_file_must_be_private_and_its_error_never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.secret");
        std::fs::write(&path, "file-secret-1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut e = endpoint("a");
        e.secret = None;
        e.secret_file = Some(path.clone());
        let err = e.load_secret().unwrap_err();
        assert!(
            err.contains("make it 0600") && !err.contains("file-secret-1"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(e.load_secret().unwrap().expose(), "file-secret-1");
    }
}
