//! The OSB catalog, assembled from the SPIs' catalog fragments. The serialised bytes are kept
//! ready so `GET /v2/catalog` costs a pointer copy; a service-id index routes requests to the
//! SPI that owns the offering. The SPI list itself is read again from the settings file at each
//! refresh, so SPIs can be added and removed while the broker runs; the instance quotas are
//! read again with it and kept here for the use cases.
//!
//! - [`source`]: the SPI list and the clients of the SPIs;
//! - [`snapshot`]: one consistent view, routing offerings to SPIs;
//! - `refresh`: fetching the fragments again;
//! - [`guard`]: the live-plan guard, which keeps plans that instances use.

pub mod guard;
mod refresh;
pub mod snapshot;
pub mod source;

pub use guard::{
    plans_in_use_dropped, refusal_message, removal_refusal_message, LivePlans, PlanInUse,
};
pub use snapshot::{CatalogSnapshot, LookupError, RoutedService};
pub use source::{NamedSpi, SpiSource};

use crate::config::{QuotaSettings, SpiSettings};
use crate::store::Store;
use common::spi::CatalogFragment;
use std::sync::{Arc, Mutex, RwLock};

/// One SPI of the catalog: its client, its last good fragment, and what the last refresh said
/// about it.
#[derive(Debug, Clone)]
struct Entry {
    spi: Arc<NamedSpi>,
    /// The last good fragment; `None` until the SPI serves a usable one.
    fragment: Option<CatalogFragment>,
    /// What the last refresh logged against the SPI; `None` when its fragment was taken.
    problem: Option<String>,
    /// Whether the settings name the SPI (else it was removed from them and is kept while its
    /// plans have live instances; such entries come after the configured ones).
    configured: bool,
}

impl Entry {
    fn new(spi: Arc<NamedSpi>, fragment: Option<CatalogFragment>, configured: bool) -> Self {
        Self {
            spi,
            fragment,
            problem: None,
            configured,
        }
    }

    /// The fragments of `entries` that are in the catalog, with their SPIs, in order.
    fn published(entries: &[Entry]) -> impl Iterator<Item = (&Arc<NamedSpi>, &CatalogFragment)> {
        entries
            .iter()
            .filter_map(|e| Some((&e.spi, e.fragment.as_ref()?)))
    }
}

/// The catalog cache: the SPIs, the last good fragment of each and the snapshot built from them.
#[derive(Debug)]
pub struct CatalogCache {
    source: SpiSource,
    store: Store,
    /// Serialises refreshes, so a refresh compares against the fragments it replaces.
    refreshing: tokio::sync::Mutex<()>,
    listed: Mutex<Vec<Entry>>,
    snapshot: RwLock<Arc<CatalogSnapshot>>,
    /// The instance quotas: those of the settings at start, replaced by each refresh that
    /// reads the settings file again.
    quotas: RwLock<Arc<QuotaSettings>>,
}

impl CatalogCache {
    /// An empty cache over `spis` (the list at start); `source` gives the list of later
    /// refreshes, `store` tells which plans have live instances.
    pub fn new(source: SpiSource, spis: &[SpiSettings], store: Store) -> anyhow::Result<Self> {
        let listed = spis
            .iter()
            .map(|spi| Ok(Entry::new(Arc::new(source.client(spi)?), None, true)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let snapshot = Arc::new(CatalogSnapshot::build(Entry::published(&listed)));
        Ok(Self {
            source,
            store,
            refreshing: tokio::sync::Mutex::new(()),
            listed: Mutex::new(listed),
            snapshot: RwLock::new(snapshot),
            quotas: RwLock::new(Arc::default()),
        })
    }

    /// The quotas in force now.
    pub fn quotas(&self) -> Arc<QuotaSettings> {
        match self.quotas.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `quotas` in force (at start, and whenever the settings file is read again); a
    /// change is logged.
    pub fn set_quotas(&self, quotas: QuotaSettings) {
        let mut current = self.quotas.write().unwrap_or_else(|p| p.into_inner());
        if **current != quotas {
            if !current.is_empty() || !quotas.is_empty() {
                tracing::info!(quotas = ?quotas, "instance quotas in force");
            }
            *current = Arc::new(quotas);
        }
    }

    /// Whether some SPI has never delivered a usable fragment.
    pub fn incomplete(&self) -> bool {
        lock(&self.listed).iter().any(|e| e.fragment.is_none())
    }

    /// What the last refresh logged against the SPI named `spi` (unreachable, wrong contract
    /// version, refused fragment, refused removal); `None` when its fragment was taken as
    /// served.
    pub fn problem(&self, spi: &str) -> Option<String> {
        let listed = lock(&self.listed);
        listed.iter().find(|e| e.spi.name == spi)?.problem.clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        // A poisoned lock still holds a complete snapshot (it is replaced whole).
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The fragments are replaced whole; a panicking holder cannot leave them half-written.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SPIs, fragments and offerings the catalog is tested with.
#[cfg(test)]
mod fixtures {
    use super::NamedSpi;
    use common::client::InternalClient;
    use common::osb::{Plan, Service};
    use common::spi::{CatalogFragment, SpiClient, SpiInfo, CONTRACT_VERSION};
    use std::sync::Arc;

    pub(super) fn spis(names: &[&str]) -> Vec<Arc<NamedSpi>> {
        names
            .iter()
            .map(|name| {
                let url = format!("https://{name}.invalid");
                Arc::new(NamedSpi {
                    name: (*name).into(),
                    client: SpiClient::new(InternalClient::from_reqwest(
                        &url,
                        reqwest::Client::new(),
                    )),
                })
            })
            .collect()
    }

    pub(super) fn fragment(services: Vec<Service>) -> CatalogFragment {
        CatalogFragment {
            contract_version: CONTRACT_VERSION,
            spi: SpiInfo {
                name: "spi".into(),
                version: "1".into(),
            },
            services,
        }
    }

    pub(super) fn service(id: &str, plans: &[&str]) -> Service {
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
}
