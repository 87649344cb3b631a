//! The error body of every 4xx/5xx answer and the spec's fixed error codes.

use serde::{Deserialize, Serialize};

/// The error body of every 4xx/5xx answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (`AsyncRequired`, `ConcurrencyError`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a person should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Failed update or deprovision only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_usable: Option<bool>,
    /// Failed update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_repeatable: Option<bool>,
}

/// The fixed error codes of the spec.
pub mod codes {
    /// Async-only operation without `accepts_incomplete=true`.
    pub const ASYNC_REQUIRED: &str = "AsyncRequired";
    /// Another operation is in progress.
    pub const CONCURRENCY_ERROR: &str = "ConcurrencyError";
    /// Bind without the required app guid.
    pub const REQUIRES_APP: &str = "RequiresApp";
    /// Requested maintenance version differs from the plan's.
    pub const MAINTENANCE_INFO_CONFLICT: &str = "MaintenanceInfoConflict";
}
