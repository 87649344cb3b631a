//! Test support shared by the crates' tests, and only by them: every crate takes it as a
//! dev-dependency, so none of it is linked into a service or `osbctl`.
//!
//! - [`bosh`]: a fake BOSH Director ([`bosh::FakeDirector`]) that really starts the servers
//!   its manifests ask for, a stand-in for a real Director in the `bosh` backend's tests.
//! - [`postgres`]: a throwaway PostgreSQL server ([`postgres::TestPostgres`]).
//! - [`docker`]: the Docker engine and the local data images for the docker backend's tests.
//! - [`spi`]: an SPI started in-process with real mTLS ([`spi::spawn_app`]), the real deployer
//!   beside it ([`spi::spawn_deployer`]), and the checks every SPI must pass, generated into
//!   its tests by [`edge_tests!`], [`offering_tests!`] and [`binding_tests!`].

pub mod bosh;
pub mod docker;
pub mod postgres;
pub mod spi;

pub use postgres::TestPostgres;

use tempfile::TempDir;

/// What every test process needs first: the TLS provider installed and, when `TEST_LOG` is
/// set, its log on stderr at `level` and above.
pub fn init(level: &str) {
    common::tls::install_default_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        common::telemetry::init(common::telemetry::LogFormat::Compact, level);
    }
}

/// A fresh CA and loopback certificates for the services `names`, in a new temp dir.
pub fn certs_for(names: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::certs::write_bundle(dir.path(), names, &common::certs::loopback_hosts()).unwrap();
    dir
}

/// The pid in a pid file (Redis' `redis.pid`; PostgreSQL's `postmaster.pid` starts with it).
pub fn pid_from(path: &std::path::Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
