//! The connection to the state database: the backend a URL names, the connection pool, the
//! embedded migrations, and running queries and write transactions on the blocking pool.

use super::{private_file, schema, StoreError};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

/// A connection to the state database: PostgreSQL or SQLite, chosen from the URL. Every query
/// is written once against both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// `postgres://` or `postgresql://`.
    Postgres(PgConnection),
    /// A file path or `sqlite://path`.
    Sqlite(SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const POOL_SIZE: u32 = 8;
const BUSY_TIMEOUT_MS: u32 = 10_000;
/// Key of the PostgreSQL advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x05b_5707e;
/// How long a request waits for a connection before it is answered 503.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// The database behind a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL connection URL.
    Postgres(String),
    /// A SQLite file path.
    Sqlite(String),
}

impl Target {
    /// `postgres://` and `postgresql://` name PostgreSQL; anything else is a SQLite path or
    /// `sqlite://path`.
    pub fn of(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(url.to_string())
        } else {
            Self::Sqlite(sqlite_path(url).to_string())
        }
    }
}

/// Opens connections to the one backend the URL names (never guesses by trying each).
#[derive(Debug)]
pub(super) struct Manager(Target);

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.0 {
            Target::Postgres(url) => Ok(DbConnection::Postgres(
                PgConnection::establish(url).map_err(diesel::r2d2::Error::ConnectionError)?,
            )),
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Handle on the state database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
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
    /// Opens the database at `url` (PostgreSQL, or SQLite with WAL, busy timeout and foreign
    /// keys) and applies its migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let target = Target::of(url);
        tokio::task::spawn_blocking(move || {
            if let Target::Sqlite(path) = &target {
                private_file::make_private(path).map_err(|source| StoreError::File {
                    path: path.clone(),
                    source,
                })?;
            }
            let pool = Pool::builder()
                .max_size(POOL_SIZE)
                .connection_timeout(CONNECTION_TIMEOUT)
                .build(Manager(target))?;
            let mut conn = pool.get()?;
            let migrated = match &mut *conn {
                DbConnection::Postgres(conn) => {
                    // Brokers starting together on a fresh database migrate one at a time.
                    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
                    let migrated = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop);
                    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
                    migrated
                }
                DbConnection::Sqlite(conn) => {
                    // WAL lets readers run beside the one writer; it persists in the file.
                    conn.batch_execute("PRAGMA journal_mode = WAL;")?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop)
                }
            };
            migrated.map_err(|e| StoreError::Migration(e.to_string()))?;
            drop(conn);
            Ok(Self { pool })
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PooledConnection<Manager>) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` in a write transaction that first updates the `write_lock` row, so writers
    /// queue one after the other on both backends: SQLite takes its write lock at once (no
    /// `SQLITE_BUSY` when a read upgrades, writers wait on the busy timeout), and PostgreSQL
    /// holds the row lock until commit, so every writer of every broker on the database reads
    /// what the one before it committed (each statement of a READ COMMITTED transaction sees
    /// the commits made before it started).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |conn| {
            let conn: &mut DbConnection = conn;
            conn.transaction(|conn| {
                diesel::update(schema::write_lock::table.find(1))
                    .set(schema::write_lock::writes.eq(schema::write_lock::writes + 1))
                    .execute(conn)?;
                f(conn)
            })
        })
        .await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}
