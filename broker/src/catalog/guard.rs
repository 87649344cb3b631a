//! The live-plan guard: a refresh must not drop a plan that live instances use, whether an
//! SPI's new fragment leaves it out or the SPI was removed from the settings. The SPI keeps
//! the fragment it served before, and the refusal says why.

use super::refresh::Candidate;
use super::CatalogCache;
use common::spi::CatalogFragment;
use std::collections::{HashMap, HashSet};

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
pub(super) fn published<'a>(
    fragments: impl IntoIterator<Item = Option<&'a CatalogFragment>>,
) -> HashSet<(String, String)> {
    fragments
        .into_iter()
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

impl CatalogCache {
    /// Puts back the current fragment of every candidate whose next one (none, for an SPI
    /// removed from the settings) drops a plan that still has live instances (or, when the
    /// state database cannot tell, drops any plan at all).
    pub(super) async fn keep_plans_in_use(&self, candidates: &mut [Candidate]) {
        let still_published = published(candidates.iter().map(|c| c.entry.fragment.as_ref()));
        let dropping: Vec<usize> = (0..candidates.len())
            .filter(|&i| {
                let c = &candidates[i];
                c.entry.fragment != c.current
                    && !published([c.current.as_ref()]).is_subset(&still_published)
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
                    let c = &mut candidates[i];
                    let name = &c.entry.spi.name;
                    let problem = if c.entry.configured {
                        format!("new catalog fragment of SPI {name} refused: it removes plans and the state database cannot tell whether instances use them ({e}); the previous fragment is kept")
                    } else {
                        format!("removal of SPI {name} from the settings refused: the state database cannot tell whether instances use its plans ({e}); the SPI stays in the catalog")
                    };
                    tracing::error!(spi = %name, "{problem}");
                    c.keep_current(problem);
                }
                return;
            }
        };
        for i in dropping {
            let c = &mut candidates[i];
            let Some(old) = &c.current else { continue };
            let dropped = plans_in_use_dropped(old, &still_published, &live);
            if dropped.is_empty() {
                continue;
            }
            let name = &c.entry.spi.name;
            let problem = if c.entry.configured {
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
            c.keep_current(problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fragment, service};
    use super::*;

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
        let still = published([new.as_ref()]);
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
        let still = published([new.as_ref()]);
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
        let still = published([new.as_ref()]);
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
        let still = published(next.iter().map(Option::as_ref));
        assert!(plans_in_use_dropped(&old, &still, &live(&[("pg", "small", 1)])).is_empty());
    }
}
