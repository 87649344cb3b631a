//! `GET /spi/v1/catalog`.

use spi_postgres::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID};
use spi_postgres::Postgres;
use testkit::spi::api::{catalog, create_schema, ExpectedCatalog};
use testkit::spi::spawn_app;

#[tokio::test]
async fn the_catalog_offers_postgresql_with_small_and_medium_plans() {
    let app = spawn_app::<Postgres>().await;
    let expected = ExpectedCatalog {
        spi_name: "spi-postgres",
        service_name: "postgresql",
        plans: &[(PLAN_SMALL_ID, "small"), (PLAN_MEDIUM_ID, "medium")],
        maintenance_version: "15.0.0",
    };
    let catalog = catalog::<Postgres>(&app, expected).await;
    for plan in &catalog.services[0].plans {
        let schema = create_schema(plan);
        assert_eq!(schema["properties"]["max_connections"]["type"], "integer");
    }
}
