//! `spi-keyvalue`: loads settings (file from the first argument or `SPI_KEYVALUE_CONFIG`), then
//! serves the key-value SPI over mTLS until interrupted.

use spi_keyvalue::config::{CONFIG_ENV, ENV_PREFIX};
use spi_keyvalue::KeyValue;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    spi_kit::startup::serve::<KeyValue>(ENV_PREFIX, CONFIG_ENV).await
}
