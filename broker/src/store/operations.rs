//! Queries of the operation journal: inserting, claiming under a lease, renewing, and the
//! lease-checked step writes (a worker that lost its lease writes nothing).

use super::columns::OperationStateColumn;
use super::models::{BindingChanges, InstanceChanges, OperationChanges, OperationRow};
use super::outbox::record_event;
use super::schema::{operations, service_bindings, service_instances};
use super::{is_unique_violation, now_ms, DbConnection, Store, StoreError};
use crate::domain::binding::BindingState;
use crate::webhooks::event::Phase;
use common::osb::OperationState;
use diesel::prelude::*;

/// The state column of an operation in progress.
pub(crate) const IN_PROGRESS: OperationStateColumn =
    OperationStateColumn(OperationState::InProgress);
/// The state column of a failed operation.
pub(crate) const FAILED: OperationStateColumn = OperationStateColumn(OperationState::Failed);

/// A change to an instance or binding written in the same transaction as a step result.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Update an instance.
    Instance {
        /// Instance id.
        id: String,
        /// What changes.
        changes: InstanceChanges,
    },
    /// Update a binding.
    Binding {
        /// Binding id.
        id: String,
        /// What changes.
        changes: BindingChanges,
    },
    /// Mark every binding of an instance deleted (the instance is gone).
    DeleteBindingsOf {
        /// Instance id.
        instance_id: String,
    },
}

/// Inserts `op`, ordering it after every earlier operation of its instance even within one
/// millisecond (last_operation answers with the latest). A second operation in progress on
/// the same instance or binding violates a unique index: that is reported as `RolledBack`.
/// Its `started` webhook event is recorded in the same transaction.
pub(super) fn insert_operation(
    conn: &mut DbConnection,
    mut op: OperationRow,
) -> Result<(), StoreError> {
    let latest: Option<i64> = operations::table
        .filter(operations::instance_id.eq(&op.instance_id))
        .select(diesel::dsl::max(operations::created_at_ms))
        .first(conn)?;
    if let Some(latest) = latest {
        op.created_at_ms = op.created_at_ms.max(latest + 1);
    }
    let id = op.id.clone();
    match diesel::insert_into(operations::table)
        .values(op)
        .execute(conn)
    {
        Ok(_) => record_event(conn, &id, Phase::Started),
        Err(e) if is_unique_violation(&e) => Err(StoreError::RolledBack(
            "another operation is in progress; retry after it ends".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Marks the operation `id` failed with `description` if it is still in progress. Its lease is
/// left alone, so whoever starts next can wait until the running worker has noticed. Its
/// `failed` webhook event is recorded in the same transaction.
pub(super) fn cancel_operation(
    conn: &mut DbConnection,
    id: &str,
    description: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let n = diesel::update(
        operations::table
            .filter(operations::id.eq(id))
            .filter(operations::state.eq(IN_PROGRESS)),
    )
    .set((
        operations::state.eq(FAILED),
        operations::description.eq(description),
        operations::finished_at_ms.eq(Some(now)),
        operations::updated_at_ms.eq(now),
    ))
    .execute(conn)?;
    if n == 1 {
        record_event(conn, id, Phase::Ended)?;
    }
    Ok(n)
}

fn apply_effect(conn: &mut DbConnection, effect: Effect, now: i64) -> Result<(), StoreError> {
    match effect {
        Effect::Instance { id, mut changes } => {
            changes.updated_at_ms = now;
            diesel::update(service_instances::table.find(id))
                .set(&changes)
                .execute(conn)?;
        }
        Effect::Binding { id, mut changes } => {
            changes.updated_at_ms = now;
            diesel::update(service_bindings::table.find(id))
                .set(&changes)
                .execute(conn)?;
        }
        Effect::DeleteBindingsOf { instance_id } => {
            diesel::update(
                service_bindings::table.filter(service_bindings::instance_id.eq(instance_id)),
            )
            .set((
                service_bindings::state.eq(BindingState::Deleted),
                service_bindings::credentials_enc.eq(None::<String>),
                service_bindings::updated_at_ms.eq(now),
            ))
            .execute(conn)?;
        }
    }
    Ok(())
}

impl Store {
    /// The operation `id`.
    pub async fn operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            Ok(operations::table
                .find(id)
                .select(OperationRow::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// The operation last_operation reports: the one named by `hint` when it belongs to the
    /// instance (and binding), else the latest one of the instance (or of the binding).
    pub async fn latest_operation(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        hint: Option<&str>,
    ) -> Result<Option<OperationRow>, StoreError> {
        let instance_id = instance_id.to_string();
        let binding_id = binding_id.map(str::to_string);
        let hint = hint.map(str::to_string);
        self.run(move |conn| {
            let mut query = operations::table
                .filter(operations::instance_id.eq(&instance_id))
                .select(OperationRow::as_select())
                .into_boxed();
            query = match &binding_id {
                Some(b) => query.filter(operations::binding_id.eq(b.clone())),
                None => query.filter(operations::binding_id.is_null()),
            };
            if let Some(hint) = &hint {
                let hinted = operations::table
                    .filter(operations::instance_id.eq(&instance_id))
                    .filter(operations::id.eq(hint))
                    .select(OperationRow::as_select())
                    .first(conn)
                    .optional()?;
                if let Some(op) = hinted.filter(|op| op.binding_id == binding_id) {
                    return Ok(Some(op));
                }
            }
            Ok(query
                .order(operations::created_at_ms.desc())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// Ids of operations in progress whose lease is free or expired, oldest first.
    pub async fn claimable_operations(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.run(move |conn| {
            Ok(operations::table
                .filter(operations::state.eq(IN_PROGRESS))
                .filter(
                    operations::lease_owner
                        .is_null()
                        .or(operations::lease_expires_ms.lt(now)),
                )
                .order(operations::created_at_ms.asc())
                .limit(limit)
                .select(operations::id)
                .load(conn)?)
        })
        .await
    }

    /// Claims `id` for `owner` until `until` if it is in progress and its lease is free or
    /// expired: one conditional UPDATE, so of several claimants exactly one wins.
    pub async fn claim(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.run(move |conn| {
            let n = diesel::update(
                operations::table
                    .filter(operations::id.eq(&id))
                    .filter(operations::state.eq(IN_PROGRESS))
                    .filter(
                        operations::lease_owner
                            .is_null()
                            .or(operations::lease_expires_ms.lt(now)),
                    ),
            )
            .set((
                operations::lease_owner.eq(Some(&owner)),
                operations::lease_expires_ms.eq(Some(until)),
                operations::attempts.eq(operations::attempts + 1),
                operations::updated_at_ms.eq(now),
            ))
            .execute(conn)?;
            Ok(n == 1)
        })
        .await
    }

    /// Extends `owner`'s lease on `id`; false when the lease was lost or the operation ended
    /// (for example cancelled by a deprovision).
    pub async fn renew_lease(&self, id: &str, owner: &str, until: i64) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.run(move |conn| {
            let n = diesel::update(
                operations::table
                    .filter(operations::id.eq(&id))
                    .filter(operations::lease_owner.eq(&owner))
                    .filter(operations::state.eq(IN_PROGRESS)),
            )
            .set(operations::lease_expires_ms.eq(Some(until)))
            .execute(conn)?;
            Ok(n == 1)
        })
        .await
    }

    /// Gives up `owner`'s lease on `id` (whatever the operation's state).
    pub async fn release_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.run(move |conn| {
            diesel::update(
                operations::table
                    .filter(operations::id.eq(&id))
                    .filter(operations::lease_owner.eq(&owner)),
            )
            .set((
                operations::lease_owner.eq(None::<String>),
                operations::lease_expires_ms.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Writes a step result: `changes` to the operation and `effects` to its instance or
    /// binding, in one transaction, only while `owner` holds the lease and the operation is in
    /// progress. False (nothing written) when the lease was lost or the operation cancelled.
    /// A result that ends the operation records its webhook event in the same transaction.
    pub async fn advance(
        &self,
        id: &str,
        owner: &str,
        mut changes: OperationChanges,
        effects: Vec<Effect>,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.write(move |conn| {
            let now = now_ms();
            changes.updated_at_ms = now;
            let n = diesel::update(
                operations::table
                    .filter(operations::id.eq(&id))
                    .filter(operations::lease_owner.eq(&owner))
                    .filter(operations::state.eq(IN_PROGRESS)),
            )
            .set(&changes)
            .execute(conn)?;
            if n != 1 {
                return Ok(false);
            }
            for effect in effects {
                apply_effect(conn, effect, now)?;
            }
            if changes.state.is_some_and(|s| s != IN_PROGRESS) {
                record_event(conn, &id, Phase::Ended)?;
            }
            Ok(true)
        })
        .await
    }

    /// Whether an operation of the instance (or of the binding) other than `except` is still
    /// held under a live lease: a cancelled worker may still be finishing an external call.
    pub async fn lease_held_elsewhere(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        except: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let instance_id = instance_id.to_string();
        let binding_id = binding_id.map(str::to_string);
        let except = except.to_string();
        self.run(move |conn| {
            let mut query = operations::table
                .filter(operations::instance_id.eq(&instance_id))
                .filter(operations::id.ne(&except))
                .filter(operations::lease_owner.is_not_null())
                .filter(operations::lease_expires_ms.ge(now))
                .select(operations::id)
                .into_boxed();
            if let Some(b) = &binding_id {
                query = query.filter(operations::binding_id.eq(b.clone()));
            }
            Ok(query.first::<String>(conn).optional()?.is_some())
        })
        .await
    }
}
