//! Mutual TLS: only clients with a certificate from the internal CA get an answer.

use crate::helpers::{client_with, make_certs, spawn_app};
use common::tls::TlsFiles;

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_at_the_handshake() {
    let app = spawn_app().await;
    let anonymous = client_with(app.tls_files("broker").anonymous_client_config().unwrap());
    let result = anonymous
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await;
    assert!(result.is_err(), "got an answer: {result:?}");
    // The same request with the broker's certificate is answered.
    let ok = app
        .http
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_client_with_a_certificate_from_another_ca_is_refused() {
    let app = spawn_app().await;
    let stranger = make_certs();
    let files = TlsFiles {
        ca_file: app.cert_dir().join("ca.pem"),
        cert_file: stranger.path().join("broker.pem"),
        key_file: stranger.path().join("broker-key.pem"),
    };
    let client = client_with(files.client_config().unwrap());
    let result = client
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await;
    assert!(result.is_err(), "got an answer: {result:?}");
}

#[tokio::test]
async fn plain_http_gets_no_answer() {
    let app = spawn_app().await;
    let plain = reqwest::Client::new();
    let result = plain
        .get(app.address.replace("https://", "http://") + "/spi/v1/catalog")
        .send()
        .await;
    match result {
        Err(_) => {}
        Ok(resp) => assert!(!resp.status().is_success(), "plain HTTP was served"),
    }
}
