//! The state database (diesel only here): connection pool, embedded migrations, and the queries
//! of instances, bindings and the operation journal. Every call runs on the blocking pool.

pub mod columns;
pub mod models;
pub mod schema;

mod bindings;
mod database;
mod deployments;
mod error;
mod flows;
mod instances;
mod leases;
mod operations;
mod outbox;
mod private_file;
mod quotas;
mod secrets;

use std::time::{SystemTime, UNIX_EPOCH};

pub use database::{sqlite_path, DbConnection, Store, Target};
pub use deployments::OwnedDeployment;
pub use error::StoreError;
pub use flows::ClaimedFlows;
pub use operations::Effect;
pub use outbox::{Attempted, DeliveryState, OutboxRow};
pub use secrets::{SecretColumn, StoredSecret};

/// Whether an insert or conditional write went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Done,
    /// A live row with this id exists (nothing written).
    Exists,
    /// Another operation is in progress, or the state changed since it was read (nothing
    /// written); the text says why.
    Busy(String),
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Maps an on-purpose rollback to [`Outcome::Busy`].
fn busy_on_rollback(result: Result<Outcome, StoreError>) -> Result<Outcome, StoreError> {
    match result {
        Err(StoreError::RolledBack(why)) => Ok(Outcome::Busy(why)),
        other => other,
    }
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::models::{BindingRow, InstanceChanges, InstanceRow, OperationChanges, OperationRow};
    use super::*;
    use crate::domain::binding::BindingState;
    use crate::domain::instance::InstanceState;
    use common::osb::OperationState;
    use diesel::prelude::*;

    #[test]
    fn sqlite_urls_and_plain_paths_name_the_same_file() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite://a.db"), "a.db");
        assert_eq!(sqlite_path("/tmp/b.db"), "/tmp/b.db");
    }

    pub(super) async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        (dir, store)
    }

    /// What keeps a test database alive.
    enum Db {
        Sqlite(tempfile::TempDir),
        Postgres(testkit::TestPostgres),
    }

    impl Db {
        async fn sqlite() -> Self {
            Self::Sqlite(tempfile::tempdir().unwrap())
        }

        async fn postgres() -> Self {
            Self::Postgres(testkit::TestPostgres::start().await.unwrap())
        }

        /// A fresh database: a new file, or a new PostgreSQL database on the one server.
        async fn url(&self) -> String {
            match self {
                Self::Sqlite(dir) => format!(
                    "sqlite://{}",
                    dir.path()
                        .join(format!("{}.sqlite", uuid::Uuid::new_v4()))
                        .display()
                ),
                Self::Postgres(pg) => pg.create_database().await.unwrap(),
            }
        }

        async fn store(&self) -> Store {
            Store::connect(&self.url().await).await.unwrap()
        }
    }

    /// Instantiates each test once against SQLite and once against a PostgreSQL server of its
    /// own: `async fn name(db: Db) { .. }` becomes `sqlite::name` and `postgres::name`.
    macro_rules! store_tests {
        (@on $module:ident, $open:path, $(async fn $name:ident($db:ident: Db) $body:block)*) => {
            mod $module {
                use super::*;
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = $open().await;
                    $body
                })*
            }
        };
        ($($tests:tt)*) => {
            store_tests!(@on sqlite, Db::sqlite, $($tests)*);
            store_tests!(@on postgres, Db::postgres, $($tests)*);
        };
    }

    pub(super) fn instance(id: &str) -> InstanceRow {
        InstanceRow::bare(id, "svc", "small", InstanceState::Provisioning, 1)
    }

    async fn start_provision(store: &Store, id: &str, op: &str, owner: Option<&str>) -> Outcome {
        store
            .create_instance(instance(id), operation(op, id, "provision", owner))
            .await
            .unwrap()
    }

    pub(super) fn operation(
        id: &str,
        instance_id: &str,
        kind: &str,
        owner: Option<&str>,
    ) -> OperationRow {
        OperationRow {
            id: id.into(),
            instance_id: instance_id.into(),
            binding_id: None,
            kind: kind.into(),
            state: OperationState::InProgress,
            description: kind.into(),
            step: "spec".into(),
            payload: "{}".into(),
            request_id: None,
            originating_identity: None,
            lease_owner: owner.map(str::to_string),
            lease_expires_ms: owner.map(|_| now_ms() + 60_000),
            attempts: 0,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
            finished_at_ms: None,
        }
    }

    store_tests! {
    async fn a_free_operation_is_claimed_by_exactly_one_owner_until_its_lease_expires(db: Db) {
        let store = db.store().await;
        let outcome = start_provision(&store, "i1", "op1", None).await;
        assert_eq!(outcome, Outcome::Done);
        let now = now_ms();
        assert_eq!(store.claimable_operations(now, 10).await.unwrap(), ["op1"]);
        let (a, b) = tokio::join!(
            store.claim("op1", "a", now, now + 1_000),
            store.claim("op1", "b", now, now + 1_000)
        );
        assert!(a.unwrap() ^ b.unwrap(), "exactly one claimant wins");
        assert!(store
            .claimable_operations(now, 10)
            .await
            .unwrap()
            .is_empty());
        // Once the lease expires, another broker takes over.
        let later = now + 2_000;
        assert_eq!(
            store.claimable_operations(later, 10).await.unwrap(),
            ["op1"]
        );
        assert!(store.claim("op1", "c", later, later + 1_000).await.unwrap());
        assert_eq!(store.operation("op1").await.unwrap().unwrap().attempts, 2);
    }

    async fn a_worker_that_lost_its_lease_writes_nothing(db: Db) {
        let store = db.store().await;
        start_provision(&store, "i1", "op1", Some("old")).await;
        let now = now_ms();
        assert!(store
            .claim("op1", "new", now + 120_000, now + 130_000)
            .await
            .unwrap());
        let changes = OperationChanges {
            step: Some("deploy".into()),
            ..Default::default()
        };
        let written = store
            .advance("op1", "old", changes.clone(), vec![])
            .await
            .unwrap();
        assert!(!written);
        assert!(!store.renew_lease("op1", "old", now + 1).await.unwrap());
        assert_eq!(store.operation("op1").await.unwrap().unwrap().step, "spec");
        assert!(store.advance("op1", "new", changes, vec![]).await.unwrap());
        assert_eq!(
            store.operation("op1").await.unwrap().unwrap().step,
            "deploy"
        );
    }

    async fn a_second_operation_in_progress_on_one_instance_is_refused(db: Db) {
        let store = db.store().await;
        start_provision(&store, "i1", "op1", Some("a")).await;
        // A second instance operation while the provision runs: the unique index refuses it.
        let outcome = store
            .begin_deprovision(operation("op2", "i1", "deprovision", Some("a")), None)
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Busy(_)), "{outcome:?}");
        assert!(store.operation("op2").await.unwrap().is_none());
        // Cancelling the provision lets the deprovision in, and keeps the provision's lease
        // so the deprovision can wait for its worker.
        let outcome = store
            .begin_deprovision(
                operation("op3", "i1", "deprovision", Some("a")),
                Some("op1".into()),
            )
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Done);
        let cancelled = store.operation("op1").await.unwrap().unwrap();
        assert_eq!(cancelled.state.as_str(), "failed");
        assert_eq!(cancelled.description, "cancelled by deprovision");
        assert!(store
            .lease_held_elsewhere("i1", None, "op3", now_ms())
            .await
            .unwrap());
        store.release_lease("op1", "a").await.unwrap();
        assert!(!store
            .lease_held_elsewhere("i1", None, "op3", now_ms())
            .await
            .unwrap());
        // The latest operation is the deprovision, even within the same millisecond.
        let latest = store
            .latest_operation("i1", None, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.id, "op3");
        let hinted = store
            .latest_operation("i1", None, Some("op1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hinted.id, "op1");
    }

    async fn concurrent_creates_of_one_instance_on_two_brokers_write_it_once(db: Db) {
        let url = db.url().await;
        let stores = [
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        ];
        let attempts = (0..20).map(|n| {
            let store = stores[n % 2].clone();
            async move {
                start_provision(&store, "i1", &format!("op{n}"), Some("a")).await
            }
        });
        let outcomes = futures_util::future::join_all(attempts).await;
        let done = outcomes.iter().filter(|o| **o == Outcome::Done).count();
        let exists = outcomes.iter().filter(|o| **o == Outcome::Exists).count();
        assert_eq!((done, exists), (1, 19), "{outcomes:?}");
        let running = stores[1].instance("i1").await.unwrap().unwrap().1;
        assert!(running.is_some());
    }

    async fn two_brokers_claim_every_free_operation_exactly_once(db: Db) {
        let url = db.url().await;
        let stores = [
            Store::connect(&url).await.unwrap(),
            Store::connect(&url).await.unwrap(),
        ];
        for n in 0..30 {
            let id = format!("i{n}");
            let op = operation(&format!("op{n}"), &id, "provision", None);
            stores[0].create_instance(instance(&id), op).await.unwrap();
        }
        let now = now_ms();
        let claimers = ["a", "b"].into_iter().zip(stores.clone()).map(|(owner, store)| {
            tokio::spawn(async move {
                let mut won = Vec::new();
                for id in store.claimable_operations(now, 100).await.unwrap() {
                    if store.claim(&id, owner, now, now + 60_000).await.unwrap() {
                        won.push(id);
                    }
                }
                won
            })
        });
        let mut won: Vec<String> = futures_util::future::join_all(claimers)
            .await
            .into_iter()
            .flat_map(Result::unwrap)
            .collect();
        won.sort();
        won.dedup();
        assert_eq!(won.len(), 30, "every operation claimed once: {won:?}");
        for n in 0..30 {
            let op = stores[1].operation(&format!("op{n}")).await.unwrap().unwrap();
            assert_eq!(op.attempts, 1, "{op:?}");
        }
    }

    async fn a_step_result_and_its_effects_are_written_together(db: Db) {
        let store = db.store().await;
        start_provision(&store, "i1", "op1", Some("a")).await;
        let changes = OperationChanges {
            state: Some(OperationState::Succeeded.into()),
            lease_owner: Some(None),
            finished_at_ms: Some(Some(now_ms())),
            ..Default::default()
        };
        let effect = Effect::Instance {
            id: "i1".into(),
            changes: InstanceChanges {
                state: Some(InstanceState::Ready),
                deployment_name: Some(Some("d1".into())),
                ..Default::default()
            },
        };
        assert!(store.advance("op1", "a", changes, vec![effect]).await.unwrap());
        let (row, running) = store.instance("i1").await.unwrap().unwrap();
        assert_eq!(row.state.as_str(), "ready");
        assert_eq!(row.deployment_name.as_deref(), Some("d1"));
        assert!(running.is_none());
        // A binding, then its unbind; a second bind of the same id meanwhile is refused.
        let binding = BindingRow::bare("b1", "i1", "svc", "small", BindingState::Creating, now_ms());
        let mut bind = operation("op2", "i1", "bind", Some("a"));
        bind.binding_id = Some("b1".into());
        let outcome = store.create_binding(binding.clone(), bind).await.unwrap();
        assert_eq!(outcome, Outcome::Done);
        let mut again = operation("op3", "i1", "bind", Some("a"));
        again.binding_id = Some("b1".into());
        assert_eq!(
            store.create_binding(binding, again).await.unwrap(),
            Outcome::Exists
        );
        let mut unbind = operation("op4", "i1", "unbind", Some("a"));
        unbind.binding_id = Some("b1".into());
        let outcome = store
            .begin_unbind(unbind, Some("op2".into()))
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Done);
        let (row, running) = store.binding("b1").await.unwrap().unwrap();
        assert_eq!(row.state.as_str(), "deleting");
        assert_eq!(running.unwrap().id, "op4");
        let bind = store.operation("op2").await.unwrap().unwrap();
        assert_eq!(
            (bind.state.as_str(), bind.description.as_str()),
            ("failed", "cancelled by unbind")
        );
    }

    async fn states_are_written_in_their_spelled_out_form_and_read_back_as_enums(db: Db) {
        let store = db.store().await;
        start_provision(&store, "i1", "op1", Some("a")).await;
        let raw = store
            .run(|conn| {
                Ok(schema::service_instances::table
                    .inner_join(schema::operations::table)
                    .select((
                        schema::service_instances::state,
                        schema::operations::state,
                    ))
                    .first::<(String, String)>(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(raw, ("provisioning".to_string(), "in progress".to_string()));
        let (row, running) = store.instance("i1").await.unwrap().unwrap();
        assert_eq!(row.state, InstanceState::Provisioning);
        assert_eq!(running.unwrap().state, OperationState::InProgress);
    }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_down_is_unavailable_and_the_store_recovers_with_nothing_lost() {
        let mut pg = testkit::TestPostgres::start().await.unwrap();
        let store = Store::connect(&pg.create_database().await.unwrap())
            .await
            .unwrap();
        start_provision(&store, "i1", "op1", Some("a")).await;
        pg.stop().await.unwrap();
        let err = store.instance("i1").await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        let err = store
            .create_instance(instance("i2"), operation("op2", "i2", "provision", None))
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        pg.resume().await.unwrap();
        // The pool drops the broken connections and opens new ones.
        let (row, running) = store.instance("i1").await.unwrap().unwrap();
        assert_eq!(row.id, "i1");
        assert_eq!(running.unwrap().id, "op1");
        let outcome = start_provision(&store, "i2", "op2", None).await;
        assert_eq!(outcome, Outcome::Done);
    }
}
