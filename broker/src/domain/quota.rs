//! Instance quotas: the `[quotas]` settings, the limits that apply to a new instance (in the
//! order global, service, plan, organization, space), and the refusal that names the first
//! limit reached. The store counts the instances of each limit's scope inside the transaction
//! that inserts the instance, so the count and the insert cannot be raced.

use super::identity::Placement;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The `[quotas]` settings: most instances that may exist at once. Keys of the maps are
/// compared without regard to ASCII case; a key that names nothing in the catalog limits
/// nothing. Where several keys name the same offering or plan (its id and its name), the
/// smallest value applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSettings {
    /// Instances of all offerings together.
    #[serde(default)]
    pub global: Option<u64>,
    /// Per offering, keyed by its catalog name or id.
    #[serde(default)]
    pub services: BTreeMap<String, u64>,
    /// Per plan, keyed by the plan id or `"<service name>/<plan name>"`.
    #[serde(default)]
    pub plans: BTreeMap<String, u64>,
    /// Per organization (Kubernetes: cluster), keyed by its GUID.
    #[serde(default)]
    pub organizations: BTreeMap<String, u64>,
    /// Per space (Kubernetes: namespace) within its organization, keyed by its GUID.
    #[serde(default)]
    pub spaces: BTreeMap<String, u64>,
    /// The limit of every organization without an entry in `organizations`.
    #[serde(default)]
    pub per_organization: Option<u64>,
    /// The limit of every space without an entry in `spaces`.
    #[serde(default)]
    pub per_space: Option<u64>,
}

/// The offering and plan a new instance is of, with the names operators write quotas with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offering<'a> {
    /// Offering id.
    pub service_id: &'a str,
    /// Offering name in the catalog.
    pub service_name: &'a str,
    /// Plan id.
    pub plan_id: &'a str,
    /// Plan name in the catalog.
    pub plan_name: &'a str,
}

/// Which instances a limit counts (those not deleted, in every other state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// All instances.
    All,
    /// The instances of one offering.
    Service {
        /// Offering id.
        service_id: String,
    },
    /// The instances of one plan.
    Plan {
        /// Offering id.
        service_id: String,
        /// Plan id.
        plan_id: String,
    },
    /// The instances placed in one organization.
    Organization {
        /// Organization GUID.
        organization: String,
    },
    /// The instances placed in one space (of one organization, when the request named it:
    /// Kubernetes namespaces repeat across clusters).
    Space {
        /// Organization GUID, if known.
        organization: Option<String>,
        /// Space GUID.
        space: String,
    },
}

/// One limit that applies to a new instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// What it counts.
    pub scope: Scope,
    /// Most instances it allows.
    pub max: u64,
    /// How a refusal names it: `"plan small of service postgresql"`.
    pub label: String,
}

/// A limit that a new instance would exceed: the refusal's description names the limit, its
/// value and the current count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The limit reached.
    pub limit: Limit,
    /// The instances its scope holds now.
    pub count: u64,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.limit.scope {
            Scope::All => "global",
            Scope::Service { .. } => "service",
            Scope::Plan { .. } => "plan",
            Scope::Organization { .. } => "organization",
            Scope::Space { .. } => "space",
        };
        let (max, count) = (self.limit.max, self.count);
        let instances = if max == 1 { "instance" } else { "instances" };
        let exist = if count == 1 { "exists" } else { "exist" };
        write!(
            f,
            "{level} quota exceeded: {} allows {max} {instances}, {count} {exist}",
            self.limit.label
        )
    }
}

/// The smallest value among the entries of `map` whose key is one of `keys` (ASCII case
/// ignored).
fn smallest(map: &BTreeMap<String, u64>, keys: &[&str]) -> Option<u64> {
    map.iter()
        .filter(|(k, _)| keys.iter().any(|key| k.eq_ignore_ascii_case(key)))
        .map(|(_, v)| *v)
        .min()
}

impl QuotaSettings {
    /// Whether no limit is configured at all.
    pub fn is_empty(&self) -> bool {
        self.global.is_none()
            && self.services.is_empty()
            && self.plans.is_empty()
            && self.organizations.is_empty()
            && self.spaces.is_empty()
            && self.per_organization.is_none()
            && self.per_space.is_none()
    }

    /// The limit of `offering`'s plan, if one is configured.
    pub fn plan_limit(&self, offering: &Offering<'_>) -> Option<Limit> {
        let by_name = format!("{}/{}", offering.service_name, offering.plan_name);
        smallest(&self.plans, &[offering.plan_id, &by_name]).map(|max| Limit {
            scope: Scope::Plan {
                service_id: offering.service_id.into(),
                plan_id: offering.plan_id.into(),
            },
            max,
            label: format!(
                "plan {} of service {}",
                offering.plan_name, offering.service_name
            ),
        })
    }

    /// The limits a new instance of `offering` placed at `placement` must stay within, in the
    /// order they are checked: global, service, plan, organization, space.
    pub fn limits(&self, offering: &Offering<'_>, placement: &Placement) -> Vec<Limit> {
        let mut limits = Vec::new();
        if let Some(max) = self.global {
            limits.push(Limit {
                scope: Scope::All,
                max,
                label: "the broker".into(),
            });
        }
        if let Some(max) = smallest(
            &self.services,
            &[offering.service_id, offering.service_name],
        ) {
            limits.push(Limit {
                scope: Scope::Service {
                    service_id: offering.service_id.into(),
                },
                max,
                label: format!("service {}", offering.service_name),
            });
        }
        limits.extend(self.plan_limit(offering));
        if let Some(organization) = &placement.organization {
            let max = smallest(&self.organizations, &[organization]).or(self.per_organization);
            limits.extend(max.map(|max| Limit {
                scope: Scope::Organization {
                    organization: organization.clone(),
                },
                max,
                label: format!("organization {organization}"),
            }));
        }
        if let Some(space) = &placement.space {
            let max = smallest(&self.spaces, &[space]).or(self.per_space);
            limits.extend(max.map(|max| Limit {
                scope: Scope::Space {
                    organization: placement.organization.clone(),
                    space: space.clone(),
                },
                max,
                label: format!("space {space}"),
            }));
        }
        limits
    }
}

/// The first of `limits` (in their order) whose scope already holds `max` instances or more,
/// with `count` telling how many a scope holds; `None` when one more instance fits them all.
pub fn first_exceeded<E>(
    limits: &[Limit],
    mut count: impl FnMut(&Scope) -> Result<u64, E>,
) -> Result<Option<QuotaExceeded>, E> {
    for limit in limits {
        let now = count(&limit.scope)?;
        if now >= limit.max {
            return Ok(Some(QuotaExceeded {
                limit: limit.clone(),
                count: now,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERING: Offering<'static> = Offering {
        service_id: "svc-id",
        service_name: "postgresql",
        plan_id: "small-id",
        plan_name: "small",
    };

    fn placement(organization: Option<&str>, space: Option<&str>) -> Placement {
        Placement {
            organization: organization.map(str::to_string),
            space: space.map(str::to_string),
        }
    }

    fn map(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn every_level() -> QuotaSettings {
        QuotaSettings {
            global: Some(100),
            services: map(&[("postgresql", 50), ("keyvalue", 1)]),
            plans: map(&[("postgresql/small", 3), ("postgresql/large", 1)]),
            organizations: map(&[("org-1", 20)]),
            spaces: map(&[("space-1", 10)]),
            per_organization: Some(7),
            per_space: Some(2),
        }
    }

    #[test]
    fn no_settings_limit_nothing() {
        let settings = QuotaSettings::default();
        assert!(settings.is_empty());
        let p = placement(Some("org-1"), Some("space-1"));
        assert!(settings.limits(&OFFERING, &p).is_empty());
    }

    #[test]
    fn limits_come_in_the_order_global_service_plan_organization_space() {
        let p = placement(Some("org-1"), Some("space-1"));
        let limits = every_level().limits(&OFFERING, &p);
        let found: Vec<(&str, u64)> = limits.iter().map(|l| (l.label.as_str(), l.max)).collect();
        assert_eq!(
            found,
            [
                ("the broker", 100),
                ("service postgresql", 50),
                ("plan small of service postgresql", 3),
                ("organization org-1", 20),
                ("space space-1", 10),
            ]
        );
        assert_eq!(
            limits[2].scope,
            Scope::Plan {
                service_id: "svc-id".into(),
                plan_id: "small-id".into()
            }
        );
        assert_eq!(
            limits[4].scope,
            Scope::Space {
                organization: Some("org-1".into()),
                space: "space-1".into()
            }
        );
    }

    #[test]
    fn organizations_and_spaces_without_an_entry_get_the_defaults() {
        let p = placement(Some("org-9"), Some("space-9"));
        let limits = every_level().limits(&OFFERING, &p);
        let found: Vec<(&str, u64)> = limits[3..]
            .iter()
            .map(|l| (l.label.as_str(), l.max))
            .collect();
        assert_eq!(found, [("organization org-9", 7), ("space space-9", 2)]);
        // A request that names neither has no organization or space limit.
        assert_eq!(
            every_level()
                .limits(&OFFERING, &placement(None, None))
                .len(),
            3
        );
    }

    #[test]
    fn ids_and_names_both_match_and_the_smallest_value_applies() {
        let settings = QuotaSettings {
            services: map(&[("SVC-ID", 4), ("PostgreSQL", 6)]),
            plans: map(&[("small-id", 9), ("postgresql/SMALL", 5), ("other/small", 1)]),
            ..Default::default()
        };
        let limits = settings.limits(&OFFERING, &placement(None, None));
        let found: Vec<u64> = limits.iter().map(|l| l.max).collect();
        assert_eq!(found, [4, 5]);
    }

    #[test]
    fn keys_that_name_other_offerings_limit_nothing() {
        let settings = QuotaSettings {
            services: map(&[("keyvalue", 1)]),
            plans: map(&[("keyvalue/small", 1), ("postgresql/medium", 1)]),
            ..Default::default()
        };
        assert!(!settings.is_empty());
        assert!(settings
            .limits(&OFFERING, &placement(Some("o"), Some("s")))
            .is_empty());
    }

    #[test]
    fn the_first_limit_reached_is_the_refusal_and_later_ones_are_not_counted() {
        let p = placement(Some("org-1"), Some("space-1"));
        let limits = every_level().limits(&OFFERING, &p);
        let mut asked = Vec::new();
        let exceeded = first_exceeded::<()>(&limits, |scope| {
            asked.push(scope.clone());
            Ok(match scope {
                Scope::All => 12,
                Scope::Service { .. } => 5,
                Scope::Plan { .. } => 3,
                _ => 99,
            })
        })
        .unwrap()
        .unwrap();
        assert_eq!(asked.len(), 3, "organization and space are not counted");
        assert_eq!(
            exceeded.to_string(),
            "plan quota exceeded: plan small of service postgresql allows 3 instances, 3 exist"
        );
    }

    #[test]
    fn one_more_instance_fits_when_every_count_is_below_its_limit() {
        let p = placement(Some("org-1"), Some("space-1"));
        let limits = every_level().limits(&OFFERING, &p);
        let fits = first_exceeded::<()>(&limits, |scope| {
            Ok(match scope {
                Scope::Plan { .. } => 2,
                Scope::Space { .. } => 9,
                _ => 0,
            })
        })
        .unwrap();
        assert_eq!(fits, None);
    }

    #[test]
    fn refusals_name_level_limit_value_and_count() {
        let refusal = |scope: Scope, label: &str, max: u64, count: u64| {
            QuotaExceeded {
                limit: Limit {
                    scope,
                    max,
                    label: label.into(),
                },
                count,
            }
            .to_string()
        };
        assert_eq!(
            refusal(Scope::All, "the broker", 10, 10),
            "global quota exceeded: the broker allows 10 instances, 10 exist"
        );
        assert_eq!(
            refusal(
                Scope::Space {
                    organization: None,
                    space: "s".into()
                },
                "space s",
                1,
                1
            ),
            "space quota exceeded: space s allows 1 instance, 1 exists"
        );
        assert_eq!(
            refusal(
                Scope::Organization {
                    organization: "o".into()
                },
                "organization o",
                0,
                0
            ),
            "organization quota exceeded: organization o allows 0 instances, 0 exist"
        );
        // A limit lowered below the current count says so.
        assert_eq!(
            refusal(
                Scope::Service {
                    service_id: "x".into()
                },
                "service postgresql",
                2,
                5
            ),
            "service quota exceeded: service postgresql allows 2 instances, 5 exist"
        );
    }
}
