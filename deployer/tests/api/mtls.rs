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

/// Issues, from the test's CA, a certificate for `name` beside the others.
fn issue(app: &TestApp, name: &str) -> TlsFiles {
    common::certs::renew_bundle(
        common::certs::Layout::Flat,
        app.env.certs.path(),
        &[name],
        &common::certs::loopback_hosts(),
        true,
    )
    .unwrap();
    TlsFiles::in_dir(app.env.certs.path(), name)
}

#[tokio::test]
async fn a_certificate_from_the_internal_ca_with_another_identity_is_forbidden_and_changes_nothing()
{
    let app = spawn_app().await;
    let name = unique_name("kv");
    // A deployment record to aim at (its server need not be up for the check).
    let spec = spec(common::deployer::Engine::Redis, &name, &password(), &[]);
    app.client.put_deployment(&spec, &ctx()).await.unwrap();
    for identity in ["intruder", "spi-postgres", "spi-keyvalue", "deployer"] {
        let client = http_client(issue(&app, identity).client_config().unwrap());
        let list = client.get(deployments_url(&app));
        let delete = client.delete(format!("{}/{name}", deployments_url(&app)));
        let put = client
            .put(format!("{}/{name}", deployments_url(&app)))
            .json(&spec);
        for request in [list, delete, put] {
            let response = request
                .header(common::REQUEST_ID_HEADER, "r-intruder")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{identity}");
            assert_eq!(response.headers()[common::REQUEST_ID_HEADER], "r-intruder");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "Forbidden", "{body}");
            assert_eq!(body["request_id"], "r-intruder");
            let description = body["description"].as_str().unwrap();
            assert!(
                description.contains(&format!("{identity:?}")),
                "{description}"
            );
        }
    }
    // Nothing was deleted or replaced: the broker still sees the one deployment it made.
    let deployments = app.client.list_deployments(&ctx()).await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].name, name);
    assert_ne!(
        deployments[0].state,
        common::deployer::DeploymentState::Deleting
    );
}

#[tokio::test]
async fn the_health_check_answers_any_certificate_from_the_internal_ca() {
    let app = spawn_app().await;
    let client = http_client(issue(&app, "deployer").client_config().unwrap());
    let response = client
        .get(format!(
            "{}{}",
            app.base_url,
            service_edge::authz::HEALTH_PATH
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_allowed_identities_are_configurable() {
    let env = TestEnv::new();
    let mut settings = deployer::config::Settings::new(
        env.data_dir().to_path_buf(),
        TlsFiles::in_dir(env.certs.path(), "deployer"),
    );
    settings.tls.allowed_clients = vec!["ops".into()];
    let app = deployer::Application::build(settings).await.unwrap();
    let url = format!("https://localhost:{}/deployer/v1/deployments", app.port());
    let handle = app.server_handle();
    tokio::spawn(app.run_until_stopped());
    let ops = common::certs::renew_bundle(
        common::certs::Layout::Flat,
        env.certs.path(),
        &["ops"],
        &common::certs::loopback_hosts(),
        true,
    )
    .map(|_| TlsFiles::in_dir(env.certs.path(), "ops"))
    .unwrap();
    let as_ops = http_client(ops.client_config().unwrap());
    assert_eq!(as_ops.get(&url).send().await.unwrap().status(), 200);
    let as_broker = http_client(env.client_tls().client_config().unwrap());
    assert_eq!(as_broker.get(&url).send().await.unwrap().status(), 403);
    handle.stop(true).await;
}
