//! Secrets at rest and in logs: after a provision and binds under key `a`, `broker reencrypt`
//! moves every secret to key `b`, the broker then runs with `b` alone and still serves the
//! credentials; no admin password, binding password, Basic auth password or key shows in the
//! raw database files, in a `.dump` of the database, or in anything the broker logged (at
//! debug level).

use crate::helpers::{free_address, keyvalue_bind_body, new_id, spawn_services, TestApp, PASSWORD};
use crate::process::instance_rows;
use broker::config::{EncryptionKey, EncryptionSettings, Settings};
use broker::crypto::{generate_key, Cipher};
use common::deployer::DeploymentSpec;
use common::secret::SecretString;

fn keys(current: &str, keys: &[(&str, &str)]) -> EncryptionSettings {
    EncryptionSettings {
        current: current.into(),
        keys: keys
            .iter()
            .map(|(id, key)| EncryptionKey {
                id: (*id).into(),
                key: SecretString::new(*key),
            })
            .collect(),
    }
}

/// Every byte the database holds on disk (main file and write-ahead log) and its `.dump`.
fn database_contents(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let db = app.database_path();
    let mut out = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    let dump = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(".dump")
        .output()
        .expect("the sqlite3 shell runs");
    assert!(dump.status.success(), "{dump:?}");
    assert!(
        String::from_utf8_lossy(&dump.stdout).contains("INSERT INTO service_instances"),
        "the dump holds the rows"
    );
    out.push((".dump".into(), dump.stdout));
    let log = std::fs::read(app.log_path()).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("operation succeeded"),
        "the log holds the operations (at debug level)"
    );
    out.push(("broker log".into(), log));
    out
}

fn assert_absent(places: &[(String, Vec<u8>)], secrets: &[(&str, String)]) {
    for (place, bytes) in places {
        for (what, secret) in secrets {
            assert!(secret.len() >= 8, "{what} is a real secret");
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{what} found in plaintext in {place}");
        }
    }
}

#[tokio::test]
async fn reencrypt_moves_every_secret_to_the_new_key_and_no_secret_is_in_the_database_or_logs() {
    let mut app = spawn_services(true).await;
    let (key_a, key_b) = (generate_key(), generate_key());
    let mut settings: Settings = app.broker_settings();
    settings.listen = free_address();
    settings.encryption = keys("a", &[("a", &key_a)]);
    app.start_broker_process(&settings).await;

    let id = app.provision_keyvalue().await;
    let mut bindings = Vec::new();
    for _ in 0..2 {
        let binding = new_id();
        let bound = app.bind(&id, &binding, &keyvalue_bind_body()).await;
        assert_eq!(bound.status, 201, "{bound:?}");
        bindings.push((binding, bound.body["credentials"].clone()));
    }

    // The admin password, as only the broker's key can show it.
    let stored_spec = instance_rows(&app.database_path())
        .into_iter()
        .find(|i| i.id == id)
        .and_then(|i| i.deployment_spec_enc)
        .unwrap();
    assert!(stored_spec.starts_with("v1:a:"), "{stored_spec}");
    let spec: DeploymentSpec = Cipher::new(&settings.encryption)
        .unwrap()
        .decrypt_json(&stored_spec)
        .unwrap();
    let mut secrets = vec![
        (
            "the admin password",
            spec.admin.password.expose().to_string(),
        ),
        ("the broker's Basic auth password", PASSWORD.to_string()),
        ("key a", key_a.clone()),
        ("key b", key_b.clone()),
    ];
    for (_, credentials) in &bindings {
        let password = credentials["password"].as_str().unwrap().to_string();
        secrets.push(("a binding password", password));
    }

    // Rotate: b becomes current, a stays readable while reencrypt runs.
    assert!(app.terminate_broker_process().await.success());
    settings.encryption = keys("b", &[("a", &key_a), ("b", &key_b)]);
    let (code, out) = app.broker_command_output(&settings, &["reencrypt"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("3 secrets re-encrypted under key \"b\"; 0 still under other keys"),
        "{out}"
    );
    let (code, out) = app.broker_command_output(&settings, &["reencrypt"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("0 secrets re-encrypted"), "{out}");

    // Key a is gone from the settings: everything still reads.
    settings.encryption = keys("b", &[("b", &key_b)]);
    app.start_broker_process(&settings).await;
    for (binding, credentials) in &bindings {
        let fetched = app
            .get(&format!(
                "/v2/service_instances/{id}/service_bindings/{binding}"
            ))
            .await;
        assert_eq!(fetched.status, 200, "{fetched:?}");
        assert_eq!(&fetched.body["credentials"], credentials);
    }
    // The admin password (read back under b) still revokes a binding on the server.
    let (binding, _) = &bindings[0];
    let unbound = app.delete_keyvalue(&id, Some(binding)).await;
    assert_eq!(unbound.status, 200, "{unbound:?}");
    assert!(app.terminate_broker_process().await.success());

    let places = database_contents(&app);
    let dump =
        String::from_utf8_lossy(&places.iter().find(|(p, _)| p == ".dump").unwrap().1).into_owned();
    assert!(!dump.contains("v1:a:"), "nothing is left under key a");
    assert!(dump.contains("v1:b:"), "the secrets are under key b");
    assert_absent(&places, &secrets);
    app.stop_all().await;
}
