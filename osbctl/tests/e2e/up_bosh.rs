//! `osbctl up --backend bosh` as its own OS process, pointed at a Director (the fake of
//! `testkit::bosh`, in this test process) by a config file with the `[bosh]` section and the
//! `--director-…` options: the walkthrough works as with the process backend, and the
//! Director's secret is never on the command line.

use crate::docker::lifecycle;
use crate::up_process::Up;
use osbctl::osb_client::OsbClient;
use std::time::Duration;
use testkit::bosh::{FakeDirector, FakeOptions};

/// The `[bosh]` section `osbctl up` reads: quick polls and the templates; the Director's
/// address and login come from the options.
const BOSH_CONFIG: &str = r#"
[bosh]
poll_interval_ms = 50
deployment_prefix = "up-"

[bosh.templates.postgresql-15.small]
releases = [{ name = "postgres", version = "latest" }]
stemcell = { os = "ubuntu-noble", version = "latest" }
vm_type = "small"
persistent_disk_type = "10GB"
networks = ["default"]
azs = ["z1"]
instances = 1

[bosh.templates.redis-7.default]
releases = [{ name = "redis", version = 7 }]
stemcell = { os = "ubuntu-noble", version = "latest" }
vm_type = "small"
persistent_disk_type = "5GB"
networks = ["default"]
azs = ["z1"]
instances = 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osbctl_up_with_the_bosh_backend_gives_the_walkthrough_through_the_director() {
    let fake = FakeDirector::start(FakeOptions {
        step_delay: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("bosh.toml");
    std::fs::write(&config, BOSH_CONFIG).unwrap();
    let (client, secret) = fake.credentials();
    let args: Vec<String> = vec![
        "--backend".into(),
        "bosh".into(),
        "--bosh-config".into(),
        config.display().to_string(),
        "--director-url".into(),
        fake.url(),
        "--director-ca-file".into(),
        fake.ca_file().display().to_string(),
        "--director-client".into(),
        client,
        "--director-client-secret-file".into(),
        fake.secret_file().display().to_string(),
    ];
    let up = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Up::start(&args, &[("OSB_PASSWORD", "walkthrough-password")])
    })
    .await
    .unwrap();
    assert!(
        up.banner.contains(&format!("Director {}", fake.url())),
        "{}",
        up.banner
    );
    let cmdline = deployer::sys::cmdline(up.child.id()).unwrap();
    assert!(
        !cmdline.contains(secret.expose()),
        "the Director's secret is on the command line"
    );

    let osb = OsbClient::new(&up.broker_url, "admin", "walkthrough-password").unwrap();
    let direct = |host: &str, port: u16| (host.to_string(), port);
    for (service, group) in [("postgresql", "postgresql"), ("keyvalue", "redis")] {
        let progress = lifecycle(&osb, "up-bosh", service, "small", &direct).await;
        assert!(
            progress
                .iter()
                .any(|p| p.contains(&format!("Updating instance {group}/"))),
            "{service}: {progress:?}; log:\n{}",
            up.log()
        );
    }
    let names: Vec<_> = fake.tasks().iter().map(|t| t.deployment.clone()).collect();
    assert!(names.iter().all(|n| n.starts_with("up-")), "{names:?}");
    assert_eq!(
        names.len(),
        4,
        "a deploy and a delete per instance: {names:?}"
    );
}

#[test]
fn osbctl_up_with_the_bosh_backend_and_no_director_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::up_process::osbctl()
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "bosh",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("--backend bosh needs the Director's url"),
        "{said}"
    );
}
