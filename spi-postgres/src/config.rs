//! Typed settings of the SPI: `spi_kit`'s, whose defaults take this SPI's certificate
//! (`certs/spi-postgres.pem`), loaded in `main` with the environment prefix [`ENV_PREFIX`].

/// Prefix of the environment variables that override settings (`SPI_POSTGRES_LISTEN`, …).
pub const ENV_PREFIX: &str = "SPI_POSTGRES";
/// Environment variable naming the config file when no CLI argument is given.
pub const CONFIG_ENV: &str = "SPI_POSTGRES_CONFIG";

/// Everything the SPI needs to run.
pub type Settings = spi_kit::config::Settings<crate::Postgres>;

#[cfg(test)]
mod tests {
    testkit::config_tests!(crate::Postgres, super::ENV_PREFIX, super::CONFIG_ENV);
}
