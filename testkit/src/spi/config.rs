//! What every SPI's settings must satisfy: loopback-only defaults with the SPI's own
//! certificate, and environment variables named after the SPI. [`crate::config_tests!`] turns
//! the check into a test.

use spi_kit::config::Settings;
use spi_kit::service::Catalog;
use std::path::PathBuf;

/// The defaults listen on loopback only and take the SPI's own certificate and key
/// (`certs/<spi>.pem`); the environment prefix is the SPI's name in upper case with `_`
/// (`SPI_POSTGRES`), and the config file variable is the prefix and `_CONFIG`.
pub fn defaults_listen_on_loopback_only<S: Catalog>(env_prefix: &str, config_env: &str) {
    let s = Settings::<S>::default();
    let spi = S::SERVICE.spi_name;
    assert!(s.listen.starts_with("127.0.0.1:"), "{}", s.listen);
    assert_eq!(s.tls.cert_file, PathBuf::from(format!("certs/{spi}.pem")));
    assert_eq!(
        s.tls.key_file,
        PathBuf::from(format!("certs/{spi}-key.pem"))
    );
    assert_eq!(env_prefix, spi.to_uppercase().replace('-', "_"));
    assert_eq!(config_env, format!("{env_prefix}_CONFIG"));
}

/// A `#[test]` of [`crate::spi::config`] on the settings of data service `$service`, whose
/// environment prefix is `$env_prefix` and config file variable `$config_env`.
#[macro_export]
macro_rules! config_tests {
    ($service:ty, $env_prefix:expr, $config_env:expr) => {
        #[test]
        fn defaults_listen_on_loopback_only() {
            $crate::spi::config::defaults_listen_on_loopback_only::<$service>(
                $env_prefix,
                $config_env,
            );
        }
    };
}
