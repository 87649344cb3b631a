//! Every environment form `deploy/README.md` and `docker-compose.yml` document loads, and no
//! configuration error carries a secret. The environment is handed to the loader as a map:
//! no `set_var` in the test process.

use super::*;
use crate::crypto::{generate_key, Cipher};
use std::collections::HashMap;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

fn env(vars: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn keyring_works(settings: &Settings) {
    let cipher = Cipher::new(&settings.encryption).unwrap();
    let sealed = cipher.encrypt(b"plain").unwrap();
    assert_eq!(cipher.decrypt(&sealed).unwrap(), b"plain");
}

#[test]
fn the_readme_forms_load_with_the_example_file() {
    let key = generate_key();
    let settings = Settings::load_with_env(
        Some(&example("config/broker.toml")),
        env(&[
            ("BROKER_ENCRYPTION__KEYS", &key),
            ("BROKER_AUTH__PASSWORD", "pw-from-env-123"),
            ("BROKER_DATABASE__URL", "postgres://u:dbpw@db:5432/osb"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.encryption.current, "k1");
    assert_eq!(settings.encryption.keys.len(), 1);
    assert_eq!(settings.encryption.keys[0].id, "k1");
    assert_eq!(settings.encryption.keys[0].key.expose(), key);
    assert_eq!(settings.auth.password.expose(), "pw-from-env-123");
    assert_eq!(settings.database.url, "postgres://u:dbpw@db:5432/osb");
    keyring_works(&settings);
}

#[test]
fn a_single_key_without_a_file_becomes_the_current_key_k1() {
    let key = generate_key();
    let settings =
        Settings::load_with_env(None, env(&[("BROKER_ENCRYPTION__KEYS", &key)])).unwrap();
    assert_eq!(settings.encryption.current, DEFAULT_KEY_ID);
    keyring_works(&settings);
}

#[test]
fn id_key_entries_give_several_keys_for_rotation() {
    let (old, new) = (generate_key(), generate_key());
    let settings = Settings::load_with_env(
        Some(&example("config/broker.toml")),
        env(&[
            ("BROKER_ENCRYPTION__KEYS", &format!("k1:{old}, k2:{new}")),
            ("BROKER_ENCRYPTION__CURRENT", "k2"),
        ]),
    )
    .unwrap();
    let ids: Vec<&str> = settings
        .encryption
        .keys
        .iter()
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(ids, ["k1", "k2"]);
    assert_eq!(settings.encryption.keys[1].key.expose(), new);
    keyring_works(&settings);
}

#[test]
fn the_compose_form_with_an_index_loads_with_the_compose_file() {
    let key = generate_key();
    let settings = Settings::load_with_env(
        Some(&example("docker/compose/broker.toml")),
        env(&[
            ("BROKER_ENCRYPTION__KEYS[0]__KEY", &key),
            ("BROKER_AUTH__PASSWORD", "pw-from-env-123"),
            (
                "BROKER_DATABASE__URL",
                "postgres://broker:dbpw@state-db:5432/postgres",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(settings.encryption.keys.len(), 1);
    assert_eq!(settings.encryption.keys[0].id, "k1");
    assert_eq!(settings.encryption.keys[0].key.expose(), key);
    keyring_works(&settings);
}

#[test]
fn no_configuration_error_contains_the_secret_it_was_given() {
    let key = generate_key();
    let wrong_forms: &[(&str, &str)] = &[
        ("BROKER_ENCRYPTION", &key),
        ("BROKER_ENCRYPTION__KEYS__KEY", &key),
        ("BROKER_AUTH", &key),
        ("BROKER_WORKER__LEASE_MS", &key),
        ("BROKER_SPIS", &key),
    ];
    for (var, value) in wrong_forms {
        let err =
            Settings::load_with_env(Some(&example("config/broker.toml")), env(&[(var, value)]))
                .expect_err(var);
        let text = format!("{err} | {err:?}");
        assert!(!text.contains(key.as_str()), "{var}: {text}");
        assert!(!text.contains(&key[..12]), "{var}: {text}");
    }
    // A key of the wrong size or encoding: the keyring names the key id, not the key.
    for bad in ["c2hvcnQ=", "not base64 at all!"] {
        let settings =
            Settings::load_with_env(None, env(&[("BROKER_ENCRYPTION__KEYS", bad)])).unwrap();
        let err = Cipher::new(&settings.encryption).expect_err(bad);
        let text = format!("{err} {err:?}");
        assert!(!text.contains(bad), "{text}");
        assert!(text.contains("k1"), "{text}");
    }
}

#[test]
fn quotas_load_from_the_file_and_the_environment() {
    use crate::domain::identity::Placement;
    use crate::domain::quota::Offering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(
        &path,
        "[quotas]\nglobal = 10\nper_space = 2\n[quotas.services]\npostgresql = 4\n\
         [quotas.plans]\n\"postgresql/Small\" = 3\n\"small-id\" = 2\n\
         [quotas.organizations]\n\"ORG-1\" = 5\n",
    )
    .unwrap();
    let settings = Settings::load_with_env(
        Some(&path),
        env(&[
            ("BROKER_QUOTAS__GLOBAL", "12"),
            ("BROKER_QUOTAS__PER_ORGANIZATION", "7"),
        ]),
    )
    .unwrap();
    let offering = Offering {
        service_id: "svc-id",
        service_name: "postgresql",
        plan_id: "small-id",
        plan_name: "small",
    };
    let limits = |org: &str| {
        let placement = Placement {
            organization: Some(org.into()),
            space: Some("space-1".into()),
        };
        settings
            .quotas
            .limits(&offering, &placement)
            .into_iter()
            .map(|l| (l.label, l.max))
            .collect::<Vec<_>>()
    };
    let expected = |org: &str, org_max: u64| {
        vec![
            ("the broker".to_string(), 12),
            ("service postgresql".into(), 4),
            ("plan small of service postgresql".into(), 2),
            (format!("organization {org}"), org_max),
            ("space space-1".into(), 2),
        ]
    };
    assert_eq!(limits("org-1"), expected("org-1", 5));
    assert_eq!(limits("org-2"), expected("org-2", 7));
    assert!(Settings::load_with_env(None, env(&[]))
        .unwrap()
        .quotas
        .is_empty());
}
