//! Test support shared by the crates' tests, and only by them: every crate takes it as a
//! dev-dependency, so none of it is linked into a service or `osbctl`.
//!
//! - [`postgres`]: a throwaway PostgreSQL server ([`postgres::TestPostgres`]).
//! - [`docker`]: the Docker engine and the local data images for the docker backend's tests.
//! - [`spi`]: an SPI started in-process with real mTLS ([`spi::spawn_app`]), the real deployer
//!   beside it ([`spi::spawn_deployer`]), and the checks every SPI must pass, generated into
//!   its tests by [`edge_tests!`], [`offering_tests!`] and [`binding_tests!`].

pub mod docker;
pub mod postgres;
pub mod spi;

pub use postgres::TestPostgres;
