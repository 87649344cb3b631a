//! The OSB catalog, assembled from the SPIs' catalog fragments. The serialised bytes are kept
//! ready so `GET /v2/catalog` costs a pointer copy; a service-id index routes requests to the
//! SPI that owns the offering. The SPI list itself is read again from the settings file at each
//! refresh, so SPIs can be added and removed while the broker runs.

use crate::config::{Settings, SpiSettings};
use crate::store::Store;
use actix_web::web::Bytes;
use anyhow::Context as _;
use common::client::{CallContext, ClientError, InternalClient};
use common::osb::{Catalog, Plan, Service};
use common::spi::{CatalogFragment, SpiClient, CONTRACT_VERSION, PREFIX};
use common::tls::TlsFiles;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// One configured SPI with its client.
#[derive(Debug, Clone)]
pub struct NamedSpi {
    /// Name from the settings.
    pub name: String,
    /// Typed client.
    pub client: SpiClient,
}

/// Where the SPI list comes from: the settings file (re-read with the environment at each
/// refresh) and what the clients of newly listed SPIs are built with.
#[derive(Debug, Clone)]
pub struct SpiSource {
    /// The settings file; `None`: the list given at start never changes.
    pub file: Option<PathBuf>,
    /// The broker's client identity.
    pub tls: TlsFiles,
    /// Timeout of one call.
    pub timeout: Duration,
}

impl SpiSource {
    /// The client of `spi`.
    pub fn client(&self, spi: &SpiSettings) -> anyhow::Result<NamedSpi> {
        let client = InternalClient::new(&spi.url, &self.tls, self.timeout)
            .with_context(|| format!("client of SPI {}", spi.name))?;
        Ok(NamedSpi {
            name: spi.name.clone(),
            client: SpiClient::new(client),
        })
    }

    /// The SPIs the settings name now, reusing the clients of `known` ones whose URL is the
    /// same; `None` without a settings file.
    fn reload(&self, known: &[Arc<NamedSpi>]) -> Option<anyhow::Result<Vec<Arc<NamedSpi>>>> {
        let file = self.file.as_deref()?;
        let load = || {
            let settings = Settings::load(Some(file))
                .with_context(|| format!("reading the SPI list from {}", file.display()))?;
            let mut spis: Vec<Arc<NamedSpi>> = Vec::new();
            for spi in &settings.spis {
                if spis.iter().any(|s| s.name == spi.name) {
                    tracing::error!(spi = %spi.name, "SPI listed twice in the settings; the later entry is ignored");
                    continue;
                }
                let same = known.iter().find(|k| {
                    k.name == spi.name && k.client.base_url() == spi.url.trim_end_matches('/')
                });
                spis.push(match same {
                    Some(k) => Arc::clone(k),
                    None => Arc::new(self.client(spi)?),
                });
            }
            Ok(spis)
        };
        Some(load())
    }
}

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
    fn build(spis: &[Arc<NamedSpi>], fragments: &[Option<CatalogFragment>]) -> Self {
        let mut catalog = Catalog::default();
        let mut services = HashMap::new();
        for (spi, fragment) in spis.iter().zip(fragments) {
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

/// Why removing `spi` from the settings is refused: the plans it would drop with their instances.
pub fn removal_refusal_message(spi: &str, dropped: &[PlanInUse]) -> String {
    let total: u64 = dropped.iter().map(|p| p.instances).sum();
    let plans: Vec<String> = dropped.iter().map(ToString::to_string).collect();
    format!(
        "removal of SPI {spi} from the settings refused: its offerings have {total} live instance{} ({}); the SPI stays in the catalog until they are deprovisioned",
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

/// The SPIs of the catalog, the last good fragment of each and what the last refresh said
/// about each (parallel vectors). The first `configured` SPIs are the ones the settings name;
/// the rest were removed from the settings but are kept while their plans have live instances.
#[derive(Debug, Clone, Default)]
struct Listed {
    spis: Vec<Arc<NamedSpi>>,
    fragments: Vec<Option<CatalogFragment>>,
    problems: Vec<Option<String>>,
    configured: usize,
}

/// The catalog cache: the SPIs, the last good fragment of each and the snapshot built from them.
#[derive(Debug)]
pub struct CatalogCache {
    source: SpiSource,
    store: Store,
    /// Serialises refreshes, so a refresh compares against the fragments it replaces.
    refreshing: tokio::sync::Mutex<()>,
    listed: Mutex<Listed>,
    snapshot: RwLock<Arc<CatalogSnapshot>>,
}

impl CatalogCache {
    /// An empty cache over `spis` (the list at start); `source` gives the list of later
    /// refreshes, `store` tells which plans have live instances.
    pub fn new(source: SpiSource, spis: &[SpiSettings], store: Store) -> anyhow::Result<Self> {
        let spis = spis
            .iter()
            .map(|spi| source.client(spi).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let listed = Listed {
            fragments: vec![None; spis.len()],
            problems: vec![None; spis.len()],
            configured: spis.len(),
            spis,
        };
        let snapshot = Arc::new(CatalogSnapshot::build(&listed.spis, &listed.fragments));
        Ok(Self {
            source,
            store,
            refreshing: tokio::sync::Mutex::new(()),
            listed: Mutex::new(listed),
            snapshot: RwLock::new(snapshot),
        })
    }

    /// Whether some SPI has never delivered a usable fragment.
    pub fn incomplete(&self) -> bool {
        lock(&self.listed).fragments.iter().any(Option::is_none)
    }

    /// What the last refresh logged against the SPI named `spi` (unreachable, wrong contract
    /// version, refused fragment, refused removal); `None` when its fragment was taken as
    /// served.
    pub fn problem(&self, spi: &str) -> Option<String> {
        let listed = lock(&self.listed);
        let i = listed.spis.iter().position(|s| s.name == spi)?;
        listed.problems[i].clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        // A poisoned lock still holds a complete snapshot (it is replaced whole).
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The SPIs this refresh asks (the settings file's list, else the current one), followed by
    /// the current SPIs the settings no longer name; and where the latter start.
    fn next_spis(&self, listed: &Listed) -> (Vec<Arc<NamedSpi>>, usize) {
        let mut spis = match self.source.reload(&listed.spis) {
            Some(Ok(spis)) => spis,
            Some(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "SPI list not reloaded; the current one is kept");
                listed.spis[..listed.configured].to_vec()
            }
            None => listed.spis[..listed.configured].to_vec(),
        };
        for spi in &spis {
            match listed.spis.iter().find(|s| s.name == spi.name) {
                None => {
                    tracing::info!(spi = %spi.name, url = %spi.client.base_url(), "SPI added to the settings");
                }
                Some(old) if !Arc::ptr_eq(old, spi) => {
                    tracing::info!(spi = %spi.name, url = %spi.client.base_url(), "SPI URL changed in the settings");
                }
                Some(_) => {}
            }
        }
        let configured = spis.len();
        for spi in &listed.spis {
            if !spis.iter().any(|s| s.name == spi.name) {
                spis.push(Arc::clone(spi));
            }
        }
        (spis, configured)
    }

    /// Reads the SPI list again (when the broker has a settings file) and fetches every listed
    /// SPI's fragment. An SPI that fails, speaks another contract version, or serves a
    /// fragment that would drop a plan with live instances keeps its last good fragment (or
    /// stays out of the catalog until it answers well). An SPI removed from the settings leaves
    /// the catalog, unless its plans have live instances: then it stays until they are gone.
    pub async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        let ctx = CallContext::with_request_id(common::new_request_id());
        let listed = lock(&self.listed).clone();
        let (spis, configured) = self.next_spis(&listed);
        let results = futures_util::future::join_all(
            spis[..configured]
                .iter()
                .map(|spi| spi.client.catalog(&ctx)),
        )
        .await;
        let current: Vec<Option<CatalogFragment>> = spis
            .iter()
            .map(|spi| {
                let i = listed.spis.iter().position(|s| s.name == spi.name)?;
                listed.fragments[i].clone()
            })
            .collect();
        let mut next = current.clone();
        next[configured..].fill(None);
        let mut problems = vec![None; spis.len()];
        for (i, result) in results.into_iter().enumerate() {
            let name = &spis[i].name;
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
            self.keep_plans_in_use(&spis, configured, &current, &mut next, &mut problems)
                .await;
        }
        for (i, fragment) in next.iter().enumerate() {
            if let Some(fragment) = fragment.as_ref().filter(|f| current[i].as_ref() != Some(f)) {
                tracing::info!(
                    spi = %spis[i].name,
                    spi_version = %fragment.spi.version,
                    services = fragment.services.len(),
                    "catalog fragment loaded"
                );
            }
        }
        // A removed SPI stays only while `keep_plans_in_use` put its fragment back.
        let keep: Vec<bool> = (0..spis.len())
            .map(|i| i < configured || next[i].is_some())
            .collect();
        for (i, spi) in spis.iter().enumerate().skip(configured) {
            if !keep[i] {
                tracing::info!(spi = %spi.name, "SPI removed from the settings; its offerings left the catalog");
            }
        }
        let next = Listed {
            spis: retain(spis, &keep),
            fragments: retain(next, &keep),
            problems: retain(problems, &keep),
            configured,
        };
        let changed = next.fragments != listed.fragments
            || next.spis.len() != listed.spis.len()
            || next
                .spis
                .iter()
                .zip(&listed.spis)
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        let snapshot =
            changed.then(|| Arc::new(CatalogSnapshot::build(&next.spis, &next.fragments)));
        *lock(&self.listed) = next;
        if let Some(snapshot) = snapshot {
            match self.snapshot.write() {
                Ok(mut g) => *g = snapshot,
                Err(poisoned) => *poisoned.into_inner() = snapshot,
            }
        }
    }

    /// Puts back the current fragment of every SPI whose new one (none, for an SPI removed
    /// from the settings: those from `configured` on) drops a plan that still has live
    /// instances (or, when the state database cannot tell, drops any plan at all).
    async fn keep_plans_in_use(
        &self,
        spis: &[Arc<NamedSpi>],
        configured: usize,
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
                    let name = &spis[i].name;
                    let problem = if i < configured {
                        format!("new catalog fragment of SPI {name} refused: it removes plans and the state database cannot tell whether instances use them ({e}); the previous fragment is kept")
                    } else {
                        format!("removal of SPI {name} from the settings refused: the state database cannot tell whether instances use its plans ({e}); the SPI stays in the catalog")
                    };
                    tracing::error!(spi = %name, "{problem}");
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
            let name = &spis[i].name;
            let problem = if i < configured {
                refusal_message(name, &dropped)
            } else {
                removal_refusal_message(name, &dropped)
            };
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

/// The items of `items` whose `keep` is true.
fn retain<T>(items: Vec<T>, keep: &[bool]) -> Vec<T> {
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(x, k)| k.then_some(x))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The fragments are replaced whole; a panicking holder cannot leave them half-written.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::spi::SpiInfo;

    fn spis(names: &[&str]) -> Vec<Arc<NamedSpi>> {
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
        let snap = CatalogSnapshot::build(
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
        let snap = CatalogSnapshot::build(
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
        assert_eq!(
            removal_refusal_message("spi-x", &dropped),
            "removal of SPI spi-x from the settings refused: its offerings have 2 live instances (pg/small (plan id small, 1 live instance), pg/medium (plan id medium, 1 live instance)); the SPI stays in the catalog until they are deprovisioned"
        );
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
        let snap = CatalogSnapshot::build(&spis(&["a"]), &[None]);
        assert_eq!(&snap.json[..], b"{\"services\":[]}");
        assert!(snap.is_empty());
    }
}
