//! Internal services refuse clients without a certificate from the internal CA.

use crate::helpers::TestStack;
use std::time::Duration;

async fn refused(url: &str, config: Option<rustls::ClientConfig>) -> bool {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(c) = config {
        b = b.use_preconfigured_tls(c);
    }
    b.build().unwrap().get(url).send().await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spis_and_the_deployer_refuse_clients_without_a_certificate_from_the_internal_ca() {
    let t = TestStack::start().await;
    let s = t.stack();
    let broker_tls = s.layout.tls("broker");
    let other = tempfile::tempdir().unwrap();
    common::certs::write_bundle(other.path(), &["broker"], &common::certs::loopback_hosts())
        .unwrap();
    let mut foreign = common::tls::TlsFiles::in_dir(other.path(), "broker");
    // Trust the real CA, but present a certificate from another CA.
    foreign.ca_file = broker_tls.ca_file.clone();

    let mut targets: Vec<String> = s
        .broker_settings
        .spis
        .iter()
        .map(|spi| format!("{}/spi/v1/catalog", spi.url))
        .collect();
    targets.push(format!("{}/deployer/v1/deployments", s.deployer_url));
    for url in &targets {
        assert!(
            refused(url, Some(broker_tls.anonymous_client_config().unwrap())).await,
            "{url} accepted a client without a certificate"
        );
        assert!(
            refused(url, Some(foreign.client_config().unwrap())).await,
            "{url} accepted a certificate from another CA"
        );
        assert!(
            !refused(url, Some(broker_tls.client_config().unwrap())).await,
            "{url} refused the broker's certificate"
        );
    }
}
