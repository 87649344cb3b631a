//! Queries of `operation_flows`: the completion or error flows an operation still owes. A row
//! is written before its operation and is due once that operation ended; it is claimed under a
//! lease (one conditional UPDATE, as the journal claims operations), its progress written
//! after each flow, and deleted when all ran.

use super::operations::IN_PROGRESS;
use super::schema::{operation_flows, operations};
use super::{Store, StoreError};
use diesel::prelude::*;

diesel::allow_tables_to_appear_in_same_query!(operation_flows, operations);

/// A claimed row of `operation_flows`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = operation_flows)]
pub struct ClaimedFlows {
    /// The operation the flows observe.
    pub operation_id: String,
    /// The request view (JSON) the flows are given.
    pub request: String,
    /// How many of the operation's flows already ran.
    pub next_flow: i64,
}

impl Store {
    /// Records that `operation_id` owes its completion or error flows, with the request view
    /// they see; written before the operation is.
    pub async fn record_flows(
        &self,
        operation_id: &str,
        request: String,
        now: i64,
    ) -> Result<(), StoreError> {
        let operation_id = operation_id.to_string();
        self.run(move |conn| {
            diesel::insert_into(operation_flows::table)
                .values((
                    operation_flows::operation_id.eq(&operation_id),
                    operation_flows::request.eq(&request),
                    operation_flows::next_flow.eq(0),
                    operation_flows::attempts.eq(0),
                    operation_flows::created_at_ms.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Removes the flows row of `operation_id` (its operation was not written, or its flows
    /// all ran under `owner`'s lease; `owner` `None` removes it whoever holds it).
    pub async fn forget_flows(
        &self,
        operation_id: &str,
        owner: Option<&str>,
    ) -> Result<bool, StoreError> {
        let operation_id = operation_id.to_string();
        let owner = owner.map(str::to_string);
        self.run(move |conn| {
            let mut query = diesel::delete(operation_flows::table)
                .filter(operation_flows::operation_id.eq(&operation_id))
                .into_boxed();
            if let Some(owner) = &owner {
                query = query.filter(operation_flows::lease_owner.eq(owner.clone()));
            }
            Ok(query.execute(conn)? == 1)
        })
        .await
    }

    /// Operations that ended and still owe flows whose lease is free, expired or held by
    /// `owner` (an earlier run of this broker identity), oldest first.
    pub async fn due_flows(
        &self,
        owner: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let owner = owner.to_string();
        self.run(move |conn| {
            Ok(operation_flows::table
                .inner_join(operations::table.on(operations::id.eq(operation_flows::operation_id)))
                .filter(operations::state.ne(IN_PROGRESS))
                .filter(
                    operation_flows::lease_owner
                        .is_null()
                        .or(operation_flows::lease_expires_ms.lt(now))
                        .or(operation_flows::lease_owner.eq(&owner)),
                )
                .order(operations::finished_at_ms.asc())
                .limit(limit)
                .select(operation_flows::operation_id)
                .load(conn)?)
        })
        .await
    }

    /// Claims the flows of `operation_id` for `owner` until `until` when its lease is free,
    /// expired or already `owner`'s: of several brokers exactly one wins. The row when won.
    pub async fn claim_flows(
        &self,
        operation_id: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<ClaimedFlows>, StoreError> {
        let (operation_id, owner) = (operation_id.to_string(), owner.to_string());
        self.run(move |conn| {
            let n = diesel::update(
                operation_flows::table
                    .filter(operation_flows::operation_id.eq(&operation_id))
                    .filter(
                        operation_flows::lease_owner
                            .is_null()
                            .or(operation_flows::lease_expires_ms.lt(now))
                            .or(operation_flows::lease_owner.eq(&owner)),
                    ),
            )
            .set((
                operation_flows::lease_owner.eq(Some(&owner)),
                operation_flows::lease_expires_ms.eq(Some(until)),
                operation_flows::attempts.eq(operation_flows::attempts + 1),
            ))
            .execute(conn)?;
            if n != 1 {
                return Ok(None);
            }
            Ok(operation_flows::table
                .find(&operation_id)
                .select(ClaimedFlows::as_select())
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// Extends `owner`'s lease on the flows of `operation_id` to `until` and records that
    /// `next_flow` flows ran; false when the lease was lost.
    pub async fn renew_flows(
        &self,
        operation_id: &str,
        owner: &str,
        until: i64,
        next_flow: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (operation_id, owner) = (operation_id.to_string(), owner.to_string());
        self.run(move |conn| {
            let target = operation_flows::table
                .filter(operation_flows::operation_id.eq(&operation_id))
                .filter(operation_flows::lease_owner.eq(&owner));
            let n = match next_flow {
                Some(next) => diesel::update(target)
                    .set((
                        operation_flows::lease_expires_ms.eq(Some(until)),
                        operation_flows::next_flow.eq(next),
                    ))
                    .execute(conn)?,
                None => diesel::update(target)
                    .set(operation_flows::lease_expires_ms.eq(Some(until)))
                    .execute(conn)?,
            };
            Ok(n == 1)
        })
        .await
    }

    /// Clears every flows lease `owner` holds (a graceful stop); how many.
    pub async fn release_flows_of(&self, owner: &str) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.run(move |conn| {
            Ok(diesel::update(
                operation_flows::table.filter(operation_flows::lease_owner.eq(&owner)),
            )
            .set((
                operation_flows::lease_owner.eq(None::<String>),
                operation_flows::lease_expires_ms.eq(None::<i64>),
            ))
            .execute(conn)?)
        })
        .await
    }

    /// Deletes flows rows older than `before` whose operation was never written (the broker
    /// died between the two writes); how many.
    pub async fn forget_orphan_flows(&self, before: i64) -> Result<usize, StoreError> {
        self.run(move |conn| {
            let orphans: Vec<String> = operation_flows::table
                .left_join(operations::table.on(operations::id.eq(operation_flows::operation_id)))
                .filter(operations::id.nullable().is_null())
                .filter(operation_flows::created_at_ms.lt(before))
                .select(operation_flows::operation_id)
                .load(conn)?;
            if orphans.is_empty() {
                return Ok(0);
            }
            Ok(diesel::delete(
                operation_flows::table.filter(operation_flows::operation_id.eq_any(&orphans)),
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
    use super::super::{now_ms, Outcome};
    use super::*;
    use common::osb::OperationState;

    /// The flows of an operation are due only once it ended, and of two brokers claiming them
    /// exactly one wins; progress and removal need the lease.
    async fn due_after_the_end_and_claimed_once(store: Store) {
        let now = now_ms();
        store.record_flows("o1", "{}".into(), now).await.unwrap();
        assert!(store.due_flows("a", now, 10).await.unwrap().is_empty());
        let op = operation("o1", "i1", "provision", Some("worker"));
        let created = store.create_instance(instance("i1"), op).await.unwrap();
        assert_eq!(created, Outcome::Done);
        assert!(store.due_flows("a", now, 10).await.unwrap().is_empty());
        let ended = OperationChanges {
            state: Some(OperationState::Failed.into()),
            lease_owner: Some(None),
            ..Default::default()
        };
        assert!(store.advance("o1", "worker", ended, vec![]).await.unwrap());
        assert_eq!(store.due_flows("a", now, 10).await.unwrap(), ["o1"]);

        let until = now + 60_000;
        let (a, b) = tokio::join!(
            store.claim_flows("o1", "a", now, until),
            store.claim_flows("o1", "b", now, until)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() != b.is_some(), "{a:?} {b:?}");
        let (winner, loser) = if a.is_some() { ("a", "b") } else { ("b", "a") };
        assert!(store.due_flows(loser, now, 10).await.unwrap().is_empty());
        assert!(!store
            .renew_flows("o1", loser, until, Some(1))
            .await
            .unwrap());
        assert!(store
            .renew_flows("o1", winner, until, Some(1))
            .await
            .unwrap());
        // The winner's next run (a restart of the same identity) resumes after the first flow.
        let again = store.claim_flows("o1", winner, now, until).await.unwrap();
        assert_eq!(again.map(|c| c.next_flow), Some(1));
        assert!(!store.forget_flows("o1", Some(loser)).await.unwrap());
        assert!(store.forget_flows("o1", Some(winner)).await.unwrap());
        assert!(store.due_flows(winner, now, 10).await.unwrap().is_empty());
    }

    /// An expired lease is taken over; rows whose operation never came are swept once old.
    async fn expired_leases_are_taken_over_and_orphans_swept(store: Store) {
        let now = now_ms();
        store.record_flows("o1", "{}".into(), now).await.unwrap();
        let mut op = operation("o1", "i1", "deprovision", None);
        op.state = OperationState::Succeeded;
        store.create_instance(instance("i1"), op).await.unwrap();
        let gone = store.claim_flows("o1", "a", now, now - 1).await.unwrap();
        assert!(gone.is_some());
        assert_eq!(store.due_flows("b", now, 10).await.unwrap(), ["o1"]);
        assert!(store
            .claim_flows("o1", "b", now, now + 60_000)
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.release_flows_of("b").await.unwrap(), 1);

        store
            .record_flows("old", "{}".into(), now - 10)
            .await
            .unwrap();
        store.record_flows("new", "{}".into(), now).await.unwrap();
        assert_eq!(store.forget_orphan_flows(now - 5).await.unwrap(), 1);
        assert!(store.forget_flows("new", None).await.unwrap());
        assert!(store.forget_flows("o1", None).await.unwrap());
    }

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        (dir, store)
    }

    async fn postgres() -> (testkit::TestPostgres, Store) {
        let pg = testkit::TestPostgres::start().await.unwrap();
        let store = Store::connect(&pg.create_database().await.unwrap())
            .await
            .unwrap();
        (pg, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_flows_are_due_after_the_end_and_claimed_once() {
        let (_dir, store) = sqlite().await;
        due_after_the_end_and_claimed_once(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_flows_are_due_after_the_end_and_claimed_once() {
        let (_pg, store) = postgres().await;
        due_after_the_end_and_claimed_once(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_expired_flow_leases_are_taken_over_and_orphans_swept() {
        let (_dir, store) = sqlite().await;
        expired_leases_are_taken_over_and_orphans_swept(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_expired_flow_leases_are_taken_over_and_orphans_swept() {
        let (_pg, store) = postgres().await;
        expired_leases_are_taken_over_and_orphans_swept(store).await;
    }
}
