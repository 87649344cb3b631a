//! The quotas a provision or a plan change must stay within, from the settings in force now
//! (re-read at each catalog refresh) and the catalog's names of the offering and plan. The
//! store counts and refuses inside the transaction that writes.

use super::Broker;
use crate::domain::identity::Placement;
use crate::domain::quota::{Limit, Offering};
use common::osb::{Plan, Service};

fn offering<'a>(service: &'a Service, plan: &'a Plan) -> Offering<'a> {
    Offering {
        service_id: &service.id,
        service_name: &service.name,
        plan_id: &plan.id,
        plan_name: &plan.name,
    }
}

impl Broker {
    /// The limits a new instance of `plan` placed at `placement` must stay within, in the
    /// order global, service, plan, organization, space.
    pub(super) fn provision_limits(
        &self,
        service: &Service,
        plan: &Plan,
        placement: &Placement,
    ) -> Vec<Limit> {
        self.catalog
            .quotas()
            .limits(&offering(service, plan), placement)
    }

    /// The limits an update from plan `current_plan_id` to `plan` must stay within: the
    /// target plan's, when the plan changes (offering, organization and space stay, so their
    /// counts do not grow).
    pub(super) fn plan_change_limits(
        &self,
        service: &Service,
        plan: &Plan,
        current_plan_id: &str,
    ) -> Vec<Limit> {
        if plan.id == current_plan_id {
            return Vec::new();
        }
        self.catalog
            .quotas()
            .plan_limit(&offering(service, plan))
            .into_iter()
            .collect()
    }
}
