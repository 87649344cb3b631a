//! The server: `spi_kit::startup::Application`, built from this SPI's [`crate::config::Settings`].

pub use spi_kit::startup::{Application, WORKERS};
