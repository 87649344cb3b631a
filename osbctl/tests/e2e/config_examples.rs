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
