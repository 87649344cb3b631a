//! A refresh of the catalog: read the SPI list (and the quotas) again, ask every listed SPI
//! for its fragment, keep the last good fragment of an SPI that fails or speaks another
//! contract version, let the live-plan guard refuse what would drop plans in use, and publish
//! a new snapshot when anything changed.

use super::{lock, CatalogCache, CatalogSnapshot, Entry, NamedSpi};
use common::client::{CallContext, ClientError};
use common::spi::{CatalogFragment, CONTRACT_VERSION, PREFIX};
use std::sync::Arc;

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

/// One SPI during a refresh: its entry as the refresh leaves it, and the fragment it had before.
#[derive(Debug)]
pub(super) struct Candidate {
    /// The entry after this refresh (its fragment: the one the catalog will hold).
    pub entry: Entry,
    /// The fragment before this refresh.
    pub current: Option<CatalogFragment>,
}

impl Candidate {
    /// Takes what the SPI answered: a fragment of this contract version replaces the current
    /// one; anything else keeps it and is the SPI's problem.
    fn take(&mut self, answer: Result<CatalogFragment, ClientError>) {
        let name = &self.entry.spi.name;
        let kept = self.current.is_some();
        match answer {
            Ok(fragment) if fragment.contract_version != CONTRACT_VERSION => {
                let problem = format!(
                    "SPI {name} speaks SPI contract version {}, this broker speaks version {CONTRACT_VERSION}: its fragment is refused{}",
                    fragment.contract_version,
                    consequence(kept)
                );
                tracing::error!(
                    spi = %name,
                    contract_version = fragment.contract_version,
                    expected = CONTRACT_VERSION,
                    kept_last_good = kept,
                    "{problem}"
                );
                self.entry.problem = Some(problem);
            }
            Ok(fragment) => self.entry.fragment = Some(fragment),
            Err(e) => {
                let (serious, mut problem) = fetch_problem(name, &e);
                if serious {
                    problem.push_str(consequence(kept));
                    tracing::error!(spi = %name, kept_last_good = kept, "{problem}");
                } else {
                    tracing::warn!(spi = %name, kept_last_good = kept, "{problem}");
                }
                self.entry.problem = Some(problem);
            }
        }
    }

    /// Keeps the fragment served before this refresh, for the reason `problem`.
    pub(super) fn keep_current(&mut self, problem: String) {
        self.entry.fragment = self.current.clone();
        self.entry.problem = Some(problem);
    }
}

impl CatalogCache {
    /// The SPIs this refresh asks (the settings file's list, else the currently configured
    /// ones), followed by the listed SPIs the settings no longer name; each with the fragment
    /// it has now.
    fn candidates(&self, listed: &[Entry]) -> Vec<Candidate> {
        let known: Vec<Arc<NamedSpi>> = listed.iter().map(|e| Arc::clone(&e.spi)).collect();
        let configured = || {
            listed
                .iter()
                .filter(|e| e.configured)
                .map(|e| Arc::clone(&e.spi))
                .collect()
        };
        let spis: Vec<Arc<NamedSpi>> = match self.source.reload(&known) {
            Some(Ok((spis, quotas))) => {
                self.set_quotas(quotas);
                spis
            }
            Some(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "SPI list not reloaded; the current one is kept");
                configured()
            }
            None => configured(),
        };
        for spi in &spis {
            match known.iter().find(|s| s.name == spi.name) {
                None => {
                    tracing::info!(spi = %spi.name, url = %spi.client.base_url(), "SPI added to the settings");
                }
                Some(old) if !Arc::ptr_eq(old, spi) => {
                    tracing::info!(spi = %spi.name, url = %spi.client.base_url(), "SPI URL changed in the settings");
                }
                Some(_) => {}
            }
        }
        let current = |name: &str| {
            listed
                .iter()
                .find(|e| e.spi.name == name)
                .and_then(|e| e.fragment.clone())
        };
        let removed: Vec<&Entry> = listed
            .iter()
            .filter(|e| !spis.iter().any(|s| s.name == e.spi.name))
            .collect();
        let mut candidates: Vec<Candidate> = spis
            .into_iter()
            .map(|spi| {
                let current = current(&spi.name);
                Candidate {
                    entry: Entry::new(spi, current.clone(), true),
                    current,
                }
            })
            .collect();
        candidates.extend(removed.into_iter().map(|e| Candidate {
            entry: Entry::new(Arc::clone(&e.spi), None, false),
            current: e.fragment.clone(),
        }));
        candidates
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
        let mut candidates = self.candidates(&listed);
        // The configured SPIs come first: the answers line up with them.
        let answers = futures_util::future::join_all(
            candidates
                .iter()
                .filter(|c| c.entry.configured)
                .map(|c| c.entry.spi.client.catalog(&ctx)),
        )
        .await;
        for (candidate, answer) in candidates.iter_mut().zip(answers) {
            candidate.take(answer);
        }
        if candidates.iter().any(|c| c.entry.fragment != c.current) {
            self.keep_plans_in_use(&mut candidates).await;
        }
        for c in &candidates {
            if let Some(fragment) = c
                .entry
                .fragment
                .as_ref()
                .filter(|f| c.current.as_ref() != Some(f))
            {
                tracing::info!(
                    spi = %c.entry.spi.name,
                    spi_version = %fragment.spi.version,
                    services = fragment.services.len(),
                    "catalog fragment loaded"
                );
            }
        }
        // A removed SPI stays only while `keep_plans_in_use` put its fragment back.
        let next: Vec<Entry> = candidates
            .into_iter()
            .filter_map(|c| {
                if c.entry.configured || c.entry.fragment.is_some() {
                    return Some(c.entry);
                }
                tracing::info!(spi = %c.entry.spi.name, "SPI removed from the settings; its offerings left the catalog");
                None
            })
            .collect();
        let changed = next.len() != listed.len()
            || next
                .iter()
                .zip(&listed)
                .any(|(a, b)| a.fragment != b.fragment || !Arc::ptr_eq(&a.spi, &b.spi));
        let snapshot = changed.then(|| Arc::new(CatalogSnapshot::build(Entry::published(&next))));
        *lock(&self.listed) = next;
        if let Some(snapshot) = snapshot {
            match self.snapshot.write() {
                Ok(mut g) => *g = snapshot,
                Err(poisoned) => *poisoned.into_inner() = snapshot,
            }
        }
    }
}
