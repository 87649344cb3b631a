//! What binding on a running instance looks like whatever the data service: the credentials a
//! binding gets, "the instance cannot be reached now" as its own error (and
//! [`crate::binding_error!`], a data service's binding error built around it), and a time limit
//! for a whole bind or unbind.

use common::deployer::DeploymentEndpoint;
use common::osb::{Endpoint, JsonObject};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// Length of binding passwords.
pub const PASSWORD_LEN: usize = 32;

/// Upper bound for a whole bind or unbind, so a hung server cannot hold a request forever.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The instance cannot be reached or is not accepting work now; the caller may retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance unavailable: {0}")]
pub struct Unavailable(pub String);

/// What a new binding gets.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingCredentials {
    /// Credentials object for the application (contains the password).
    pub credentials: JsonObject,
    /// Network endpoints.
    pub endpoints: Vec<Endpoint>,
}

impl BindingCredentials {
    /// `credentials` (a JSON object) for a server reached over TCP at `endpoint`.
    pub fn tcp(endpoint: &DeploymentEndpoint, credentials: Value) -> Self {
        Self {
            credentials: credentials.as_object().cloned().unwrap_or_default(),
            endpoints: vec![Endpoint {
                host: endpoint.host.clone(),
                ports: vec![endpoint.port.to_string()],
                protocol: Some("tcp".into()),
            }],
        }
    }
}

/// The endpoint a binding talks to: the instance's first.
pub fn first_endpoint(
    endpoints: &[DeploymentEndpoint],
) -> Result<&DeploymentEndpoint, Unavailable> {
    endpoints
        .first()
        .ok_or_else(|| Unavailable("the instance has no endpoint".into()))
}

/// Runs `work` for at most [`OPERATION_TIMEOUT`]; running out of time makes it [`Unavailable`].
pub async fn bounded<T, E: From<Unavailable>>(
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(OPERATION_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(Unavailable(format!(
                "no answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            ))
            .into())
        })
}

/// `host` as it appears in a URL (IPv6 addresses in brackets).
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Declares a data service's binding error `$name`: either `Unavailable` ([`Unavailable`]: the
/// instance cannot be reached or is not accepting work now, a 503 the broker retries) or
/// `$variant`, an error of the server's client `$client` that `$retryable` (a
/// `fn(&$client) -> bool`) does not call "not now" (a 500 that keeps the detail to the log).
/// Errors of `$client` convert with `?` and land in the right variant; the error converts into
/// [`crate::error::ErrorKind`]. `$what` names the failing part in the message (`"database"`
/// gives `database error: …`).
///
/// A macro because the `?` conversion from the client's error must be implemented on a type of
/// the data service's own crate.
#[macro_export]
macro_rules! binding_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $variant:ident($client:ty) = $what:literal,
            retryable: $retryable:path $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis enum $name {
            /// The instance cannot be reached or is not accepting work now; the caller may retry.
            Unavailable($crate::binding::Unavailable),
            /// The server answered with an error we did not expect.
            $variant($client),
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    Self::Unavailable(u) => ::std::fmt::Display::fmt(u, f),
                    Self::$variant(e) => write!(f, "{} error: {e}", $what),
                }
            }
        }

        impl ::std::error::Error for $name {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                match self {
                    Self::Unavailable(u) => ::std::error::Error::source(u),
                    Self::$variant(e) => Some(e),
                }
            }
        }

        impl From<$crate::binding::Unavailable> for $name {
            fn from(u: $crate::binding::Unavailable) -> Self {
                Self::Unavailable(u)
            }
        }

        impl From<$client> for $name {
            fn from(e: $client) -> Self {
                if $retryable(&e) {
                    Self::Unavailable($crate::binding::Unavailable(e.to_string()))
                } else {
                    Self::$variant(e)
                }
            }
        }

        impl From<$name> for $crate::error::ErrorKind {
            fn from(e: $name) -> Self {
                match e {
                    $name::Unavailable(u) => u.into(),
                    $name::$variant(e) => Self::Internal(::anyhow::Error::new(e)),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ipv6_hosts_are_bracketed_and_others_left_alone() {
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("[::1]"), "[::1]");
        assert_eq!(url_host("10.0.0.5"), "10.0.0.5");
        assert_eq!(url_host("db.internal"), "db.internal");
    }

    #[test]
    fn an_instance_without_endpoints_is_unavailable() {
        assert_eq!(
            first_endpoint(&[]).unwrap_err().to_string(),
            "instance unavailable: the instance has no endpoint"
        );
    }

    #[test]
    fn tcp_credentials_name_the_endpoint() {
        let c = BindingCredentials::tcp(
            &DeploymentEndpoint {
                host: "10.0.0.5".into(),
                port: 5433,
            },
            json!({"username": "u"}),
        );
        assert_eq!(c.credentials["username"], "u");
        assert_eq!(c.endpoints[0].host, "10.0.0.5");
        assert_eq!(c.endpoints[0].ports, vec!["5433".to_string()]);
        assert_eq!(c.endpoints[0].protocol.as_deref(), Some("tcp"));
    }

    /// A client error that is retryable when its text says so.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct ClientError(&'static str);

    fn says_busy(e: &ClientError) -> bool {
        e.0.contains("busy")
    }

    crate::binding_error! {
        /// The binding error of a test client.
        enum TestBindingError {
            Client(ClientError) = "client",
            retryable: says_busy,
        }
    }

    #[test]
    fn a_retryable_client_error_becomes_unavailable_and_a_503() {
        let e = TestBindingError::from(ClientError("busy loading"));
        assert_eq!(e.to_string(), "instance unavailable: busy loading");
        let kind: crate::error::ErrorKind = e.into();
        assert!(
            matches!(kind, crate::error::ErrorKind::InstanceUnavailable(_)),
            "{kind:?}"
        );
    }

    #[test]
    fn another_client_error_is_internal_and_named_with_its_source() {
        let e = TestBindingError::from(ClientError("syntax error"));
        assert_eq!(e.to_string(), "client error: syntax error");
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.to_string(), "syntax error");
        let kind: crate::error::ErrorKind = e.into();
        assert!(
            matches!(kind, crate::error::ErrorKind::Internal(_)),
            "{kind:?}"
        );
    }

    #[test]
    fn unavailable_converts_as_itself() {
        let e = TestBindingError::from(Unavailable("down".into()));
        assert_eq!(e.to_string(), "instance unavailable: down");
    }
}
