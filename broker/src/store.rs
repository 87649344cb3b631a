//! The state database (diesel only here): connection pool, embedded migrations, and the queries
//! of instances, bindings and the operation journal. Every call runs on the blocking pool.

pub mod models;
pub mod schema;

mod bindings;
mod deployments;
mod instances;
mod leases;
mod operations;
mod secrets;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::{SystemTime, UNIX_EPOCH};

pub use deployments::OwnedDeployment;
pub use operations::Effect;
pub use secrets::{SecretColumn, StoredSecret};

/// The connection type of the state database.
pub type DbConnection = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POOL_SIZE: u32 = 8;
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// Failure of a state database call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be had.
    #[error("database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(String),
    /// The blocking task died.
    #[error("database task: {0}")]
    Task(String),
    /// A transaction was rolled back on purpose; the text says why (mapped to
    /// [`Outcome::Busy`] before it leaves the store).
    #[error("rolled back: {0}")]
    RolledBack(String),
}

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

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Handle on the state database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<ConnectionManager<DbConnection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The SQLite path of a database URL (`sqlite://path` or a plain path).
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

impl Store {
    /// Opens the database at `url` (WAL, busy timeout, foreign keys) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let path = sqlite_path(url).to_string();
        tokio::task::spawn_blocking(move || {
            let manager = ConnectionManager::<DbConnection>::new(path);
            let pool = Pool::builder()
                .max_size(POOL_SIZE)
                .connection_customizer(Box::new(SqlitePragmas))
                .build(manager)?;
            let mut conn = pool.get()?;
            // WAL lets readers run beside the one writer; it persists in the file.
            conn.batch_execute("PRAGMA journal_mode = WAL;")?;
            conn.run_pending_migrations(MIGRATIONS)
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            Ok(Self { pool })
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConnection<ConnectionManager<DbConnection>>) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` in a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue on the
    /// busy timeout instead of failing when they upgrade a read).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |conn| conn.immediate_transaction(|conn| f(conn)))
            .await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
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
    use super::models::{InstanceRow, OperationChanges, OperationRow};
    use super::*;

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

    pub(super) fn instance(id: &str) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            service_id: "svc".into(),
            plan_id: "small".into(),
            parameters: "{}".into(),
            context: None,
            organization_guid: None,
            space_guid: None,
            maintenance_version: None,
            dashboard_url: None,
            state: "provisioning".into(),
            deployment_name: None,
            deployment_spec_enc: None,
            endpoints: None,
            created_at_ms: 1,
            updated_at_ms: 1,
        }
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
            state: "in progress".into(),
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

    #[tokio::test]
    async fn a_free_operation_is_claimed_by_exactly_one_owner_until_its_lease_expires() {
        let (_dir, store) = store().await;
        let outcome = store
            .create_instance(instance("i1"), operation("op1", "i1", "provision", None))
            .await
            .unwrap();
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

    #[tokio::test]
    async fn a_worker_that_lost_its_lease_writes_nothing() {
        let (_dir, store) = store().await;
        store
            .create_instance(
                instance("i1"),
                operation("op1", "i1", "provision", Some("old")),
            )
            .await
            .unwrap();
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

    #[tokio::test]
    async fn a_second_operation_in_progress_on_one_instance_is_refused() {
        let (_dir, store) = store().await;
        store
            .create_instance(
                instance("i1"),
                operation("op1", "i1", "provision", Some("a")),
            )
            .await
            .unwrap();
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
        assert_eq!(cancelled.state, "failed");
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
}
