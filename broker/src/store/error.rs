//! How a state database call fails, and whether the failure means "unreachable, retry later".

use diesel::result::{DatabaseErrorKind, Error as DieselError};

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
    /// The SQLite file could not be created or made private (0600).
    #[error("database file {path}: {source}")]
    File {
        /// The SQLite file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A transaction was rolled back on purpose; the text says why (mapped to
    /// [`Outcome::Busy`] before it leaves the store).
    #[error("rolled back: {0}")]
    RolledBack(String),
    /// A quota the write would exceed (nothing written); answered 422 with its text.
    #[error("{0}")]
    QuotaExceeded(crate::domain::quota::QuotaExceeded),
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, or its connection broke):
    /// the request may be retried later and nothing was written.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Query(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
            Self::Query(DieselError::DatabaseError(_, info)) => {
                let message = info.message();
                [
                    "terminating connection",
                    "server closed the connection",
                    "no connection to the server",
                    "the database system is",
                    "could not connect",
                    "connection to server",
                    "database is locked",
                    "unable to open database file",
                ]
                .iter()
                .any(|m| message.contains(m))
            }
            _ => false,
        }
    }
}
