//! `GET /spi/v1/catalog`.

use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID};
use spi_keyvalue::KeyValue;
use testkit::spi::api::{catalog, create_schema, ExpectedCatalog};
use testkit::spi::spawn_app;

#[tokio::test]
async fn the_catalog_offers_keyvalue_with_small_and_medium_plans() {
    let app = spawn_app::<KeyValue>().await;
    let expected = ExpectedCatalog {
        spi_name: "spi-keyvalue",
        service_name: "keyvalue",
        plans: &[(PLAN_SMALL_ID, "small"), (PLAN_MEDIUM_ID, "medium")],
        maintenance_version: "7.0.0",
    };
    let catalog = catalog::<KeyValue>(&app, expected).await;
    for plan in &catalog.services[0].plans {
        let schema = create_schema(plan);
        assert_eq!(
            schema["properties"]["maxmemory-policy"]["enum"][0],
            "noeviction"
        );
    }
}
