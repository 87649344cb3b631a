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

impl Store {
    /// Replaces the registered webhook endpoints with `endpoints` (name, event patterns): from
    /// now on every state change records its event for those that want it.
    pub async fn register_webhook_endpoints(
        &self,
        endpoints: Vec<(String, Vec<String>)>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            diesel::delete(webhook_endpoints::table).execute(conn)?;
            let now = now_ms();
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
            Ok(())
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

    /// Up to `limit` pending rows of `endpoint`, oldest first.
    pub async fn pending_deliveries(
        &self,
        endpoint: &str,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let endpoint = endpoint.to_string();
        self.run(move |conn| {
            Ok(outbox::table
                .filter(outbox::endpoint.eq(&endpoint))
                .filter(outbox::state.eq(DeliveryState::Pending.as_str()))
                .order(outbox::seq.asc())
                .limit(limit)
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

    /// Makes every dead letter pending again (attempts reset, due now); how many.
    pub async fn redeliver_dead_letters(&self) -> Result<usize, StoreError> {
        self.run(|conn| {
            Ok(
                diesel::update(
                    outbox::table.filter(outbox::state.eq(DeliveryState::Dead.as_str())),
                )
                .set((
                    outbox::state.eq(DeliveryState::Pending.as_str()),
                    outbox::attempts.eq(0),
                    outbox::next_attempt_ms.eq(now_ms()),
                ))
                .execute(conn)?,
            )
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
mod tests {
    use super::super::models::OperationChanges;
    use super::super::tests::{instance, operation};
    use super::*;
    use crate::store::Outcome;
    use common::osb::OperationState;

    async fn outbox_rows(store: &Store) -> Vec<OutboxRow> {
        store
            .run(|conn| {
                Ok(outbox::table
                    .order(outbox::seq.asc())
                    .select(OutboxRow::as_select())
                    .load(conn)?)
            })
            .await
            .unwrap()
    }

    fn ended(state: OperationState) -> OperationChanges {
        OperationChanges {
            state: Some(state.into()),
            lease_owner: Some(None),
            ..Default::default()
        }
    }

    /// Events are written with the state change that causes them, for the endpoints that
    /// want them, and not at all when the change is not written.
    async fn events_follow_the_state_changes(store: Store) {
        store
            .register_webhook_endpoints(vec![
                ("all".into(), vec!["*".into()]),
                ("failures".into(), vec!["*.failed".into()]),
            ])
            .await
            .unwrap();
        let mut row = instance("i1");
        row.parameters = r#"{"secret":"p4ss"}"#.into();
        let mut op = operation("op1", "i1", "provision", Some("a"));
        op.payload = r#"{"tracing_id":"t-1"}"#.into();
        assert_eq!(store.create_instance(row, op).await.unwrap(), Outcome::Done);
        // A second provision of the same instance is refused: no event.
        let again = operation("op2", "i1", "provision", Some("a"));
        assert_eq!(
            store.create_instance(instance("i1"), again).await.unwrap(),
            Outcome::Exists
        );
        // A worker that lost its lease writes nothing, so no event either.
        assert!(!store
            .advance("op1", "other", ended(OperationState::Succeeded), vec![])
            .await
            .unwrap());
        assert!(store
            .advance("op1", "a", ended(OperationState::Failed), vec![])
            .await
            .unwrap());
        let dep = operation("op3", "i1", "deprovision", Some("a"));
        assert_eq!(
            store.begin_deprovision(dep, None).await.unwrap(),
            Outcome::Done
        );
        let rows = outbox_rows(&store).await;
        let seen: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.endpoint.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("all", "provision.started"),
                ("all", "provision.failed"),
                ("failures", "provision.failed"),
                ("all", "deprovision.started"),
            ]
        );
        assert_eq!(
            rows[1].event_id, rows[2].event_id,
            "one event, two endpoints"
        );
        assert!(rows
            .iter()
            .all(|r| r.state == "pending" && !r.body.contains("p4ss")));
        let body: serde_json::Value = serde_json::from_str(&rows[1].body).unwrap();
        assert_eq!(body["tracing_id"], "t-1");
        assert_eq!(body["state"], "failed");
        // Unregistering stops the recording.
        store.register_webhook_endpoints(vec![]).await.unwrap();
        assert!(store
            .advance("op3", "a", ended(OperationState::Succeeded), vec![])
            .await
            .unwrap());
        assert_eq!(outbox_rows(&store).await.len(), 4);
    }

    /// One dispatcher lease: one claimant wins, the holder renews, another takes an expired
    /// one, and a released lease is free at once.
    async fn one_dispatcher_holds_the_lease(a: Store, b: Store) {
        let now = now_ms();
        let (x, y) = tokio::join!(
            a.claim_dispatcher("a", now, now + 1_000),
            b.claim_dispatcher("b", now, now + 1_000)
        );
        let a_won = x.unwrap();
        assert!(a_won ^ y.unwrap(), "exactly one claimant wins");
        let (holder, other, other_name) = if a_won { (&a, &b, "b") } else { (&b, &a, "a") };
        let holder_name = if a_won { "a" } else { "b" };
        assert!(holder
            .claim_dispatcher(holder_name, now + 500, now + 1_500)
            .await
            .unwrap());
        assert!(!other
            .claim_dispatcher(other_name, now + 1_000, now + 2_000)
            .await
            .unwrap());
        assert!(other
            .claim_dispatcher(other_name, now + 1_600, now + 2_600)
            .await
            .unwrap());
        other.release_dispatcher(other_name).await.unwrap();
        assert!(holder
            .claim_dispatcher(holder_name, now + 1_700, now + 2_700)
            .await
            .unwrap());
    }

    /// Delivered, retried and dead rows, the counts, and redelivery of dead letters.
    async fn attempts_are_recorded_and_dead_letters_redelivered(store: Store) {
        store
            .register_webhook_endpoints(vec![("all".into(), vec!["*".into()])])
            .await
            .unwrap();
        for n in 1..=3 {
            let id = format!("i{n}");
            let op = operation(&format!("op{n}"), &id, "provision", Some("a"));
            store.create_instance(instance(&id), op).await.unwrap();
        }
        let pending = store.pending_deliveries("all", 10).await.unwrap();
        assert_eq!(pending.len(), 3);
        store
            .record_attempt(pending[0].seq, Attempted::Delivered)
            .await
            .unwrap();
        let retry = Attempted::Retry {
            next_attempt_ms: 42,
            error: "503".into(),
        };
        store.record_attempt(pending[1].seq, retry).await.unwrap();
        let dead = Attempted::Dead {
            error: "answered 500".into(),
        };
        store.record_attempt(pending[2].seq, dead).await.unwrap();
        // A late write on a row that is no longer pending changes nothing.
        store
            .record_attempt(pending[0].seq, Attempted::Dead { error: "x".into() })
            .await
            .unwrap();
        let counts = store.outbox_counts().await.unwrap();
        let expected = [
            ("all", "dead", 1),
            ("all", "delivered", 1),
            ("all", "pending", 1),
        ];
        let counts: Vec<(&str, &str, i64)> = counts
            .iter()
            .map(|(e, s, n)| (e.as_str(), s.as_str(), *n))
            .collect();
        assert_eq!(counts, expected);
        let still = store.pending_deliveries("all", 10).await.unwrap();
        assert_eq!(
            (still.len(), still[0].attempts, still[0].next_attempt_ms),
            (1, 1, 42)
        );
        let letters = store.dead_letters(10).await.unwrap();
        assert_eq!(letters[0].last_error.as_deref(), Some("answered 500"));
        assert_eq!(store.redeliver_dead_letters().await.unwrap(), 1);
        assert_eq!(store.pending_deliveries("all", 10).await.unwrap().len(), 2);
        assert_eq!(store.prune_delivered(now_ms() + 1).await.unwrap(), 1);
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        let path = dir.path().join(format!("{}.sqlite", uuid::Uuid::new_v4()));
        Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_outbox() {
        let dir = tempfile::tempdir().unwrap();
        events_follow_the_state_changes(sqlite_store(&dir).await).await;
        attempts_are_recorded_and_dead_letters_redelivered(sqlite_store(&dir).await).await;
        let path = dir.path().join("shared.sqlite");
        let url = format!("sqlite://{}", path.display());
        let (a, b) = (
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        );
        one_dispatcher_holds_the_lease(a, b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_outbox() {
        let pg = testkit::TestPostgres::start().await.unwrap();
        let store = Store::connect(&pg.create_database().await.unwrap())
            .await
            .unwrap();
        events_follow_the_state_changes(store).await;
        let store = Store::connect(&pg.create_database().await.unwrap())
            .await
            .unwrap();
        attempts_are_recorded_and_dead_letters_redelivered(store).await;
        let url = pg.create_database().await.unwrap();
        let (a, b) = (
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        );
        one_dispatcher_holds_the_lease(a, b).await;
    }
}
