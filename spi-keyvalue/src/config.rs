//! Typed settings of the SPI: `spi_kit`'s, whose defaults take this SPI's certificate
//! (`certs/spi-keyvalue.pem`), loaded in `main` with the environment prefix [`ENV_PREFIX`].

/// Prefix of the environment variables that override settings (`SPI_KEYVALUE_LISTEN`, …).
pub const ENV_PREFIX: &str = "SPI_KEYVALUE";
/// Environment variable naming the config file when no CLI argument is given.
pub const CONFIG_ENV: &str = "SPI_KEYVALUE_CONFIG";

/// Everything the SPI needs to run.
pub type Settings = spi_kit::config::Settings<crate::KeyValue>;

#[cfg(test)]
mod tests {
    testkit::config_tests!(crate::KeyValue, super::ENV_PREFIX, super::CONFIG_ENV);
}
