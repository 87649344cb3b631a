//! The OSB catalog, assembled from the SPIs' catalog fragments. The serialised bytes are kept
//! ready so `GET /v2/catalog` costs a pointer copy; a service-id index routes requests to the
//! SPI that owns the offering.

use actix_web::web::Bytes;
use common::client::CallContext;
use common::osb::{Catalog, Plan, Service};
use common::spi::{CatalogFragment, SpiClient, CONTRACT_VERSION};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// One configured SPI with its client.
#[derive(Debug, Clone)]
pub struct NamedSpi {
    /// Name from the settings.
    pub name: String,
    /// Typed client.
    pub client: SpiClient,
}

/// An offering and the SPI that owns it.
#[derive(Debug, Clone)]
pub struct RoutedService {
    /// Index of the owning SPI in the settings.
    pub spi: usize,
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
    fn build(fragments: &[Option<CatalogFragment>]) -> Self {
        let mut catalog = Catalog::default();
        let mut services = HashMap::new();
        for (spi, fragment) in fragments.iter().enumerate() {
            let Some(fragment) = fragment else { continue };
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
                        spi,
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

/// Whether a plan is bindable (the plan overrides the offering).
pub fn plan_bindable(service: &Service, plan: &Plan) -> bool {
    plan.bindable.unwrap_or(service.bindable)
}

/// The catalog cache: the last good fragment of each SPI and the snapshot built from them.
#[derive(Debug)]
pub struct CatalogCache {
    spis: Vec<NamedSpi>,
    fragments: Mutex<Vec<Option<CatalogFragment>>>,
    snapshot: RwLock<Arc<CatalogSnapshot>>,
}

impl CatalogCache {
    /// An empty cache over `spis`.
    pub fn new(spis: Vec<NamedSpi>) -> Self {
        let fragments = vec![None; spis.len()];
        let snapshot = Arc::new(CatalogSnapshot::build(&fragments));
        Self {
            spis,
            fragments: Mutex::new(fragments),
            snapshot: RwLock::new(snapshot),
        }
    }

    /// The SPIs, in settings order.
    pub fn spis(&self) -> &[NamedSpi] {
        &self.spis
    }

    /// Whether some SPI has never delivered a usable fragment.
    pub fn incomplete(&self) -> bool {
        lock(&self.fragments).iter().any(Option::is_none)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        // A poisoned lock still holds a complete snapshot (it is replaced whole).
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Fetches every SPI's fragment; an SPI that fails keeps its last good fragment (or stays
    /// out of the catalog until it answers).
    pub async fn refresh(&self) {
        let ctx = CallContext::with_request_id(common::new_request_id());
        let results =
            futures_util::future::join_all(self.spis.iter().map(|spi| spi.client.catalog(&ctx)))
                .await;
        let mut changed = false;
        let mut fragments = lock(&self.fragments);
        for (i, result) in results.into_iter().enumerate() {
            let name = &self.spis[i].name;
            match result {
                Ok(fragment) if fragment.contract_version != CONTRACT_VERSION => {
                    tracing::error!(
                        spi = %name,
                        contract_version = fragment.contract_version,
                        expected = CONTRACT_VERSION,
                        "SPI speaks another contract version; its offerings are left out of the catalog"
                    );
                }
                Ok(fragment) => {
                    if fragments[i].as_ref() != Some(&fragment) {
                        tracing::info!(
                            spi = %name,
                            services = fragment.services.len(),
                            "catalog fragment loaded"
                        );
                        fragments[i] = Some(fragment);
                        changed = true;
                    }
                }
                Err(e) => {
                    let kept = fragments[i].is_some();
                    tracing::warn!(
                        spi = %name,
                        error = %e,
                        kept_last_good = kept,
                        "SPI catalog unavailable; retrying on the next refresh"
                    );
                }
            }
        }
        if changed {
            let snapshot = Arc::new(CatalogSnapshot::build(&fragments));
            match self.snapshot.write() {
                Ok(mut g) => *g = snapshot,
                Err(poisoned) => *poisoned.into_inner() = snapshot,
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The fragments are replaced whole; a panicking holder cannot leave them half-written.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::spi::SpiInfo;

    fn fragment(services: Vec<Service>) -> CatalogFragment {
        CatalogFragment {
            contract_version: CONTRACT_VERSION,
            spi: SpiInfo {
                name: "spi".into(),
                version: "1".into(),
            },
            services,
        }
    }

    fn service(id: &str, plans: &[&str]) -> Service {
        Service {
            id: id.into(),
            name: id.into(),
            description: "d".into(),
            bindable: true,
            plans: plans
                .iter()
                .map(|p| Plan {
                    id: (*p).into(),
                    name: (*p).into(),
                    description: "d".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn plans_are_found_and_foreign_or_unknown_ones_are_named() {
        let snap = CatalogSnapshot::build(&[
            Some(fragment(vec![service("pg", &["small"])])),
            Some(fragment(vec![service("kv", &["tiny"])])),
        ]);
        let (routed, plan) = snap.plan("kv", "tiny").unwrap();
        assert_eq!((routed.spi, plan.id.as_str()), (1, "tiny"));
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
        let snap = CatalogSnapshot::build(&[
            Some(fragment(vec![service("pg", &["small"])])),
            None,
            Some(fragment(vec![
                service("pg", &["dup"]),
                service("kv", &["t"]),
            ])),
        ]);
        let catalog: Catalog = serde_json::from_slice(&snap.json).unwrap();
        let ids: Vec<_> = catalog.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["pg", "kv"]);
        assert_eq!(snap.len(), 2);
    }

    #[test]
    fn an_empty_catalog_is_an_empty_services_array() {
        let snap = CatalogSnapshot::build(&[None]);
        assert_eq!(&snap.json[..], b"{\"services\":[]}");
        assert!(snap.is_empty());
    }
}
