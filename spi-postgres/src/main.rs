//! `spi-postgres`: loads settings (file from the first argument or `SPI_POSTGRES_CONFIG`), then
//! serves the PostgreSQL SPI over mTLS until interrupted.

use spi_postgres::config::{CONFIG_ENV, ENV_PREFIX};
use spi_postgres::Postgres;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    spi_kit::startup::serve::<Postgres>(ENV_PREFIX, CONFIG_ENV).await
}
