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

/// The volume mounts (`source:target[:mode]`) of each entry of a top-level block of
/// docker-compose.yml (`services`, or an `x-…` anchor), read by indentation: enough for this
/// file's plain style. A service merging an anchor (`<<: *name`) without volumes of its own
/// inherits the anchor's.
fn compose_mounts() -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
    )
    .unwrap();
    let mut anchors: std::collections::HashMap<String, Vec<(String, String)>> = Default::default();
    let mut services = Vec::new();
    let mut in_services = false;
    // (name, anchor merged, own volumes, whether it is an anchor)
    let mut current: Option<(String, Option<String>, Option<Vec<(String, String)>>, bool)> = None;
    let mut in_volumes = false;
    let mut finish = |c: Option<(String, Option<String>, Option<Vec<(String, String)>>, bool)>,
                      anchors: &mut std::collections::HashMap<String, Vec<(String, String)>>,
                      services: &mut Vec<(String, Vec<(String, String)>)>| {
        if let Some((name, merged, own, is_anchor)) = c {
            let mounts = own
                .or_else(|| merged.and_then(|a| anchors.get(&a).cloned()))
                .unwrap_or_default();
            if is_anchor {
                anchors.insert(name, mounts);
            } else {
                services.push((name, mounts));
            }
        }
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            finish(current.take(), &mut anchors, &mut services);
            in_services = trimmed == "services:";
            if let Some(rest) = trimmed.strip_prefix("x-") {
                let anchor = rest.split('&').nth(1).unwrap_or("").trim().to_string();
                current = Some((anchor, None, None, true));
            }
            in_volumes = false;
            continue;
        }
        let is_anchor_body = current.as_ref().is_some_and(|c| c.3);
        let entry_indent = if is_anchor_body { 0 } else { 2 };
        if in_services && indent == 2 && trimmed.ends_with(':') {
            finish(current.take(), &mut anchors, &mut services);
            current = Some((trimmed.trim_end_matches(':').to_string(), None, None, false));
            in_volumes = false;
            continue;
        }
        let Some(c) = current.as_mut() else { continue };
        if indent == entry_indent + 2 {
            in_volumes = trimmed == "volumes:";
            if in_volumes {
                c.2 = Some(Vec::new());
            }
            if let Some(anchor) = trimmed.strip_prefix("<<: *") {
                c.1 = Some(anchor.trim().to_string());
            }
        } else if in_volumes && trimmed.starts_with("- ") {
            let spec = trimmed.trim_start_matches("- ").trim_matches('"');
            let mut parts = spec.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            c.2.get_or_insert_with(Vec::new)
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
