//! The `osbctl` binary against a running stack, as an operator uses it.

use crate::helpers::TestStack;
use std::process::Output;

fn osbctl(t: &TestStack, args: &[&str]) -> Output {
    let s = t.stack();
    std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
        .args(args)
        .env("OSB_BROKER_URL", &s.broker_url)
        .env("OSB_USERNAME", &s.username)
        .env("OSB_PASSWORD", &s.password)
        .output()
        .expect("osbctl runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "osbctl failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_drives_the_broker_with_osbctl_from_provision_to_deprovision() {
    let t = TestStack::start().await;
    let t = tokio::task::spawn_blocking(move || {
        let catalog = ok(&osbctl(&t, &["catalog"]));
        assert!(
            catalog.contains("postgresql") && catalog.contains("plan small"),
            "{catalog}"
        );

        let out = osbctl(
            &t,
            &[
                "provision",
                "cli-db",
                "--service",
                "postgresql",
                "--plan",
                "small",
            ],
        );
        assert!(ok(&out).contains("provisioned"));
        let progress = String::from_utf8_lossy(&out.stderr);
        assert!(
            progress.contains("creating PostgreSQL 15 cluster"),
            "progress shown: {progress}"
        );

        let creds: serde_json::Value =
            serde_json::from_str(&ok(&osbctl(&t, &["bind", "cli-db", "cli-app"]))).unwrap();
        let uri = creds["credentials"]["uri"]
            .as_str()
            .expect("uri")
            .to_string();

        let lo = ok(&osbctl(&t, &["last-operation", "cli-db"]));
        assert!(lo.contains("succeeded"), "{lo}");

        // A refused request exits non-zero with the broker's description.
        let bad = osbctl(
            &t,
            &[
                "provision",
                "cli-db-2",
                "--service",
                "postgresql",
                "--plan",
                "nope",
            ],
        );
        assert!(!bad.status.success());
        let said = String::from_utf8_lossy(&bad.stderr);
        assert!(
            said.contains("no plan \"nope\"") && said.contains("small, medium"),
            "the error lists the plans that exist: {said}"
        );
        let bad = osbctl(
            &t,
            &[
                "provision",
                "cli-db-2",
                "--service",
                "mysql",
                "--plan",
                "small",
            ],
        );
        assert!(!bad.status.success());
        let said = String::from_utf8_lossy(&bad.stderr);
        assert!(
            said.contains("no service \"mysql\"")
                && said.contains("postgresql")
                && said.contains("keyvalue"),
            "the error lists the services that exist: {said}"
        );

        ok(&osbctl(&t, &["unbind", "cli-db", "cli-app"]));
        ok(&osbctl(&t, &["deprovision", "cli-db"]));
        (t, uri)
    })
    .await
    .unwrap();
    let (t, uri) = t;
    assert!(tokio_postgres::connect(&uri, tokio_postgres::NoTls)
        .await
        .is_err());
    assert!(t.deployments().await.is_empty());
}

#[test]
fn osbctl_certs_writes_a_ca_and_a_certificate_per_service() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
        .args(["certs", "--out"])
        .arg(dir.path())
        .args(["--host", "broker.internal"])
        .output()
        .unwrap();
    assert!(out.status.success());
    for name in common::certs::SERVICE_NAMES {
        let files = common::tls::TlsFiles::in_dir(&dir.path().join(name), name);
        files.server_config().expect("loads as a server identity");
        files.client_config().expect("loads as a client identity");
        assert!(
            !dir.path().join(name).join("ca-key.pem").exists(),
            "the CA key is beside {name}'s files"
        );
    }
    assert!(dir.path().join("ca/ca-key.pem").exists());
}

#[test]
fn osbctl_certs_renews_from_the_same_ca_on_request_and_keeps_valid_certificates_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
            .args(["certs", "--out"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[]);
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    let (ca, broker) = (read("ca/ca.pem"), read("broker/broker.pem"));
    let kept = run(&["--if-missing"]);
    assert!(kept.contains("kept"), "{kept}");
    assert_eq!(read("broker/broker.pem"), broker);
    let renewed = run(&["--renew"]);
    assert!(renewed.contains("renewed"), "{renewed}");
    assert_ne!(read("broker/broker.pem"), broker);
    assert_eq!(read("ca/ca.pem"), ca, "the CA is kept");
    assert_eq!(read("deployer/ca.pem"), ca);
}

#[test]
fn a_user_error_is_one_line_without_a_backtrace_even_with_rust_backtrace_set() {
    let cases: [(&[&str], &str); 3] = [
        // No broker listens on port 1.
        (
            &["catalog", "--broker-url", "http://127.0.0.1:1"],
            "127.0.0.1:1",
        ),
        // A password file that does not exist.
        (
            &["catalog", "--password-file", "/nonexistent/password"],
            "/nonexistent/password",
        ),
        // Bad JSON parameters are refused before any request.
        (
            &[
                "provision",
                "x",
                "--service",
                "s",
                "--plan",
                "p",
                "--params",
                "[1]",
            ],
            "",
        ),
    ];
    for (args, names) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env("OSB_PASSWORD", "x")
            .env("OSB_BROKER_URL", "http://127.0.0.1:1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.starts_with("Error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: names {names}: {stderr}");
        assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    }

    // Without a password at all, the error says where to get one.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
        .arg("catalog")
        .env("RUST_BACKTRACE", "1")
        .env_remove("OSB_PASSWORD")
        .env_remove("OSB_PASSWORD_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("OSB_PASSWORD"), "{stderr}");
}
