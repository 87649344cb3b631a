//! `spawn_app()`: the key-value SPI started in-process on port 0 with real mTLS, through the
//! helpers every SPI's tests share (`testkit::spi`).

pub use testkit::spi::{ctx, spawn_deployer, TestApp, TestDeployer};

/// Starts the SPI with fresh certificates on a port of the kernel's choosing.
pub async fn spawn_app() -> TestApp {
    testkit::spi::spawn_app::<spi_keyvalue::KeyValue>().await
}
