//! Counting instances against quotas inside a write transaction: the count and the insert it
//! guards run under the same `write_lock` row lock, so concurrent provisions (also of other
//! brokers on the same database) see each other's instances and never exceed a limit.

use super::operations::IN_PROGRESS;
use super::schema::{operations, service_instances};
use super::{DbConnection, StoreError};
use crate::domain::instance::InstanceState;
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::domain::quota::{first_exceeded, Limit, Scope};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

diesel::define_sql_function! {
    /// SQL `lower`: organization and space GUIDs compare without regard to case, as the
    /// settings' keys do.
    fn lower(value: Nullable<Text>) -> Nullable<Text>;
}

/// The instances that exist in `scope`: every state but `deleted` (a provision in progress,
/// a failed instance and one being deprovisioned all count). A plan's count also holds the
/// instances whose change into it runs (they count in both plans until it ends).
fn count_live(conn: &mut DbConnection, scope: &Scope) -> Result<u64, StoreError> {
    let mut query = service_instances::table
        .filter(service_instances::state.ne(InstanceState::Deleted))
        .into_boxed();
    let mut changing_in = 0;
    query = match scope {
        Scope::All => query,
        Scope::Service { service_id } => {
            query.filter(service_instances::service_id.eq(service_id.clone()))
        }
        Scope::Plan {
            service_id,
            plan_id,
        } => {
            changing_in = changing_into(conn, service_id, plan_id)?;
            query
                .filter(service_instances::service_id.eq(service_id.clone()))
                .filter(service_instances::plan_id.eq(plan_id.clone()))
        }
        Scope::Organization { organization } => query.filter(
            lower(service_instances::organization_guid).eq(lower(Some(organization.clone()))),
        ),
        Scope::Space {
            organization,
            space,
        } => {
            let query =
                query.filter(lower(service_instances::space_guid).eq(lower(Some(space.clone()))));
            match organization {
                Some(o) => query
                    .filter(lower(service_instances::organization_guid).eq(lower(Some(o.clone())))),
                None => query,
            }
        }
    };
    let count: i64 = query.count().get_result(conn)?;
    Ok(u64::try_from(count).unwrap_or_default() + changing_in)
}

/// The instances of `service_id` on another plan whose update into `plan_id` is in progress:
/// the plan column changes only when the update succeeds, so without them two plan changes
/// (or a plan change and a provision) could both fit into the last place of a plan.
fn changing_into(
    conn: &mut DbConnection,
    service_id: &str,
    plan_id: &str,
) -> Result<u64, StoreError> {
    let payloads: Vec<String> = operations::table
        .inner_join(service_instances::table)
        .filter(operations::kind.eq(OperationKind::Update.as_str()))
        .filter(operations::state.eq(IN_PROGRESS))
        .filter(service_instances::state.ne(InstanceState::Deleted))
        .filter(service_instances::service_id.eq(service_id))
        .filter(service_instances::plan_id.ne(plan_id))
        .select(operations::payload)
        .load(conn)?;
    let changing = payloads
        .iter()
        .filter(|p| OperationPayload::decode(p).plan_id.as_deref() == Some(plan_id))
        .count();
    Ok(u64::try_from(changing).unwrap_or_default())
}

/// Fails with [`StoreError::QuotaExceeded`] when the first of `limits` (in order) is already
/// reached, so the caller's transaction rolls back and nothing is written. Call it inside a
/// write transaction, before the insert.
pub(super) fn check_limits(conn: &mut DbConnection, limits: &[Limit]) -> Result<(), StoreError> {
    match first_exceeded(limits, |scope| count_live(conn, scope))? {
        Some(exceeded) => Err(StoreError::QuotaExceeded(exceeded)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;

/// The data migration that fills `organization_guid` / `space_guid` from the context.
#[cfg(test)]
mod placement_migration;
