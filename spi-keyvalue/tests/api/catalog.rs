//! `GET /spi/v1/catalog`.

use crate::helpers::{ctx, spawn_app};
use spi_keyvalue::offering::{PLAN_MEDIUM_ID, PLAN_SMALL_ID, SERVICE_ID};

#[tokio::test]
async fn the_catalog_offers_keyvalue_with_small_and_medium_plans() {
    let app = spawn_app().await;
    let catalog = app.spi.catalog(&ctx()).await.unwrap();
    assert_eq!(catalog.contract_version, common::spi::CONTRACT_VERSION);
    assert_eq!(catalog.spi.name, "spi-keyvalue");
    assert_eq!(catalog.services.len(), 1);
    let service = &catalog.services[0];
    assert_eq!(service.id, SERVICE_ID);
    assert_eq!(service.name, "keyvalue");
    assert!(service.bindable);
    let plans: Vec<_> = service
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        plans,
        [(PLAN_SMALL_ID, "small"), (PLAN_MEDIUM_ID, "medium")]
    );
    for plan in &service.plans {
        assert_eq!(plan.maintenance_info.as_ref().unwrap().version, "7.0.0");
        let schemas = plan.schemas.as_ref().unwrap();
        let create = schemas.service_instance.as_ref().unwrap().create.as_ref();
        let schema = create.unwrap().parameters.as_ref().unwrap();
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
        assert_eq!(
            schema["properties"]["maxmemory-policy"]["enum"][0],
            "noeviction"
        );
    }
}
