//! The webhook outbox: events recorded inside the transaction that changes an operation's
//! state (one row per endpoint that wants the event), the dispatcher's lease, and the
//! delivery bookkeeping (delivered, retry later, dead letter).

use super::models::{BindingRow, InstanceRow, OperationRow};
use super::schema::{
    operations, outbox, outbox_lease, service_bindings, service_instances, webhook_endpoints,
};
use super::{now_ms, DbConnection, Store, StoreError};
use crate::webhooks::event::{self, kind_matches, EventSource, Phase};
use diesel::prelude::*;
use std::collections::HashSet;

/// The name of the dispatcher's lease row.
const DISPATCHER: &str = "dispatcher";

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet (maybe waiting for its next attempt).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed: a dead letter, kept until an operator redelivers it.
    Dead,
}

impl DeliveryState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// An `outbox` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    /// Insertion order (commit order: every recording transaction holds the write lock).
    pub seq: i64,
    /// Event id (the same for every endpoint and attempt).
    pub event_id: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Instance the event is about (delivery is in order per instance).
    pub instance_id: String,
    /// The operation that caused it.
    pub operation_id: String,
    /// Event kind.
    pub kind: String,
    /// JSON body.
    pub body: String,
    /// [`DeliveryState`] spelling.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Unix ms of the next attempt.
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms it was delivered.
    pub delivered_at_ms: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    event_id: &'a str,
    endpoint: &'a str,
    instance_id: &'a str,
    operation_id: &'a str,
    kind: &'a str,
    body: &'a str,
    state: &'a str,
    attempts: i64,
    next_attempt_ms: i64,
    created_at_ms: i64,
}

/// What one delivery attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Delivered.
    Delivered,
    /// Failed; try again at `next_attempt_ms`.
    Retry {
        /// Unix ms of the next attempt.
        next_attempt_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time: a dead letter.
    Dead {
        /// Why it failed.
        error: String,
    },
}

/// Records the event of operation `op_id` in `phase` for every endpoint that wants it, in the
/// caller's transaction (nothing when no endpoint is configured).
pub(super) fn record_event(
    conn: &mut DbConnection,
    op_id: &str,
    phase: Phase,
) -> Result<(), StoreError> {
    let endpoints: Vec<(String, String)> = webhook_endpoints::table
        .select((webhook_endpoints::name, webhook_endpoints::events))
        .load(conn)?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let op: OperationRow = operations::table
        .find(op_id)
        .select(OperationRow::as_select())
        .first(conn)?;
    let instance: Option<InstanceRow> = service_instances::table
        .find(&op.instance_id)
        .select(InstanceRow::as_select())
        .first(conn)
        .optional()?;
    let binding: Option<BindingRow> = match &op.binding_id {
        Some(id) => service_bindings::table
            .find(id)
            .select(BindingRow::as_select())
            .first(conn)
            .optional()?,
        None => None,
    };
    let now = now_ms();
    let src = EventSource {
        op: &op,
        instance: instance.as_ref(),
        binding: binding.as_ref(),
    };
    let event = event::build(src, phase, uuid::Uuid::new_v4().to_string(), now);
    for (endpoint, events) in &endpoints {
        let patterns: Vec<String> = serde_json::from_str(events).unwrap_or_default();
        if !patterns.iter().any(|p| kind_matches(p, &event.kind)) {
            continue;
        }
        diesel::insert_into(outbox::table)
            .values(NewOutboxRow {
                event_id: &event.id,
                endpoint,
                instance_id: &op.instance_id,
                operation_id: &op.id,
                kind: &event.kind,
                body: &event.body,
                state: DeliveryState::Pending.as_str(),
                attempts: 0,
                next_attempt_ms: now,
                created_at_ms: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Of `pending` rows (`seq`, instance, next attempt; in `seq` order), the `seq` of up to
/// `limit` to attempt at `now`: the oldest pending row of each instance, when it is due (a row
/// waiting for its retry holds its instance's newer rows back).
fn due_heads(pending: &[(i64, String, i64)], now: i64, limit: usize) -> Vec<i64> {
    let mut seen = HashSet::new();
    pending
        .iter()
        .filter(|(_, instance, _)| seen.insert(instance.as_str()))
        .filter(|(_, _, next_attempt_ms)| *next_attempt_ms <= now)
        .map(|(seq, _, _)| *seq)
        .take(limit)
        .collect()
}

/// The last error of a pending event whose endpoint was removed from the settings.
const REMOVED_ENDPOINT: &str = "the endpoint is no longer configured";

impl Store {
    /// Replaces the registered webhook endpoints with `endpoints` (name, event patterns): from
    /// now on every state change records its event for those that want it. The pending
    /// events of an endpoint no longer in the list become dead letters (nothing would ever
    /// send them); how many.
    pub async fn register_webhook_endpoints(
        &self,
        endpoints: Vec<(String, Vec<String>)>,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            diesel::delete(webhook_endpoints::table).execute(conn)?;
            let now = now_ms();
            let names: Vec<String> = endpoints.iter().map(|(name, _)| name.clone()).collect();
            for (name, events) in endpoints {
                let events = serde_json::to_string(&events).unwrap_or_else(|_| "[]".into());
                diesel::insert_into(webhook_endpoints::table)
                    .values((
                        webhook_endpoints::name.eq(name),
                        webhook_endpoints::events.eq(events),
                        webhook_endpoints::updated_at_ms.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(diesel::update(
                outbox::table
                    .filter(outbox::state.eq(DeliveryState::Pending.as_str()))
                    .filter(outbox::endpoint.ne_all(names)),
            )
            .set((
                outbox::state.eq(DeliveryState::Dead.as_str()),
                outbox::last_error.eq(Some(REMOVED_ENDPOINT)),
            ))
            .execute(conn)?)
        })
        .await
    }

    /// Claims (or renews) the dispatcher lease for `owner` until `until` when it is free,
    /// expired or `owner`'s already: one conditional UPDATE, so one broker wins.
    pub async fn claim_dispatcher(
        &self,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let owner = owner.to_string();
        self.run(move |conn| {
            let n = diesel::update(
                outbox_lease::table.find(DISPATCHER).filter(
                    outbox_lease::owner
                        .is_null()
                        .or(outbox_lease::owner.eq(&owner))
                        .or(outbox_lease::expires_ms.lt(now)),
                ),
            )
            .set((
                outbox_lease::owner.eq(Some(&owner)),
                outbox_lease::expires_ms.eq(Some(until)),
            ))
            .execute(conn)?;
            Ok(n == 1)
        })
        .await
    }

    /// Gives the dispatcher lease back if `owner` holds it.
    pub async fn release_dispatcher(&self, owner: &str) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.run(move |conn| {
            diesel::update(
                outbox_lease::table
                    .find(DISPATCHER)
                    .filter(outbox_lease::owner.eq(&owner)),
            )
            .set((
                outbox_lease::owner.eq(None::<String>),
                outbox_lease::expires_ms.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` rows of `endpoint` to attempt at `now`, oldest first: the oldest pending
    /// row of each instance, when it is due (see [`due_heads`]). Every pending row is looked
    /// at, so instances whose older events wait for a retry never crowd out the others.
    pub async fn due_deliveries(
        &self,
        endpoint: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let endpoint = endpoint.to_string();
        self.run(move |conn| {
            let pending = outbox::table
                .filter(outbox::endpoint.eq(&endpoint))
                .filter(outbox::state.eq(DeliveryState::Pending.as_str()))
                .order(outbox::seq.asc())
                .select((outbox::seq, outbox::instance_id, outbox::next_attempt_ms))
                .load::<(i64, String, i64)>(conn)?;
            let heads = due_heads(&pending, now, limit);
            Ok(outbox::table
                .filter(outbox::seq.eq_any(heads))
                .filter(outbox::state.eq(DeliveryState::Pending.as_str()))
                .order(outbox::seq.asc())
                .select(OutboxRow::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Writes what the attempt on row `seq` ended with (only while the row is pending).
    pub async fn record_attempt(&self, seq: i64, attempted: Attempted) -> Result<(), StoreError> {
        self.run(move |conn| {
            let row = outbox::table
                .find(seq)
                .filter(outbox::state.eq(DeliveryState::Pending.as_str()));
            let attempts = outbox::attempts.eq(outbox::attempts + 1);
            match attempted {
                Attempted::Delivered => diesel::update(row)
                    .set((
                        attempts,
                        outbox::state.eq(DeliveryState::Delivered.as_str()),
                        outbox::delivered_at_ms.eq(Some(now_ms())),
                    ))
                    .execute(conn)?,
                Attempted::Retry {
                    next_attempt_ms,
                    error,
                } => diesel::update(row)
                    .set((
                        attempts,
                        outbox::next_attempt_ms.eq(next_attempt_ms),
                        outbox::last_error.eq(Some(error)),
                    ))
                    .execute(conn)?,
                Attempted::Dead { error } => diesel::update(row)
                    .set((
                        attempts,
                        outbox::state.eq(DeliveryState::Dead.as_str()),
                        outbox::last_error.eq(Some(error)),
                    ))
                    .execute(conn)?,
            };
            Ok(())
        })
        .await
    }

    /// Outbox rows per (endpoint, state).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.run(|conn| {
            Ok(outbox::table
                .group_by((outbox::endpoint, outbox::state))
                .select((outbox::endpoint, outbox::state, diesel::dsl::count_star()))
                .order((outbox::endpoint.asc(), outbox::state.asc()))
                .load(conn)?)
        })
        .await
    }

    /// The dead letters, oldest first (up to `limit`).
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.run(move |conn| {
            Ok(outbox::table
                .filter(outbox::state.eq(DeliveryState::Dead.as_str()))
                .order(outbox::seq.asc())
                .limit(limit)
                .select(OutboxRow::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Makes every dead letter of a registered endpoint pending again (attempts reset, due
    /// now); how many. Those of an endpoint no longer configured stay dead.
    pub async fn redeliver_dead_letters(&self) -> Result<usize, StoreError> {
        self.write(|conn| {
            let registered: Vec<String> = webhook_endpoints::table
                .select(webhook_endpoints::name)
                .load(conn)?;
            Ok(diesel::update(
                outbox::table
                    .filter(outbox::state.eq(DeliveryState::Dead.as_str()))
                    .filter(outbox::endpoint.eq_any(registered)),
            )
            .set((
                outbox::state.eq(DeliveryState::Pending.as_str()),
                outbox::attempts.eq(0),
                outbox::next_attempt_ms.eq(now_ms()),
            ))
            .execute(conn)?)
        })
        .await
    }

    /// Deletes rows delivered before `before_ms`; how many.
    pub async fn prune_delivered(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.run(move |conn| {
            Ok(diesel::delete(
                outbox::table
                    .filter(outbox::state.eq(DeliveryState::Delivered.as_str()))
                    .filter(outbox::delivered_at_ms.lt(before_ms)),
            )
            .execute(conn)?)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
