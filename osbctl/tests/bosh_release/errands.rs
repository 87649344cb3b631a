//! The errands' scripts as rendered: valid bash, and the smoke test run for real against a
//! running stack.

use crate::harness::{release_dir, render, try_render_with, ALL_OPS};
use osbctl::stack::{Stack, StackOptions};
use std::path::Path;
use std::process::Command;

#[test]
fn every_rendered_script_is_valid_bash() {
    let rendered = render(&ALL_OPS);
    let mut checked = 0;
    for instance in rendered.instances() {
        for (dest, path) in instance["files"].as_object().unwrap() {
            if !dest.starts_with("bin/") {
                continue;
            }
            let path = path.as_str().unwrap();
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.starts_with("#!/usr/bin/env bash\n"),
                "{}: {dest} starts with its shebang",
                instance["job"]
            );
            let out = Command::new("bash").arg("-n").arg(path).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {dest}: {}",
                instance["job"],
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    // pre-start of 4 services (the broker twice) and bin/run of 3 errands.
    assert_eq!(checked, 8);
}

/// Stops the stack's database servers even when the test fails half-way.
struct StopServers(std::path::PathBuf);

impl Drop for StopServers {
    fn drop(&mut self) {
        deployer::stop_all_servers(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_tests_errand_provisions_binds_queries_and_deprovisions_through_a_real_broker() {
    common::tls::install_default_provider();
    let dir = tempfile::Builder::new()
        .prefix("osb-bosh-smoke-")
        .tempdir_in("/tmp")
        .unwrap();
    let password = common::secret::random_password(24).expose().to_string();
    let stack = Stack::start(StackOptions {
        poll_interval_ms: 50,
        username: "broker".into(),
        password: Some(password.clone()),
        ..StackOptions::new(dir.path().join("data"))
    })
    .await
    .expect("the stack starts");
    let _stop = StopServers(stack.layout.deployer());

    // The manifest's broker password is the stack's; the errand reaches the stack's broker.
    let vars = dir.path().join("vars.yml");
    let mut text = std::fs::read_to_string(release_dir().join("test/vars.yml")).unwrap();
    text.push_str(&format!("broker_password: {password}\n"));
    std::fs::write(&vars, text).unwrap();
    let ops = dir.path().join("local-broker.yml");
    std::fs::write(
        &ops,
        format!(
            "- type: replace\n  path: /instance_groups/name=smoke-tests/jobs/name=smoke-tests/properties/broker_url?\n  value: {}\n",
            stack.broker_url
        ),
    )
    .unwrap();
    let rendered = try_render_with(&[ops], &vars).unwrap_or_else(|r| panic!("{}", r.message));

    // bin/run as rendered, its job directory moved to where it was rendered; the packages'
    // binaries are this build's osbctl and Debian's psql.
    let job_dir = rendered.job_dir("smoke-tests", 0);
    let script = std::fs::read_to_string(rendered.file("smoke-tests", 0, "bin/run"))
        .unwrap()
        .replace(
            "/var/vcap/jobs/smoke-tests/",
            &format!("{}/", job_dir.display()),
        );
    assert!(
        !script.contains(&password),
        "the password is not in the script"
    );
    let run = dir.path().join("run");
    std::fs::write(&run, script).unwrap();
    let osbctl = Path::new(env!("CARGO_BIN_EXE_osbctl")).parent().unwrap();
    let out = tokio::process::Command::new("bash")
        .arg(&run)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/lib/postgresql/15/bin:/usr/bin:/bin",
                osbctl.display()
            ),
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the smoke test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from the smoke test"), "{stdout}");
    assert!(stdout.contains("smoke tests passed"), "{stdout}");
    assert!(
        !stdout.contains(&password),
        "the broker password is not printed"
    );
    let left = stack
        .deployer_client()
        .unwrap()
        .list_deployments(&Default::default())
        .await
        .unwrap();
    assert!(left.is_empty(), "the errand deprovisioned: {left:?}");
    stack.stop().await;
}
