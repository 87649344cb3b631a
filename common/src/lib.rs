//! Shared building blocks of the service broker system: the OSB v2.17 wire model, the versioned
//! internal contracts (`/spi/v1`, `/deployer/v1`) with their typed clients, mutual TLS from PEM
//! files, certificate generation, layered config loading and telemetry.

pub mod certs;
pub mod client;
pub mod deployer;
pub mod envelope;
pub mod ids;
pub mod logsafe;
pub mod osb;
pub mod secret;
pub mod settings;
pub mod spi;
pub mod telemetry;
pub mod tls;

/// Header carrying the request identity across every hop (OSB's optional request-identity header).
pub const REQUEST_ID_HEADER: &str = "X-Broker-API-Request-Identity";
/// Header carrying the platform's originating identity, passed on verbatim to the SPIs.
pub const ORIGINATING_IDENTITY_HEADER: &str = "X-Broker-API-Originating-Identity";

/// A fresh request id (a UUID v4) for requests that arrived without one.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Resolves at the first Ctrl-C (SIGINT) or SIGTERM: the services' cue for a graceful stop.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a URL path segment or query
/// value).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_pass_unencoded() {
        assert_eq!(super::percent_encode("a b/c~d-é"), "a%20b%2Fc~d-%C3%A9");
    }
}
