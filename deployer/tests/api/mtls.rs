//! Only clients with a certificate from the internal CA get past the TLS handshake.

use crate::helpers::*;
use common::tls::TlsFiles;
use std::time::Duration;

fn http_client(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn deployments_url(app: &TestApp) -> String {
    format!("{}/deployer/v1/deployments", app.base_url)
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_at_the_handshake() {
    let app = spawn_app().await;
    let client = http_client(app.env.client_tls().anonymous_client_config().unwrap());
    let result = client.get(deployments_url(&app)).send().await;
    assert!(result.is_err(), "got an HTTP answer: {result:?}");
}

#[tokio::test]
async fn a_client_with_a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let app = spawn_app().await;
    let other = tempfile::tempdir().unwrap();
    common::certs::write_bundle(other.path(), &["broker"], &common::certs::loopback_hosts())
        .unwrap();
    // Trusts the deployer's CA, but presents a certificate the deployer's CA did not issue.
    let impostor = TlsFiles {
        ca_file: app.env.client_tls().ca_file,
        ..TlsFiles::in_dir(other.path(), "broker")
    };
    let client = http_client(impostor.client_config().unwrap());
    let result = client.get(deployments_url(&app)).send().await;
    assert!(result.is_err(), "got an HTTP answer: {result:?}");
}

#[tokio::test]
async fn a_client_with_a_certificate_from_the_internal_ca_is_served() {
    let app = spawn_app().await;
    let client = http_client(app.env.client_tls().client_config().unwrap());
    let response = client.get(deployments_url(&app)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!([]));
}
