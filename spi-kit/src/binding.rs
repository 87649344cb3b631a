//! What binding on a running instance looks like whatever the data service: the credentials a
//! binding gets, "the instance cannot be reached now" as its own error, and a time limit for a
//! whole bind or unbind.

use common::deployer::DeploymentEndpoint;
use common::osb::{Endpoint, JsonObject};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

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
}
