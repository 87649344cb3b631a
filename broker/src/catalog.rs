//! The OSB catalog, assembled from the SPIs' catalog fragments. The serialised bytes are kept
//! ready so `GET /v2/catalog` costs a pointer copy; a service-id index routes requests to the
//! SPI that owns the offering.

use crate::store::Store;
use actix_web::web::Bytes;
use common::client::{CallContext, ClientError};
use common::osb::{Catalog, Plan, Service};
use common::spi::{CatalogFragment, SpiClient, CONTRACT_VERSION, PREFIX};
use std::collections::{HashMap, HashSet};
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

/// Live instances per `(service id, plan id)`.
pub type LivePlans = HashMap<(String, String), u64>;

/// A plan a new fragment would drop while instances still use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInUse {
    /// Offering name.
    pub service: String,
    /// Plan name.
    pub plan: String,
    /// Plan id.
    pub plan_id: String,
    /// Live instances on the plan.
    pub instances: u64,
}

impl std::fmt::Display for PlanInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} (plan id {}, {} live instance{})",
            self.service,
            self.plan,
            self.plan_id,
            self.instances,
            if self.instances == 1 { "" } else { "s" }
        )
    }
}

/// Every `(service id, plan id)` a set of fragments publishes.
fn published(fragments: &[Option<CatalogFragment>]) -> HashSet<(String, String)> {
    fragments
        .iter()
        .flatten()
        .flat_map(|f| &f.services)
        .flat_map(|s| s.plans.iter().map(|p| (s.id.clone(), p.id.clone())))
        .collect()
}

/// The plans of `old` that are not in `still_published` (the next catalog, every SPI) but have
/// live instances: a refresh must not drop them, whether the plan or its whole offering goes.
pub fn plans_in_use_dropped(
    old: &CatalogFragment,
    still_published: &HashSet<(String, String)>,
    live: &LivePlans,
) -> Vec<PlanInUse> {
    let mut dropped = Vec::new();
    for service in &old.services {
        for plan in &service.plans {
            let key = (service.id.clone(), plan.id.clone());
            if still_published.contains(&key) {
                continue;
            }
            if let Some(&instances) = live.get(&key).filter(|n| **n > 0) {
                dropped.push(PlanInUse {
                    service: service.name.clone(),
                    plan: plan.name.clone(),
                    plan_id: plan.id.clone(),
                    instances,
                });
            }
        }
    }
    dropped
}

/// Why a new fragment of `spi` is refused: the plans it would drop with their instances.
pub fn refusal_message(spi: &str, dropped: &[PlanInUse]) -> String {
    let total: u64 = dropped.iter().map(|p| p.instances).sum();
    let plans: Vec<String> = dropped.iter().map(ToString::to_string).collect();
    format!(
        "new catalog fragment of SPI {spi} refused: it removes {} with {total} live instance{} ({}); the previous fragment is kept until they are deprovisioned",
        if dropped.len() == 1 { "a plan" } else { "plans" },
        if total == 1 { "" } else { "s" },
        plans.join(", ")
    )
}

/// What went wrong with an SPI's catalog, as the operator reads it in the log.
fn fetch_problem(spi: &str, error: &ClientError) -> (bool, String) {
    match error {
        // A newer SPI that no longer serves this contract's paths.
        ClientError::Status { status: 404, .. } => (
            true,
            format!(
                "SPI {spi} does not serve contract version {CONTRACT_VERSION} ({PREFIX}/catalog answered 404)"
            ),
        ),
        ClientError::Decode { message, .. } => (
            true,
            format!(
                "SPI {spi} answered {PREFIX}/catalog with something that is not a version {CONTRACT_VERSION} catalog fragment ({message})"
            ),
        ),
        other => (
            false,
            format!("SPI {spi} catalog unavailable, retrying on the next refresh: {other}"),
        ),
    }
}

/// What a refused fragment means for the catalog.
fn consequence(kept_last_good: bool) -> &'static str {
    if kept_last_good {
        "; the fragment it served before stays in the catalog"
    } else {
        " and its offerings are left out of the catalog"
    }
}

/// The catalog cache: the last good fragment of each SPI and the snapshot built from them.
#[derive(Debug)]
pub struct CatalogCache {
    spis: Vec<NamedSpi>,
    store: Store,
    /// Serialises refreshes, so a refresh compares against the fragments it replaces.
    refreshing: tokio::sync::Mutex<()>,
    fragments: Mutex<Vec<Option<CatalogFragment>>>,
    problems: Mutex<Vec<Option<String>>>,
    snapshot: RwLock<Arc<CatalogSnapshot>>,
}

impl CatalogCache {
    /// An empty cache over `spis`; `store` tells which plans have live instances.
    pub fn new(spis: Vec<NamedSpi>, store: Store) -> Self {
        let fragments = vec![None; spis.len()];
        let snapshot = Arc::new(CatalogSnapshot::build(&fragments));
        Self {
            problems: Mutex::new(vec![None; spis.len()]),
            spis,
            store,
            refreshing: tokio::sync::Mutex::new(()),
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

    /// What the last refresh logged against the SPI named `spi` (unreachable, wrong contract
    /// version, refused fragment); `None` when its fragment was taken as served.
    pub fn problem(&self, spi: &str) -> Option<String> {
        let i = self.spis.iter().position(|s| s.name == spi)?;
        lock(&self.problems)[i].clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        // A poisoned lock still holds a complete snapshot (it is replaced whole).
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Fetches every SPI's fragment. An SPI that fails, speaks another contract version, or
    /// serves a fragment that would drop a plan with live instances keeps its last good
    /// fragment (or stays out of the catalog until it answers well).
    pub async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        let ctx = CallContext::with_request_id(common::new_request_id());
        let results =
            futures_util::future::join_all(self.spis.iter().map(|spi| spi.client.catalog(&ctx)))
                .await;
        let current = lock(&self.fragments).clone();
        let mut next = current.clone();
        let mut problems = vec![None; self.spis.len()];
        for (i, result) in results.into_iter().enumerate() {
            let name = &self.spis[i].name;
            match result {
                Ok(fragment) if fragment.contract_version != CONTRACT_VERSION => {
                    let problem = format!(
                        "SPI {name} speaks SPI contract version {}, this broker speaks version {CONTRACT_VERSION}: its fragment is refused{}",
                        fragment.contract_version,
                        consequence(current[i].is_some())
                    );
                    tracing::error!(
                        spi = %name,
                        contract_version = fragment.contract_version,
                        expected = CONTRACT_VERSION,
                        kept_last_good = current[i].is_some(),
                        "{problem}"
                    );
                    problems[i] = Some(problem);
                }
                Ok(fragment) => next[i] = Some(fragment),
                Err(e) => {
                    let (serious, mut problem) = fetch_problem(name, &e);
                    let kept = current[i].is_some();
                    if serious {
                        problem.push_str(consequence(kept));
                        tracing::error!(spi = %name, kept_last_good = kept, "{problem}");
                    } else {
                        tracing::warn!(spi = %name, kept_last_good = kept, "{problem}");
                    }
                    problems[i] = Some(problem);
                }
            }
        }
        if next != current {
            self.keep_plans_in_use(&current, &mut next, &mut problems)
                .await;
        }
        *lock(&self.problems) = problems;
        if next == current {
            return;
        }
        for (i, fragment) in next.iter().enumerate() {
            if let Some(fragment) = fragment.as_ref().filter(|f| current[i].as_ref() != Some(f)) {
                tracing::info!(
                    spi = %self.spis[i].name,
                    spi_version = %fragment.spi.version,
                    services = fragment.services.len(),
                    "catalog fragment loaded"
                );
            }
        }
        let snapshot = Arc::new(CatalogSnapshot::build(&next));
        *lock(&self.fragments) = next;
        match self.snapshot.write() {
            Ok(mut g) => *g = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// Puts back the current fragment of every SPI whose new one drops a plan that still has
    /// live instances (or, when the state database cannot tell, drops any plan at all).
    async fn keep_plans_in_use(
        &self,
        current: &[Option<CatalogFragment>],
        next: &mut [Option<CatalogFragment>],
        problems: &mut [Option<String>],
    ) {
        let still_published = published(next);
        let dropping: Vec<usize> = (0..next.len())
            .filter(|&i| {
                next[i] != current[i]
                    && !published(std::slice::from_ref(&current[i])).is_subset(&still_published)
            })
            .collect();
        if dropping.is_empty() {
            return;
        }
        let live: LivePlans = match self.store.live_instances_per_plan().await {
            Ok(rows) => rows
                .into_iter()
                .map(|(service, plan, n)| ((service, plan), u64::try_from(n).unwrap_or(0)))
                .collect(),
            Err(e) => {
                for i in dropping {
                    let problem = format!(
                        "new catalog fragment of SPI {} refused: it removes plans and the state database cannot tell whether instances use them ({e}); the previous fragment is kept",
                        self.spis[i].name
                    );
                    tracing::error!(spi = %self.spis[i].name, "{problem}");
                    next[i] = current[i].clone();
                    problems[i] = Some(problem);
                }
                return;
            }
        };
        for i in dropping {
            let Some(old) = &current[i] else { continue };
            let dropped = plans_in_use_dropped(old, &still_published, &live);
            if dropped.is_empty() {
                continue;
            }
            let name = &self.spis[i].name;
            let problem = refusal_message(name, &dropped);
            tracing::error!(
                spi = %name,
                plans = %dropped.iter().map(|p| format!("{}/{}", p.service, p.plan)).collect::<Vec<_>>().join(","),
                live_instances = dropped.iter().map(|p| p.instances).sum::<u64>(),
                "{problem}"
            );
            next[i] = current[i].clone();
            problems[i] = Some(problem);
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

    fn live(entries: &[(&str, &str, u64)]) -> LivePlans {
        entries
            .iter()
            .map(|(s, p, n)| (((*s).to_string(), (*p).to_string()), *n))
            .collect()
    }

    #[test]
    fn a_fragment_dropping_a_plan_with_live_instances_is_caught_with_their_number() {
        let old = fragment(vec![service("pg", &["small", "medium"])]);
        let new = Some(fragment(vec![service("pg", &["medium"])]));
        let still = published(std::slice::from_ref(&new));
        let dropped = plans_in_use_dropped(&old, &still, &live(&[("pg", "small", 2)]));
        assert_eq!(
            dropped,
            [PlanInUse {
                service: "pg".into(),
                plan: "small".into(),
                plan_id: "small".into(),
                instances: 2
            }]
        );
        assert_eq!(
            refusal_message("spi-postgres", &dropped),
            "new catalog fragment of SPI spi-postgres refused: it removes a plan with 2 live instances (pg/small (plan id small, 2 live instances)); the previous fragment is kept until they are deprovisioned"
        );
    }

    #[test]
    fn dropping_plans_without_live_instances_is_allowed() {
        let old = fragment(vec![service("pg", &["small", "medium"])]);
        let new = Some(fragment(vec![service("pg", &["medium"])]));
        let still = published(std::slice::from_ref(&new));
        let in_use = live(&[("pg", "medium", 3), ("pg", "small", 0), ("kv", "small", 1)]);
        assert!(plans_in_use_dropped(&old, &still, &in_use).is_empty());
    }

    #[test]
    fn a_whole_offering_dropped_counts_every_plan_in_use() {
        let old = fragment(vec![
            service("pg", &["small", "medium"]),
            service("x", &["t"]),
        ]);
        let new = Some(fragment(vec![service("x", &["t"])]));
        let still = published(std::slice::from_ref(&new));
        let dropped = plans_in_use_dropped(
            &old,
            &still,
            &live(&[("pg", "small", 1), ("pg", "medium", 1), ("x", "t", 5)]),
        );
        let names: Vec<_> = dropped.iter().map(|p| p.plan.as_str()).collect();
        assert_eq!(names, ["small", "medium"]);
        assert!(refusal_message("s", &dropped).contains("removes plans with 2 live instances"));
    }

    #[test]
    fn a_plan_another_spi_now_publishes_is_not_dropped() {
        let old = fragment(vec![service("pg", &["small"])]);
        let next = [None, Some(fragment(vec![service("pg", &["small"])]))];
        let still = published(&next);
        assert!(plans_in_use_dropped(&old, &still, &live(&[("pg", "small", 1)])).is_empty());
    }

    #[test]
    fn an_empty_catalog_is_an_empty_services_array() {
        let snap = CatalogSnapshot::build(&[None]);
        assert_eq!(&snap.json[..], b"{\"services\":[]}");
        assert!(snap.is_empty());
    }
}
