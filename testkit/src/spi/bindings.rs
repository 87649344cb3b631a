//! What every data service's bindings must do when the instance cannot be reached: answer
//! "unavailable", a 503 the broker retries that reveals nothing, never an internal error.
//! [`crate::binding_tests!`] turns each check into a test.

use actix_web::http::StatusCode;
use actix_web::ResponseError;
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::secret::SecretString;
use spi_kit::error::{ApiError, ErrorKind};
use spi_kit::request::RequestId;
use spi_kit::Bindings;

fn admin() -> AdminCredentials {
    AdminCredentials {
        username: "a".into(),
        password: SecretString::new("p"),
    }
}

/// An endpoint nothing listens on.
fn closed_port() -> [DeploymentEndpoint; 1] {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    [DeploymentEndpoint {
        host: "127.0.0.1".into(),
        port,
    }]
}

fn assert_unavailable<T: std::fmt::Debug, E: Into<ErrorKind>>(result: Result<T, E>) {
    let kind: ErrorKind = result.expect_err("no instance, yet it worked").into();
    assert!(
        matches!(kind, ErrorKind::InstanceUnavailable(_)),
        "{kind:?}"
    );
}

/// Binding and unbinding on an instance without endpoints is unavailable.
pub async fn an_instance_without_endpoints_is_unavailable<S: Bindings>() {
    assert_unavailable(S::create_binding("b", &[], &admin()).await);
    assert_unavailable(S::delete_binding("b", &[], &admin()).await);
}

/// Binding and unbinding against a port nothing listens on is unavailable, not an internal
/// error.
pub async fn a_closed_port_is_unavailable_not_an_internal_error<S: Bindings>() {
    let endpoints = closed_port();
    assert_unavailable(S::create_binding("b", &endpoints, &admin()).await);
    assert_unavailable(S::delete_binding("b", &endpoints, &admin()).await);
}

/// The answer to an unreachable instance is a 503 naming the request, without the detail.
pub async fn an_unreachable_instance_is_a_retryable_503<S: Bindings>() {
    let endpoints = closed_port();
    let err = S::delete_binding("b", &endpoints, &admin())
        .await
        .expect_err("no instance, yet it worked");
    let e = ApiError::new(&RequestId("req-1".into()), err);
    assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    let envelope = e.envelope();
    assert_eq!(envelope.error, "InstanceUnavailable");
    assert_eq!(envelope.request_id.as_deref(), Some("req-1"));
    assert!(!envelope.description.contains("127.0.0.1"), "{envelope:?}");
}

/// One `#[tokio::test]` per check of [`crate::spi::bindings`], on the bindings of data
/// service `$service`. The calling crate needs `tokio`.
#[macro_export]
macro_rules! binding_tests {
    ($service:ty) => {
        $crate::__spi_checks!(awaited bindings $service;
            an_instance_without_endpoints_is_unavailable,
            a_closed_port_is_unavailable_not_an_internal_error,
            an_unreachable_instance_is_a_retryable_503,
        );
    };
}
