//! `spawn_app()`: the key-value SPI started in-process on port 0 with real mTLS, through the
//! helpers every SPI's tests share (`spi_kit::testing`).

pub use spi_kit::testing::{ctx, TestApp};

/// Starts the SPI with fresh certificates on a port of the kernel's choosing.
pub async fn spawn_app() -> TestApp {
    spi_kit::testing::spawn_app::<spi_keyvalue::KeyValue>().await
}
