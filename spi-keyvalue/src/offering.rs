//! The `keyvalue` offering as data, without I/O: the service and its plans with fixed ids,
//! their sizing, the instance parameters and their schema. `spi-kit` turns it into the catalog
//! and validates provision, update and bind requests against it.

use crate::KeyValue;
use serde_json::{json, Value};
use spi_kit::offering::ServiceInfo;
use spi_kit::Catalog;

pub use spi_kit::offering::Refusal;

/// Id of the `keyvalue` offering; never changes.
pub const SERVICE_ID: &str = "f76e17e4-1c5f-4382-add2-b3556073976f";
/// Id of the `small` plan; never changes.
pub const PLAN_SMALL_ID: &str = "6789a8fd-2d3a-4f83-ba25-524387a25b84";
/// Id of the `medium` plan; never changes.
pub const PLAN_MEDIUM_ID: &str = "4743b02f-1bfb-43c6-9dfc-8b7290b2e18b";

/// Parameter choosing what Redis does when `maxmemory` is reached.
pub const PARAM_MAXMEMORY_POLICY: &str = "maxmemory-policy";
/// Redis's own eviction policies, in the order its documentation lists them.
pub const MAXMEMORY_POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];
/// Redis's default eviction policy, used when none is given.
pub const DEFAULT_MAXMEMORY_POLICY: &str = "noeviction";

/// A plan's server sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// `maxmemory` in megabytes.
    pub maxmemory_mb: u32,
    /// `maxclients`.
    pub maxclients: u32,
}

/// A plan of this offering.
pub type PlanDef = spi_kit::offering::PlanDef<Sizing>;

/// The offering with its schemas compiled.
pub type Offering = spi_kit::offering::Offering<KeyValue>;

/// Every plan of the offering, smallest first.
pub const PLANS: &[PlanDef] = &[
    PlanDef {
        id: PLAN_SMALL_ID,
        name: "small",
        display_name: "Small",
        description: "Redis 7, 64 MB of memory, 100 clients",
        may_change_to: &["medium"],
        sizing: Sizing {
            maxmemory_mb: 64,
            maxclients: 100,
        },
    },
    PlanDef {
        id: PLAN_MEDIUM_ID,
        name: "medium",
        display_name: "Medium",
        description: "Redis 7, 256 MB of memory, 1000 clients",
        may_change_to: &[],
        sizing: Sizing {
            maxmemory_mb: 256,
            maxclients: 1000,
        },
    },
];

impl Catalog for KeyValue {
    type Sizing = Sizing;

    const SERVICE: ServiceInfo = ServiceInfo {
        id: SERVICE_ID,
        name: "keyvalue",
        description: "Redis-compatible key-value store, one dedicated server per instance",
        display_name: "Key-Value (Redis)",
        long_description: "A dedicated Redis 7 server with persistence. Every binding gets its own ACL user with access to all keys and no administrative commands.",
        tags: &["redis", "keyvalue", "cache"],
        product: "Redis 7",
        noun: "key-value",
        // Redis 7, first release of this offering.
        maintenance_version: "7.0.0",
        maximum_polling_duration_s: 900,
        spi_name: "spi-keyvalue",
        spi_version: env!("CARGO_PKG_VERSION"),
    };
    const PLANS: &'static [PlanDef] = PLANS;

    fn instance_properties(plan: &PlanDef) -> Value {
        json!({
            PARAM_MAXMEMORY_POLICY: {
                "description": format!(
                    "What to evict when the plan's {} MB are used up (default {DEFAULT_MAXMEMORY_POLICY}: refuse writes).",
                    plan.sizing.maxmemory_mb
                ),
                "type": "string",
                "enum": MAXMEMORY_POLICIES
            }
        })
    }

    fn sizing_bullets(plan: &PlanDef) -> Vec<String> {
        vec![
            format!("{} MB of memory", plan.sizing.maxmemory_mb),
            format!("{} clients", plan.sizing.maxclients),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::spi::offering::validate_provision;

    testkit::offering_tests!(KeyValue);

    fn refusal(parameters: Value) -> Refusal {
        validate_provision::<KeyValue>(PLAN_SMALL_ID, parameters).unwrap_err()
    }

    #[test]
    fn the_plans_really_differ_in_memory_and_clients() {
        let [small, medium] = [PLANS[0], PLANS[1]];
        assert!(small.sizing.maxmemory_mb < medium.sizing.maxmemory_mb);
        assert!(small.sizing.maxclients < medium.sizing.maxclients);
    }

    #[test]
    fn every_redis_eviction_policy_is_accepted() {
        for policy in MAXMEMORY_POLICIES {
            let parameters = json!({ PARAM_MAXMEMORY_POLICY: policy });
            validate_provision::<KeyValue>(PLAN_SMALL_ID, parameters).unwrap();
        }
    }

    #[test]
    fn an_unknown_policy_is_refused_listing_the_allowed_ones() {
        assert_eq!(
            refusal(json!({"maxmemory-policy": "lru-please"})),
            Refusal::InvalidParameters(
                "parameter 'maxmemory-policy': must be one of noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl, got lru-please".into()
            )
        );
    }

    #[test]
    fn a_policy_of_the_wrong_type_is_refused_naming_the_type() {
        assert_eq!(
            refusal(json!({"maxmemory-policy": 3})).to_string(),
            "parameter 'maxmemory-policy': string expected, got 3"
        );
    }

    #[test]
    fn an_unknown_parameter_is_refused() {
        assert_eq!(
            refusal(json!({"appendonly": "no"})).to_string(),
            "unknown parameter 'appendonly' (allowed parameters: maxmemory-policy)"
        );
    }

    #[test]
    fn small_may_grow_to_medium_but_medium_may_not_shrink() {
        // `offering_tests!` checks that these lists are what validation enforces.
        assert_eq!(PLANS[0].may_change_to, ["medium"]);
        assert!(PLANS[1].may_change_to.is_empty());
    }
}
