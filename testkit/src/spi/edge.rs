//! What every SPI's HTTP edge must do, checked against a running SPI: only clients with a
//! certificate from the internal CA get an answer, the request id is echoed (or made up), and
//! an unknown path is a 404 envelope. [`crate::edge_tests!`] turns each check into a test.

use super::{client_with, make_certs, TestApp};
use common::tls::TlsFiles;

/// A client without a certificate gets no answer; the same request with the broker's does.
pub async fn a_client_without_a_certificate_is_refused_at_the_handshake(app: &TestApp) {
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

/// A client whose certificate comes from another CA gets no answer.
pub async fn a_client_with_a_certificate_from_another_ca_is_refused(app: &TestApp) {
    let stranger = make_certs();
    let files = TlsFiles {
        ca_file: app.cert_dir().join("ca.pem"),
        ..TlsFiles::in_dir(stranger.path(), "broker")
    };
    let client = client_with(files.client_config().unwrap());
    let result = client
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await;
    assert!(result.is_err(), "got an answer: {result:?}");
}

/// Plain HTTP is never served.
pub async fn plain_http_gets_no_answer(app: &TestApp) {
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

/// The caller's request id comes back on the answer; without one, a fresh UUID does.
pub async fn the_request_id_sent_is_echoed_and_one_is_made_up_when_missing(app: &TestApp) {
    let resp = app
        .http
        .get(format!("{}/spi/v1/catalog", app.address))
        .header(common::REQUEST_ID_HEADER, "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[common::REQUEST_ID_HEADER], "trace-me-42");
    let resp = app
        .http
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await
        .unwrap();
    let made_up = resp.headers()[common::REQUEST_ID_HEADER].to_str().unwrap();
    assert_eq!(made_up.len(), 36, "{made_up}");
}

/// A path outside the contract is a 404 in the error envelope, carrying the request id.
pub async fn an_unknown_path_is_a_404_envelope(app: &TestApp) {
    let resp = app
        .http
        .get(format!("{}/spi/v2/catalog", app.address))
        .header(common::REQUEST_ID_HEADER, "r-404")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "NotFound");
    assert_eq!(body["request_id"], "r-404");
}

/// Issues, from the test's CA, a certificate for `name` into the test's certificate directory.
fn issue(app: &TestApp, name: &str) -> TlsFiles {
    common::certs::renew_bundle(
        common::certs::Layout::Flat,
        app.cert_dir(),
        &[name],
        &common::certs::loopback_hosts(),
        true,
    )
    .unwrap();
    app.tls_files(name)
}

/// Every holder of a certificate from the internal CA whose identity is not the broker's (a
/// stray `intruder`, the deployer, either SPI, this one included) gets 403 with the envelope,
/// on reads and writes alike; the broker is still served.
pub async fn a_certificate_from_the_ca_with_another_identity_is_forbidden(app: &TestApp) {
    let intruder = issue(app, "intruder");
    let mut callers = vec![("intruder".to_string(), intruder)];
    for name in ["deployer", "spi-postgres", "spi-keyvalue"] {
        callers.push((name.to_string(), app.tls_files(name)));
    }
    for (name, files) in callers {
        let client = client_with(files.client_config().unwrap());
        let reads = client
            .get(format!("{}/spi/v1/catalog", app.address))
            .header(common::REQUEST_ID_HEADER, "r-403");
        let writes = client
            .post(format!("{}/spi/v1/bindings/delete", app.address))
            .json(&serde_json::json!({}));
        for request in [reads, writes] {
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), 403, "{name}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "Forbidden", "{name}: {body}");
            let description = body["description"].as_str().unwrap();
            assert!(description.contains(&format!("{name:?}")), "{description}");
            assert!(body["request_id"].is_string(), "{body}");
        }
    }
    let ok = app
        .http
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// `GET /healthz` answers any certificate from the CA (a container's health check holds only
/// its own), with nothing but the status.
pub async fn the_health_check_answers_any_certificate_from_the_ca(app: &TestApp) {
    let own = client_with(app.tls_files("spi-postgres").client_config().unwrap());
    let resp = own
        .get(format!(
            "{}{}",
            app.address,
            service_edge::authz::HEALTH_PATH
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

/// The server certificate a new connection is shown.
async fn served_certificate(app: &TestApp) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(app.tls_files("broker").client_config().unwrap())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/spi/v1/catalog", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("the server's certificate")
        .to_vec()
}

/// After the SPI's certificate files are renewed in place, new connections get the new
/// certificate (still trusted through the CA), with no restart.
pub async fn a_renewed_server_certificate_is_served_without_a_restart(app: &TestApp) {
    let before = served_certificate(app).await;
    assert_eq!(
        served_certificate(app).await,
        before,
        "stable until renewed"
    );
    for name in common::certs::SERVICE_NAMES {
        issue(app, name);
    }
    let after = served_certificate(app).await;
    assert_ne!(after, before, "the renewed certificate is not served");
    assert_eq!(
        common::tls::identity::common_name(&after),
        common::tls::identity::common_name(&before)
    );
}

/// One `#[tokio::test]` per check of [`crate::spi::edge`], against the SPI of data service
/// `$service` started by [`crate::spi::spawn_app`]. The calling crate needs `tokio`.
#[macro_export]
macro_rules! edge_tests {
    ($service:ty) => {
        $crate::edge_tests!(@each $service;
            a_client_without_a_certificate_is_refused_at_the_handshake,
            a_client_with_a_certificate_from_another_ca_is_refused,
            plain_http_gets_no_answer,
            the_request_id_sent_is_echoed_and_one_is_made_up_when_missing,
            an_unknown_path_is_a_404_envelope,
            a_certificate_from_the_ca_with_another_identity_is_forbidden,
            the_health_check_answers_any_certificate_from_the_ca,
            a_renewed_server_certificate_is_served_without_a_restart,
        );
    };
    (@each $service:ty; $($check:ident,)+) => {
        $(
            #[tokio::test]
            async fn $check() {
                let app = $crate::spi::spawn_app::<$service>().await;
                $crate::spi::edge::$check(&app).await;
            }
        )+
    };
}
