//! The state database (diesel only here): connection pool, embedded migrations, and the queries
//! of instances, bindings and the operation journal. Every call runs on the blocking pool.

pub mod models;
pub mod schema;

mod bindings;
mod instances;
mod operations;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::{SystemTime, UNIX_EPOCH};

pub use operations::Effect;

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
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_and_plain_paths_name_the_same_file() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite://a.db"), "a.db");
        assert_eq!(sqlite_path("/tmp/b.db"), "/tmp/b.db");
    }
}
