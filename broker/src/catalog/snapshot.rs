//! One consistent view of the catalog: the serialised `{"services":[…]}` kept ready to send, and
//! the index routing each offering to the SPI that owns it.

use super::NamedSpi;
use actix_web::web::Bytes;
use common::osb::{Catalog, Plan, Service};
use common::spi::CatalogFragment;
use std::collections::HashMap;
use std::sync::Arc;

/// An offering and the SPI that owns it.
#[derive(Debug, Clone)]
pub struct RoutedService {
    /// The owning SPI (held here, so a change of the SPI list cannot misroute a request).
    pub spi: Arc<NamedSpi>,
    /// The offering as published.
    pub service: Service,
}

/// Why a service/plan pair is refused (all 400s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No offering with this id.
    #[error("unknown service_id {0:?}")]
    UnknownService(String),
    /// No plan with this id in any offering.
    #[error("unknown plan_id {0:?}")]
    UnknownPlan(String),
    /// The plan exists but belongs to another offering.
    #[error("plan_id {plan:?} is not a plan of service_id {service:?}")]
    PlanOfOtherService {
        /// Plan id.
        plan: String,
        /// Offering id.
        service: String,
    },
}

/// One consistent view of the catalog.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    /// `{"services":[…]}` ready to send.
    pub json: Bytes,
    services: HashMap<String, RoutedService>,
}

impl CatalogSnapshot {
    /// The snapshot of the fragments `published` by their SPIs, in order: an offering id
    /// published twice is left out the second time.
    pub(super) fn build<'a>(
        published: impl IntoIterator<Item = (&'a Arc<NamedSpi>, &'a CatalogFragment)>,
    ) -> Self {
        let mut catalog = Catalog::default();
        let mut services = HashMap::new();
        for (spi, fragment) in published {
            for service in &fragment.services {
                if services.contains_key(&service.id) {
                    tracing::error!(
                        service.id = %service.id,
                        spi = %fragment.spi.name,
                        "two SPIs publish the same service id; the later one is left out"
                    );
                    continue;
                }
                services.insert(
                    service.id.clone(),
                    RoutedService {
                        spi: Arc::clone(spi),
                        service: service.clone(),
                    },
                );
                catalog.services.push(service.clone());
            }
        }
        let json = serde_json::to_vec(&catalog).unwrap_or_else(|_| b"{\"services\":[]}".to_vec());
        Self {
            json: Bytes::from(json),
            services,
        }
    }

    /// The offering `service_id`.
    pub fn service(&self, service_id: &str) -> Option<&RoutedService> {
        self.services.get(service_id)
    }

    /// The offering and plan of a request, or why the pair is refused.
    pub fn plan(
        &self,
        service_id: &str,
        plan_id: &str,
    ) -> Result<(&RoutedService, &Plan), LookupError> {
        let Some(routed) = self.services.get(service_id) else {
            return Err(LookupError::UnknownService(service_id.to_string()));
        };
        if let Some(plan) = routed.service.plans.iter().find(|p| p.id == plan_id) {
            return Ok((routed, plan));
        }
        let elsewhere = self
            .services
            .values()
            .any(|s| s.service.plans.iter().any(|p| p.id == plan_id));
        if elsewhere {
            Err(LookupError::PlanOfOtherService {
                plan: plan_id.to_string(),
                service: service_id.to_string(),
            })
        } else {
            Err(LookupError::UnknownPlan(plan_id.to_string()))
        }
    }

    /// Number of offerings.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there is no offering.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fragment, service, spis};
    use super::*;

    /// The snapshot of one optional fragment per SPI.
    fn build(spis: &[Arc<NamedSpi>], fragments: &[Option<CatalogFragment>]) -> CatalogSnapshot {
        CatalogSnapshot::build(
            spis.iter()
                .zip(fragments)
                .filter_map(|(spi, f)| Some((spi, f.as_ref()?))),
        )
    }

    #[test]
    fn plans_are_found_and_foreign_or_unknown_ones_are_named() {
        let snap = build(
            &spis(&["spi-pg", "spi-kv"]),
            &[
                Some(fragment(vec![service("pg", &["small"])])),
                Some(fragment(vec![service("kv", &["tiny"])])),
            ],
        );
        let (routed, plan) = snap.plan("kv", "tiny").unwrap();
        assert_eq!(
            (routed.spi.name.as_str(), plan.id.as_str()),
            ("spi-kv", "tiny")
        );
        assert_eq!(routed.spi.client.base_url(), "https://spi-kv.invalid");
        assert_eq!(
            snap.plan("pg", "tiny").unwrap_err(),
            LookupError::PlanOfOtherService {
                plan: "tiny".into(),
                service: "pg".into()
            }
        );
        assert_eq!(
            snap.plan("pg", "huge").unwrap_err(),
            LookupError::UnknownPlan("huge".into())
        );
        assert_eq!(
            snap.plan("nope", "small").unwrap_err(),
            LookupError::UnknownService("nope".into())
        );
    }

    #[test]
    fn the_serialised_catalog_lists_every_offering_once() {
        let snap = build(
            &spis(&["a", "b", "c"]),
            &[
                Some(fragment(vec![service("pg", &["small"])])),
                None,
                Some(fragment(vec![
                    service("pg", &["dup"]),
                    service("kv", &["t"]),
                ])),
            ],
        );
        let catalog: Catalog = serde_json::from_slice(&snap.json).unwrap();
        let ids: Vec<_> = catalog.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["pg", "kv"]);
        assert_eq!(snap.len(), 2);
    }

    #[test]
    fn an_empty_catalog_is_an_empty_services_array() {
        let snap = build(&spis(&["a"]), &[None]);
        assert_eq!(&snap.json[..], b"{\"services\":[]}");
        assert!(snap.is_empty());
    }
}
