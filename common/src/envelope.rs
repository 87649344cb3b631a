//! The one JSON error envelope of the internal contracts (`/spi/v1`, `/deployer/v1`). It is the
//! OSB error body plus the request id, so an SPI's user-facing refusal can be passed through.

use serde::{Deserialize, Serialize};

/// Error envelope returned by SPIs and the deployer on every non-2xx answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Machine-readable code, e.g. `BadRequest`, `NotFound`, `InternalError`.
    pub error: String,
    /// User-facing description (never a secret).
    pub description: String,
    /// Request id under which the detail was logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorEnvelope {
    /// Builds an envelope.
    pub fn new(error: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            description: description.into(),
            request_id: None,
        }
    }
}
