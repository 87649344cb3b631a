//! Queries of service bindings: reading one with its running operation, and starting bind and
//! unbind operations together with their binding change.

use super::instances::{instance_state, running_instance_operation};
use super::models::{BindingRow, OperationRow};
use super::operations::{cancel_operation, insert_operation, IN_PROGRESS};
use super::schema::{operations, service_bindings};
use super::{busy_on_rollback, now_ms, Outcome, Store, StoreError};
use crate::domain::binding::BindingState;
use crate::domain::instance::InstanceState;
use diesel::prelude::*;

impl Store {
    /// The binding `id` and its operation in progress, if any.
    pub async fn binding(
        &self,
        id: &str,
    ) -> Result<Option<(BindingRow, Option<OperationRow>)>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            let Some(row) = service_bindings::table
                .find(&id)
                .select(BindingRow::as_select())
                .first(conn)
                .optional()?
            else {
                return Ok(None);
            };
            let running = operations::table
                .filter(operations::binding_id.eq(&id))
                .filter(operations::state.eq(IN_PROGRESS))
                .select(OperationRow::as_select())
                .first(conn)
                .optional()?;
            Ok(Some((row, running)))
        })
        .await
    }

    /// Up to `limit` ready bindings created at or before `cutoff_ms`, as (binding, instance).
    pub async fn expired_bindings(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.run(move |conn| {
            Ok(service_bindings::table
                .filter(service_bindings::state.eq(BindingState::Ready))
                .filter(service_bindings::created_at_ms.le(cutoff_ms))
                .select((service_bindings::id, service_bindings::instance_id))
                .limit(limit)
                .load(conn)?)
        })
        .await
    }

    /// Inserts a binding (or replaces a deleted or failed one with the same id) with its bind
    /// operation, if the instance is still ready and idle. `Exists` when a live binding with
    /// this id appeared meanwhile.
    pub async fn create_binding(
        &self,
        row: BindingRow,
        op: OperationRow,
    ) -> Result<Outcome, StoreError> {
        busy_on_rollback(
            self.write(move |conn| {
                if instance_state(conn, &row.instance_id)? != Some(InstanceState::Ready)
                    || running_instance_operation(conn, &row.instance_id)?.is_some()
                {
                    return Ok(Outcome::Busy(
                        "an operation is in progress on the service instance; retry after it ends"
                            .into(),
                    ));
                }
                let existing: Option<BindingState> = service_bindings::table
                    .find(&row.id)
                    .select(service_bindings::state)
                    .first(conn)
                    .optional()?;
                match existing {
                    Some(BindingState::Deleted | BindingState::Failed) => {
                        diesel::update(service_bindings::table.find(&row.id))
                            .set(&row)
                            .execute(conn)?;
                    }
                    Some(_) => return Ok(Outcome::Exists),
                    None => {
                        diesel::insert_into(service_bindings::table)
                            .values(&row)
                            .execute(conn)?;
                    }
                }
                insert_operation(conn, op)?;
                Ok(Outcome::Done)
            })
            .await,
        )
    }

    /// Starts an unbind: halts the bind operation `cancel` (marked failed, "cancelled by
    /// unbind"), marks the binding deleting and inserts `op`, in one transaction.
    pub async fn begin_unbind(
        &self,
        op: OperationRow,
        cancel: Option<String>,
    ) -> Result<Outcome, StoreError> {
        busy_on_rollback(
            self.write(move |conn| {
                let now = now_ms();
                if let Some(cancel) = &cancel {
                    cancel_operation(conn, cancel, "cancelled by unbind", now)?;
                }
                let binding_id = op.binding_id.clone().unwrap_or_default();
                let n = diesel::update(
                    service_bindings::table
                        .find(&binding_id)
                        .filter(service_bindings::state.ne(BindingState::Deleted)),
                )
                .set((
                    service_bindings::state.eq(BindingState::Deleting),
                    service_bindings::updated_at_ms.eq(now),
                ))
                .execute(conn)?;
                if n != 1 {
                    return Err(StoreError::RolledBack(
                        "the service binding changed meanwhile; retry".into(),
                    ));
                }
                insert_operation(conn, op)?;
                Ok(Outcome::Done)
            })
            .await,
        )
    }

    /// Removes a binding whose synchronous creation failed (only while it is failed), so the
    /// platform sees no trace of it.
    pub async fn remove_failed_binding(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            diesel::delete(
                service_bindings::table
                    .find(&id)
                    .filter(service_bindings::state.eq(BindingState::Failed)),
            )
            .execute(conn)?;
            Ok(())
        })
        .await
    }
}
