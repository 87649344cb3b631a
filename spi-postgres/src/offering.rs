//! The `postgresql` offering as data, without I/O: the service and its plans with fixed ids,
//! their sizing, the instance parameters and their schema. `spi-kit` turns it into the catalog
//! and validates provision, update and bind requests against it.

use crate::Postgres;
use serde_json::{json, Value};
use spi_kit::offering::ServiceInfo;
use spi_kit::Catalog;

pub use spi_kit::offering::Refusal;

/// Id of the `postgresql` offering; never changes.
pub const SERVICE_ID: &str = "57412afa-663c-4ce1-9c75-0820caad8441";
/// Id of the `small` plan; never changes.
pub const PLAN_SMALL_ID: &str = "0f272df9-a839-4537-9e84-b71ed11d9bc9";
/// Id of the `medium` plan; never changes.
pub const PLAN_MEDIUM_ID: &str = "c10ea867-b1ff-496d-bf96-ec99182dab31";

/// Parameter overriding the plan's `max_connections`.
pub const PARAM_MAX_CONNECTIONS: &str = "max_connections";
/// Parameter setting `work_mem` in megabytes.
pub const PARAM_WORK_MEM_MB: &str = "work_mem_mb";
/// Parameter setting `statement_timeout` in milliseconds.
pub const PARAM_STATEMENT_TIMEOUT_MS: &str = "statement_timeout_ms";

/// A plan's server sizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// `max_connections` of the server.
    pub max_connections: u32,
    /// `shared_buffers` in megabytes.
    pub shared_buffers_mb: u32,
    /// Default `work_mem` in megabytes.
    pub work_mem_mb: u32,
}

/// A plan of this offering.
pub type PlanDef = spi_kit::offering::PlanDef<Sizing>;

/// The offering with its schemas compiled.
pub type Offering = spi_kit::offering::Offering<Postgres>;

/// Every plan of the offering, smallest first.
pub const PLANS: &[PlanDef] = &[
    PlanDef {
        id: PLAN_SMALL_ID,
        name: "small",
        display_name: "Small",
        description: "PostgreSQL 15, 50 connections, 32 MB shared buffers",
        may_change_to: &["medium"],
        sizing: Sizing {
            max_connections: 50,
            shared_buffers_mb: 32,
            work_mem_mb: 4,
        },
    },
    PlanDef {
        id: PLAN_MEDIUM_ID,
        name: "medium",
        display_name: "Medium",
        description: "PostgreSQL 15, 200 connections, 128 MB shared buffers",
        may_change_to: &[],
        sizing: Sizing {
            max_connections: 200,
            shared_buffers_mb: 128,
            work_mem_mb: 8,
        },
    },
];

impl Catalog for Postgres {
    type Sizing = Sizing;

    const SERVICE: ServiceInfo = ServiceInfo {
        id: SERVICE_ID,
        name: "postgresql",
        description: "PostgreSQL 15 relational database, one dedicated server per instance",
        display_name: "PostgreSQL",
        long_description: "A dedicated PostgreSQL 15 server. Every binding gets its own login role; all bindings share the database `app` and own its tables together.",
        tags: &["postgresql", "relational", "sql"],
        product: "PostgreSQL 15",
        noun: "PostgreSQL",
        // PostgreSQL 15, first release of this offering.
        maintenance_version: "15.0.0",
        maximum_polling_duration_s: 1800,
        spi_name: "spi-postgres",
        spi_version: env!("CARGO_PKG_VERSION"),
    };
    const PLANS: &'static [PlanDef] = PLANS;

    fn instance_properties(plan: &PlanDef) -> Value {
        json!({
            PARAM_MAX_CONNECTIONS: {
                "description": format!("Maximum number of concurrent connections (plan default {}).", plan.sizing.max_connections),
                "type": "integer",
                "minimum": 10,
                "maximum": 1000
            },
            PARAM_WORK_MEM_MB: {
                "description": format!("Memory per sort or hash operation, in MB (plan default {}).", plan.sizing.work_mem_mb),
                "type": "integer",
                "minimum": 1,
                "maximum": 1024
            },
            PARAM_STATEMENT_TIMEOUT_MS: {
                "description": "Abort statements running longer than this, in milliseconds (0: no limit).",
                "type": "integer",
                "minimum": 0,
                "maximum": 2_147_483_647_i64
            }
        })
    }

    fn sizing_bullets(plan: &PlanDef) -> Vec<String> {
        vec![
            format!("{} connections", plan.sizing.max_connections),
            format!("{} MB shared buffers", plan.sizing.shared_buffers_mb),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::spi::offering::{validate_provision, validate_update};

    testkit::offering_tests!(Postgres);

    #[test]
    fn the_plans_really_differ_in_server_settings() {
        let [small, medium] = [PLANS[0], PLANS[1]];
        assert!(small.sizing.max_connections < medium.sizing.max_connections);
        assert!(small.sizing.shared_buffers_mb < medium.sizing.shared_buffers_mb);
    }

    #[test]
    fn every_parameter_within_its_range_is_accepted() {
        let parameters =
            json!({"max_connections": 100, "work_mem_mb": 16, "statement_timeout_ms": 0});
        validate_provision::<Postgres>(PLAN_SMALL_ID, parameters).unwrap();
    }

    #[test]
    fn a_float_for_max_connections_is_refused_naming_the_parameter() {
        let parameters = json!({"max_connections": 1.5});
        assert_eq!(
            validate_provision::<Postgres>(PLAN_SMALL_ID, parameters).unwrap_err(),
            Refusal::InvalidParameters(
                "parameter 'max_connections': integer expected, got 1.5".into()
            )
        );
    }

    #[test]
    fn an_unknown_parameter_is_refused_listing_the_known_ones() {
        let parameters = json!({"fsync": "off"});
        assert_eq!(
            validate_provision::<Postgres>(PLAN_SMALL_ID, parameters).unwrap_err(),
            Refusal::InvalidParameters(
                "unknown parameter 'fsync' (allowed parameters: max_connections, statement_timeout_ms, work_mem_mb)".into()
            )
        );
    }

    #[test]
    fn max_connections_outside_its_range_is_refused() {
        let parameters = json!({"max_connections": 5000});
        let err = validate_provision::<Postgres>(PLAN_MEDIUM_ID, parameters).unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter 'max_connections': must be at most 1000, got 5000"
        );
    }

    #[test]
    fn small_may_grow_to_medium_and_medium_may_not_shrink_to_small() {
        // `offering_tests!` checks that these lists are what validation enforces.
        assert_eq!(PLANS[0].may_change_to, ["medium"]);
        assert!(PLANS[1].may_change_to.is_empty());
    }

    #[test]
    fn an_update_on_the_same_plan_checks_only_the_parameters_sent() {
        let update =
            |parameters| validate_update::<Postgres>(PLAN_MEDIUM_ID, PLAN_MEDIUM_ID, parameters);
        update(json!({"work_mem_mb": 64})).unwrap();
        assert_eq!(
            update(json!({"work_mem_mb": 0})).unwrap_err().to_string(),
            "parameter 'work_mem_mb': must be at least 1, got 0"
        );
    }
}
