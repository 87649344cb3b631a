//! The example configuration files under `deploy/config/` load into each service's settings.

use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/config")
        .join(name)
}

const NO_ENV: &str = "OSBCTL_EXAMPLE_TEST_UNUSED";

#[test]
fn the_example_configuration_files_load_into_the_services_settings() {
    let b: broker::config::Settings =
        common::settings::load(&Default::default(), Some(&example("broker.toml")), NO_ENV).unwrap();
    assert_eq!(b.spis.len(), 2);
    assert_eq!(b.deployer.url, "https://deployer.internal:8443");
    let d: deployer::config::Settings =
        common::settings::load(&Default::default(), Some(&example("deployer.toml")), NO_ENV)
            .unwrap();
    assert_eq!(d.process.advertise_host, "10.0.0.12");
    let p: spi_postgres::config::Settings = common::settings::load(
        &Default::default(),
        Some(&example("spi-postgres.toml")),
        NO_ENV,
    )
    .unwrap();
    assert_eq!(p.listen, "0.0.0.0:8444");
    let k: spi_keyvalue::config::Settings = common::settings::load(
        &Default::default(),
        Some(&example("spi-keyvalue.toml")),
        NO_ENV,
    )
    .unwrap();
    assert_eq!(k.listen, "0.0.0.0:8445");
    assert_eq!(d.docker.images["postgresql-15"], "postgres:15");
    assert_eq!(d.docker.host_ports, (41000, 41999));
    let bosh = d.bosh.expect("the example's [bosh] section");
    assert_eq!(bosh.client, "osb-deployer");
    assert_eq!(bosh.templates["postgresql-15"]["small"].vm_type, "small");
    assert_eq!(bosh.templates["redis-7"]["default"].instances, 1);
}

/// What docker-compose.yml mounts at /etc/osb (paths inside the containers).
fn compose_config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/docker/compose")
        .join(name)
}

#[test]
fn the_compose_configuration_files_load_into_the_services_settings() {
    let b: broker::config::Settings = common::settings::load(
        &Default::default(),
        Some(&compose_config("broker.toml")),
        NO_ENV,
    )
    .unwrap();
    assert_eq!(b.deployer.url, "https://deployer:8443");
    assert_eq!(b.encryption.keys.len(), 1);
    let d: deployer::config::Settings = common::settings::load(
        &Default::default(),
        Some(&compose_config("deployer.toml")),
        NO_ENV,
    )
    .unwrap();
    assert_eq!(d.backend, deployer::config::BackendKind::Docker);
    for spi in ["spi-postgres.toml", "spi-keyvalue.toml"] {
        let s: spi_postgres::config::Settings =
            common::settings::load(&Default::default(), Some(&compose_config(spi)), NO_ENV)
                .unwrap();
        assert!(s.listen.starts_with("0.0.0.0:"));
    }
}

/// Volume mounts: (source, target).
type Mounts = Vec<(String, String)>;

/// One service (or `x-…` anchor) of docker-compose.yml as far as mounts go.
struct Entry {
    name: String,
    /// The anchor it merges (`<<: *name`).
    merges: Option<String>,
    /// Its own `volumes:`, if it has any.
    own: Option<Mounts>,
    is_anchor: bool,
}

/// Records a finished entry: an anchor's mounts for later merges, a service's mounts (its own,
/// else its anchor's).
fn finish(
    entry: Option<Entry>,
    anchors: &mut std::collections::HashMap<String, Mounts>,
    services: &mut Vec<(String, Mounts)>,
) {
    let Some(e) = entry else { return };
    let mounts = e
        .own
        .or_else(|| e.merges.and_then(|a| anchors.get(&a).cloned()))
        .unwrap_or_default();
    if e.is_anchor {
        anchors.insert(e.name, mounts);
    } else {
        services.push((e.name, mounts));
    }
}

/// The volume mounts (`source:target[:mode]`) of each service of docker-compose.yml, read by
/// indentation: enough for this file's plain style. A service merging an anchor (`<<: *name`)
/// without volumes of its own inherits the anchor's.
fn compose_mounts() -> Vec<(String, Mounts)> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
    )
    .unwrap();
    let mut anchors = std::collections::HashMap::new();
    let mut services = Vec::new();
    let mut in_services = false;
    let mut current: Option<Entry> = None;
    let mut in_volumes = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            finish(current.take(), &mut anchors, &mut services);
            in_services = trimmed == "services:";
            current = trimmed.strip_prefix("x-").map(|rest| Entry {
                name: rest.split('&').nth(1).unwrap_or("").trim().to_string(),
                merges: None,
                own: None,
                is_anchor: true,
            });
            in_volumes = false;
            continue;
        }
        if in_services && indent == 2 && trimmed.ends_with(':') {
            finish(current.take(), &mut anchors, &mut services);
            current = Some(Entry {
                name: trimmed.trim_end_matches(':').to_string(),
                merges: None,
                own: None,
                is_anchor: false,
            });
            in_volumes = false;
            continue;
        }
        let Some(e) = current.as_mut() else { continue };
        let key_indent = if e.is_anchor { 2 } else { 4 };
        if indent == key_indent {
            in_volumes = trimmed == "volumes:";
            if in_volumes {
                e.own = Some(Vec::new());
            }
            if let Some(anchor) = trimmed.strip_prefix("<<: *") {
                e.merges = Some(anchor.trim().to_string());
            }
        } else if in_volumes && trimmed.starts_with("- ") {
            let spec = trimmed.trim_start_matches("- ").trim_matches('"');
            let mut parts = spec.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            e.own
                .get_or_insert_with(Vec::new)
                .push((source.to_string(), target.to_string()));
        }
    }
    finish(current.take(), &mut anchors, &mut services);
    services
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_compose_service_mounts_the_ca_key_or_another_service_key() {
    let services = compose_mounts();
    let (_, job) = services
        .iter()
        .find(|(name, _)| name == "certs")
        .expect("a certs job");
    // What the certs job writes (`osbctl certs --out /certs`), made for real.
    let written = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osbctl"))
        .args(["certs", "--out"])
        .arg(written.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Each named volume the job writes into, and the directory of the bundle it holds.
    let volume_dirs: Vec<(String, PathBuf)> = job
        .iter()
        .filter_map(|(source, target)| {
            let sub = target.strip_prefix("/certs")?.trim_start_matches('/');
            Some((source.clone(), written.path().join(sub)))
        })
        .collect();
    assert!(
        volume_dirs
            .iter()
            .any(|(_, d)| d.join("ca-key.pem").exists()),
        "the job keeps the CA key in a volume of its own"
    );
    let mut checked = 0;
    for (name, mounts) in services.iter().filter(|(n, _)| n != "certs") {
        let mut seen = Vec::new();
        for (source, _) in mounts {
            for (volume, dir) in &volume_dirs {
                if source == volume {
                    seen.extend(files_under(dir));
                }
            }
            assert!(
                !source.contains("certs") || volume_dirs.iter().any(|(v, _)| v == source),
                "{name} mounts {source}, which the certs job does not write"
            );
        }
        for file in &seen {
            let file_name = file.file_name().unwrap().to_str().unwrap();
            assert_ne!(file_name, "ca-key.pem", "{name} can read the CA key");
            if file_name.ends_with("-key.pem") {
                assert_eq!(
                    file_name,
                    format!("{name}-key.pem"),
                    "{name} can read another key"
                );
            }
        }
        if ["broker", "deployer", "spi-postgres", "spi-keyvalue"].contains(&name.as_str()) {
            assert!(
                seen.iter()
                    .any(|f| f.file_name().unwrap() == format!("{name}-key.pem").as_str()),
                "{name} does not get its own key"
            );
            assert!(seen.iter().any(|f| f.file_name().unwrap() == "ca.pem"));
            checked += 1;
        }
    }
    assert_eq!(
        checked, 4,
        "every service of the stack was checked: {services:?}"
    );
}
