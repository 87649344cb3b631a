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
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_listen_on_loopback_only() {
        let s = Settings::default();
        assert!(s.listen.starts_with("127.0.0.1:"));
        assert_eq!(s.tls.cert_file, Path::new("certs/spi-keyvalue.pem"));
    }
}
