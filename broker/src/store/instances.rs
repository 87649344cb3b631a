//! Queries of service instances: reading one with its running operation, and starting
//! provision, update and deprovision operations together with their instance change.

use super::models::{InstanceRow, OperationRow};
use super::operations::{cancel_operation, insert_operation, IN_PROGRESS};
use super::quotas::check_limits;
use super::schema::{operations, service_bindings, service_instances};
use super::{busy_on_rollback, now_ms, Outcome, Store, StoreError};
use crate::domain::binding::BindingState;
use crate::domain::instance::InstanceState;
use crate::domain::quota::Limit;
use diesel::prelude::*;

/// The state of instance `id`, if it exists.
pub(super) fn instance_state(
    conn: &mut super::DbConnection,
    id: &str,
) -> Result<Option<InstanceState>, StoreError> {
    Ok(service_instances::table
        .find(id)
        .select(service_instances::state)
        .first(conn)
        .optional()?)
}

/// The instance-level operation in progress on `instance_id`, if any.
pub(super) fn running_instance_operation(
    conn: &mut super::DbConnection,
    instance_id: &str,
) -> Result<Option<OperationRow>, StoreError> {
    Ok(operations::table
        .filter(operations::instance_id.eq(instance_id))
        .filter(operations::binding_id.is_null())
        .filter(operations::state.eq(IN_PROGRESS))
        .select(OperationRow::as_select())
        .first(conn)
        .optional()?)
}

impl Store {
    /// Live (not deleted) instances per `(service id, plan id)`: the plans a catalog refresh
    /// must not drop.
    pub async fn live_instances_per_plan(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.run(|conn| {
            Ok(service_instances::table
                .filter(service_instances::state.ne(InstanceState::Deleted))
                .group_by((service_instances::service_id, service_instances::plan_id))
                .select((
                    service_instances::service_id,
                    service_instances::plan_id,
                    diesel::dsl::count_star(),
                ))
                .load(conn)?)
        })
        .await
    }

    /// The instance `id` and its instance operation in progress, if any.
    pub async fn instance(
        &self,
        id: &str,
    ) -> Result<Option<(InstanceRow, Option<OperationRow>)>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            let Some(row) = service_instances::table
                .find(&id)
                .select(InstanceRow::as_select())
                .first(conn)
                .optional()?
            else {
                return Ok(None);
            };
            let running = running_instance_operation(conn, &id)?;
            Ok(Some((row, running)))
        })
        .await
    }

    /// Inserts a new instance (or replaces a deleted one with the same id) together with its
    /// provision operation. `Exists` when a live instance with this id appeared meanwhile.
    pub async fn create_instance(
        &self,
        row: InstanceRow,
        op: OperationRow,
    ) -> Result<Outcome, StoreError> {
        self.create_instance_within(row, op, Vec::new()).await
    }

    /// [`Store::create_instance`] that first counts the instances of each of `limits` in the
    /// same write transaction: [`StoreError::QuotaExceeded`] names the first one reached, and
    /// nothing is written. A live instance with this id is `Exists` before any count (a
    /// repeated request is never refused by a quota).
    pub async fn create_instance_within(
        &self,
        row: InstanceRow,
        op: OperationRow,
        limits: Vec<Limit>,
    ) -> Result<Outcome, StoreError> {
        busy_on_rollback(
            self.write(move |conn| {
                let state = instance_state(conn, &row.id)?;
                if matches!(state, Some(s) if s != InstanceState::Deleted) {
                    return Ok(Outcome::Exists);
                }
                check_limits(conn, &limits)?;
                if state.is_some() {
                    diesel::update(service_instances::table.find(&row.id))
                        .set(&row)
                        .execute(conn)?;
                    // The old incarnation's bindings stay deleted; its operations stay as
                    // history, ordered before the new provision.
                } else {
                    diesel::insert_into(service_instances::table)
                        .values(&row)
                        .execute(conn)?;
                }
                insert_operation(conn, op)?;
                Ok(Outcome::Done)
            })
            .await,
        )
    }

    /// Starts an update operation if the instance is ready and idle.
    pub async fn begin_update(&self, op: OperationRow) -> Result<Outcome, StoreError> {
        self.begin_update_within(op, Vec::new()).await
    }

    /// [`Store::begin_update`] that first counts the instances of each of `limits` (the target
    /// plan's, for a plan change) in the same write transaction, as
    /// [`Store::create_instance_within`] does.
    pub async fn begin_update_within(
        &self,
        op: OperationRow,
        limits: Vec<Limit>,
    ) -> Result<Outcome, StoreError> {
        busy_on_rollback(
            self.write(move |conn| {
                if instance_state(conn, &op.instance_id)? != Some(InstanceState::Ready) {
                    return Ok(Outcome::Busy(
                        "the service instance changed meanwhile; retry".into(),
                    ));
                }
                check_limits(conn, &limits)?;
                insert_operation(conn, op)?;
                Ok(Outcome::Done)
            })
            .await,
        )
    }

    /// Stores the context of a context-only update.
    pub async fn store_context(&self, id: &str, context: String) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            diesel::update(service_instances::table.find(id))
                .set((
                    service_instances::context.eq(Some(context)),
                    service_instances::updated_at_ms.eq(now_ms()),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Starts a deprovision: halts the provision operation `cancel` (marked failed, "cancelled
    /// by deprovision") and any binding operation of the instance, marks the instance
    /// deprovisioning and inserts `op`, in one transaction.
    pub async fn begin_deprovision(
        &self,
        op: OperationRow,
        cancel: Option<String>,
    ) -> Result<Outcome, StoreError> {
        busy_on_rollback(
            self.write(move |conn| {
                let now = now_ms();
                if let Some(cancel) = &cancel {
                    cancel_operation(conn, cancel, "cancelled by deprovision", now)?;
                }
                let binding_ops: Vec<String> = operations::table
                    .filter(operations::instance_id.eq(&op.instance_id))
                    .filter(operations::binding_id.is_not_null())
                    .filter(operations::state.eq(IN_PROGRESS))
                    .select(operations::id)
                    .load(conn)?;
                for id in binding_ops {
                    cancel_operation(conn, &id, "cancelled by deprovision", now)?;
                }
                diesel::update(
                    service_bindings::table
                        .filter(service_bindings::instance_id.eq(&op.instance_id))
                        .filter(
                            service_bindings::state
                                .eq_any([BindingState::Creating, BindingState::Deleting]),
                        ),
                )
                .set((
                    service_bindings::state.eq(BindingState::Failed),
                    service_bindings::updated_at_ms.eq(now),
                ))
                .execute(conn)?;
                let n = diesel::update(
                    service_instances::table
                        .find(&op.instance_id)
                        .filter(service_instances::state.ne(InstanceState::Deleted)),
                )
                .set((
                    service_instances::state.eq(InstanceState::Deprovisioning),
                    service_instances::updated_at_ms.eq(now),
                ))
                .execute(conn)?;
                if n != 1 {
                    return Err(StoreError::RolledBack(
                        "the service instance changed meanwhile; retry".into(),
                    ));
                }
                insert_operation(conn, op)?;
                Ok(Outcome::Done)
            })
            .await,
        )
    }
}
