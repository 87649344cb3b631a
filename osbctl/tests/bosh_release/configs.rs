//! The rendered configs: loaded by each service's own settings loader, served with the rendered
//! certificates, and secrets only where the templates make them private.

use crate::harness::{load, render, Rendered, ALL_OPS};
use common::tls::TlsFiles;
use std::path::Path;
use std::time::Duration;

const SERVICES: [&str; 4] = ["broker", "deployer", "spi-postgres", "spi-keyvalue"];

fn config(rendered: &Rendered, job: &str, index: u64) -> std::path::PathBuf {
    rendered.file(job, index, &format!("config/{job}.toml"))
}

/// The rendered TLS files a config names on the VM.
fn rendered_tls(rendered: &Rendered, job: &str, tls: &TlsFiles) -> TlsFiles {
    let mut files = tls.clone();
    files.ca_file = rendered.on_vm(job, 0, &tls.ca_file);
    files.cert_file = rendered.on_vm(job, 0, &tls.cert_file);
    files.key_file = rendered.on_vm(job, 0, &tls.key_file);
    files
}

#[test]
fn the_rendered_configs_load_into_each_services_own_settings() {
    let rendered = render(&[]);
    let props = rendered.manifest_properties("broker", "broker");

    let b = broker::config::Settings::load(Some(&config(&rendered, "broker", 0))).unwrap();
    assert_eq!(b.listen, "0.0.0.0:8080");
    assert_eq!(b.auth.username, "broker");
    assert_eq!(b.auth.password.expose(), props["auth"]["password"]);
    assert_eq!(
        b.database.url,
        "sqlite:///var/vcap/store/broker/broker.sqlite"
    );
    let spis: Vec<_> = b.spis.iter().map(|s| (&*s.name, &*s.url)).collect();
    assert_eq!(
        spis,
        [
            (
                "spi-postgres",
                "https://q-s0.spi-postgres.default.osb.bosh:8444"
            ),
            (
                "spi-keyvalue",
                "https://q-s0.spi-keyvalue.default.osb.bosh:8445"
            )
        ]
    );
    assert_eq!(
        b.deployer.url,
        "https://q-s0.deployer.default.osb.bosh:8443"
    );
    assert_eq!(b.worker, broker::config::WorkerSettings::default());
    broker::crypto::Cipher::new(&b.encryption)
        .expect("the derived encryption key is one the broker accepts");

    let d: deployer::config::Settings = load(
        &deployer::config::Settings::default(),
        &config(&rendered, "deployer", 0),
    );
    assert_eq!(d.backend, deployer::config::BackendKind::Process);
    assert_eq!(d.data_dir, Path::new("/var/vcap/store/deployer"));
    assert_eq!(
        d.process.postgres_bin_dir,
        Path::new("/var/vcap/packages/postgres-15/usr/lib/postgresql/15/bin")
    );
    assert!(
        d.process.advertise_host.parse::<std::net::IpAddr>().is_ok(),
        "the servers are advertised at the VM's IP, got {}",
        d.process.advertise_host
    );

    let p = spi_postgres::config::Settings::load(
        Some(&config(&rendered, "spi-postgres", 0)),
        spi_postgres::config::ENV_PREFIX,
    )
    .unwrap();
    assert_eq!(p.listen, "0.0.0.0:8444");
    let k = spi_keyvalue::config::Settings::load(
        Some(&config(&rendered, "spi-keyvalue", 0)),
        spi_keyvalue::config::ENV_PREFIX,
    )
    .unwrap();
    assert_eq!(k.listen, "0.0.0.0:8445");
    assert!(k.allow_context_updates);
}

#[test]
fn with_every_ops_file_the_configs_still_load_and_say_what_the_ops_files_ask() {
    let rendered = render(&ALL_OPS);
    for index in [0, 1] {
        let b = broker::config::Settings::load(Some(&config(&rendered, "broker", index))).unwrap();
        assert_eq!(
            b.database.url,
            "postgres://osb_broker:p%40ss%2Fword%20with%20spaces@state-db.example.internal:5432/osb_broker?sslmode=require",
            "broker {index}: the state database URL, its password percent-encoded"
        );
        let bpm = &rendered.instance("broker", index)["bpm"]["processes"][0];
        assert!(
            bpm.get("persistent_disk").is_none(),
            "no disk without SQLite"
        );
    }
    // The bosh backend's section, loaded by the deployer's own settings loader.
    let d: deployer::config::Settings = load(
        &deployer::config::Settings::default(),
        &config(&rendered, "deployer", 0),
    );
    assert_eq!(d.backend, deployer::config::BackendKind::Bosh);
    let bosh = d.bosh.expect("the [bosh] section");
    assert_eq!(bosh.director_url, "https://10.0.0.6:25555");
    assert_eq!(
        bosh.ca_file,
        Path::new("/var/vcap/jobs/deployer/config/certs/director-ca.pem")
    );
    assert_eq!(bosh.client, "osb-deployer");
    assert_eq!(bosh.secret().unwrap().expose(), "director-client-secret");
    assert_eq!(bosh.deployment_prefix, "osb-");
    assert!(bosh.use_dns_addresses);
    let small = &bosh.templates["postgresql-15"]["small"];
    assert_eq!(small.vm_type, "small");
    assert_eq!(small.instances, 1);
    assert_eq!(small.releases[0].name, "osb");
    assert_eq!(small.releases[0].version, "latest");
    assert_eq!(small.stemcell.os, "ubuntu-noble");
    assert_eq!(small.networks, ["default"]);
    assert_eq!(bosh.templates["redis-7"]["medium"].vm_type, "medium");
    assert!(
        std::fs::read_to_string(rendered.file("deployer", 0, "config/certs/director-ca.pem"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}

#[test]
fn secrets_reach_only_files_the_templates_make_private_and_never_a_command_line() {
    let rendered = render(&ALL_OPS);
    let secrets: Vec<&str> = rendered.report["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let ca_keys: Vec<&str> = rendered.report["ca_private_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!ca_keys.is_empty());
    let mut private = 0;
    for instance in rendered.instances() {
        let job = instance["job"].as_str().unwrap();
        let index = instance["index"].as_u64().unwrap();
        let script_dest = if instance["files"].get("bin/pre-start").is_some() {
            "bin/pre-start"
        } else {
            "bin/run"
        };
        let script = std::fs::read_to_string(rendered.file(job, index, script_dest)).unwrap();
        for (dest, path) in instance["files"].as_object().unwrap() {
            let text = std::fs::read_to_string(path.as_str().unwrap()).unwrap();
            for key in &ca_keys {
                assert!(
                    !text.contains(key),
                    "{job}: {dest} holds the CA's private key"
                );
            }
            if !secrets.iter().any(|s| text.contains(s)) {
                continue;
            }
            assert!(
                dest != "config/bpm.yml" && !dest.starts_with("bin/"),
                "{job}: {dest} (a command line or bpm's process config) holds a secret"
            );
            let name = Path::new(dest).file_name().unwrap().to_str().unwrap();
            assert!(
                script.contains("chmod 0600") && script.contains(name),
                "{job}: {dest} holds a secret, but {script_dest} does not make it 0600"
            );
            private += 1;
        }
    }
    // broker.toml, deployer.toml (client secret), every private key, the errands' secrets.
    assert!(private >= 10, "only {private} files with secrets were seen");
    for file in ["osb.yml", "operations/use-bosh-backend.yml"] {
        let text =
            std::fs::read_to_string(crate::harness::release_dir().join("manifests").join(file))
                .unwrap();
        assert!(
            !text.contains("osb_ca.private_key"),
            "{file} hands out the CA key"
        );
    }
}

/// Serves `job` from its rendered config (only the listen address moved to loopback, port 0);
/// answers its port.
async fn serve(rendered: &Rendered, job: &str, data: &Path) -> (u16, actix_web::dev::ServerHandle) {
    let file = config(rendered, job, 0);
    match job {
        "spi-postgres" => {
            let mut s =
                spi_postgres::config::Settings::load(Some(&file), spi_postgres::config::ENV_PREFIX)
                    .unwrap();
            s.tls = rendered_tls(rendered, job, &s.tls);
            s.listen = "127.0.0.1:0".into();
            let app = spi_postgres::startup::Application::build(s).await.unwrap();
            let (port, handle) = (app.port(), app.server_handle());
            tokio::spawn(app.run_until_stopped());
            (port, handle)
        }
        "spi-keyvalue" => {
            let mut s =
                spi_keyvalue::config::Settings::load(Some(&file), spi_keyvalue::config::ENV_PREFIX)
                    .unwrap();
            s.tls = rendered_tls(rendered, job, &s.tls);
            s.listen = "127.0.0.1:0".into();
            let app = spi_keyvalue::startup::Application::build(s).await.unwrap();
            let (port, handle) = (app.port(), app.server_handle());
            tokio::spawn(app.run_until_stopped());
            (port, handle)
        }
        _ => {
            let mut s: deployer::config::Settings =
                load(&deployer::config::Settings::default(), &file);
            s.tls = rendered_tls(rendered, job, &s.tls);
            s.listen = "127.0.0.1:0".into();
            s.data_dir = data.to_path_buf();
            let app = deployer::startup::Application::build(s).await.unwrap();
            let (port, handle) = (app.port(), app.server_handle());
            tokio::spawn(app.run_until_stopped());
            (port, handle)
        }
    }
}

#[tokio::test]
async fn the_broker_reaches_each_service_over_mutual_tls_at_its_link_address_with_the_rendered_certificates(
) {
    common::tls::install_default_provider();
    let rendered = render(&[]);
    let b = broker::config::Settings::load(Some(&config(&rendered, "broker", 0))).unwrap();
    let broker_tls = rendered_tls(&rendered, "broker", &b.tls);
    let data = tempfile::tempdir().unwrap();
    let targets = [
        ("spi-postgres", b.spis[0].url.clone(), "/spi/v1/catalog"),
        ("spi-keyvalue", b.spis[1].url.clone(), "/spi/v1/catalog"),
        (
            "deployer",
            b.deployer.url.clone(),
            "/deployer/v1/deployments",
        ),
    ];
    for (job, url, path) in targets {
        let (port, handle) = serve(&rendered, job, data.path()).await;
        // The URL the broker's config names, its host (the link's BOSH DNS name) resolved to
        // loopback, its port the one the test server got.
        let url = reqwest::Url::parse(&url).unwrap();
        let host = url.host_str().unwrap().to_string();
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let client = |tls: rustls::ClientConfig| {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .resolve(&host, loopback)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
        };
        let target = format!("https://{host}:{port}{path}");
        let answer = client(broker_tls.client_config().unwrap())
            .get(&target)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{job} at {target}: {e:?}"));
        assert_eq!(
            answer.status(),
            200,
            "{job}: {}",
            answer.text().await.unwrap()
        );
        let refused = client(broker_tls.anonymous_client_config().unwrap())
            .get(&target)
            .send()
            .await;
        assert!(
            refused.is_err(),
            "{job} served a client without a certificate"
        );
        handle.stop(false).await;
    }
    for job in SERVICES {
        assert!(rendered.file(job, 0, "config/certs/ca.pem").is_file());
    }
}

#[test]
fn a_broker_deployed_without_the_keyvalue_spi_lists_only_the_postgres_spi() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("no-keyvalue.yml");
    std::fs::write(
        &ops,
        "- type: remove\n  path: /instance_groups/name=spi-keyvalue\n\
         - type: replace\n  path: /instance_groups/name=broker/jobs/name=broker/consumes/spi-keyvalue\n  value: null\n",
    )
    .unwrap();
    let rendered = crate::harness::try_render_with(
        &[ops],
        &crate::harness::release_dir().join("test/vars.yml"),
    )
    .unwrap_or_else(|r| panic!("{}", r.message));
    let b = broker::config::Settings::load(Some(&config(&rendered, "broker", 0))).unwrap();
    let names: Vec<_> = b.spis.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["spi-postgres"]);
}

#[test]
fn quotas_set_in_the_manifest_reach_the_brokers_settings() {
    let rendered = render(&[]);
    let b = broker::config::Settings::load(Some(&config(&rendered, "broker", 0))).unwrap();
    assert!(b.quotas.is_empty(), "no quota unless the manifest sets one");

    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("quotas.yml");
    std::fs::write(
        &ops,
        "- type: replace\n  path: /instance_groups/name=broker/jobs/name=broker/properties/quotas?\n  value:\n    global: 200\n    per_space: 5\n    services: {postgresql: 100}\n    plans: {postgresql/medium: 10}\n    organizations: {org-guid-1: 0}\n",
    )
    .unwrap();
    let rendered = crate::harness::try_render_with(
        &[ops],
        &crate::harness::release_dir().join("test/vars.yml"),
    )
    .unwrap_or_else(|r| panic!("{}", r.message));
    let q = broker::config::Settings::load(Some(&config(&rendered, "broker", 0)))
        .unwrap()
        .quotas;
    let map = |k: &str, v: u64| std::collections::BTreeMap::from([(k.to_string(), v)]);
    assert_eq!(q.global, Some(200));
    assert_eq!(q.per_space, Some(5));
    assert_eq!(q.per_organization, None);
    assert_eq!(q.services, map("postgresql", 100));
    assert_eq!(q.plans, map("postgresql/medium", 10));
    assert_eq!(q.organizations, map("org-guid-1", 0));
    assert!(q.spaces.is_empty());
}
