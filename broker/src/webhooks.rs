//! Callbacks (webhooks): every operation's start and end is recorded as an event in the
//! `outbox` table inside the transaction that changes its state (`store::outbox`), and a
//! dispatcher, one across the brokers sharing the database, POSTs each event as signed JSON
//! to the configured endpoints that want it: at least once, in order per instance, with
//! exponential backoff, then as a dead letter shown by `/metrics` and `broker webhooks`.

pub mod dispatch;
pub mod event;
pub mod settings;
pub mod sign;

pub use dispatch::Dispatcher;
pub use settings::{EndpointSettings, RetrySettings, WebhookSettings};

use std::fmt::Write as _;

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text of the outbox: events per endpoint and delivery state (`pending`,
/// `delivered`, `dead`), as the database holds them for every broker.
pub fn render_metrics(counts: &[(String, String, i64)]) -> String {
    let mut out = String::from(
        "# HELP osb_broker_webhook_events Webhook events in the outbox by endpoint and delivery state (dead: dead letters).\n# TYPE osb_broker_webhook_events gauge\n",
    );
    for (endpoint, state, n) in counts {
        let _ = writeln!(
            out,
            "osb_broker_webhook_events{{endpoint=\"{}\",state=\"{}\"}} {n}",
            label(endpoint),
            label(state)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_metrics_have_one_line_per_endpoint_and_state() {
        let text = render_metrics(&[
            ("audit".into(), "dead".into(), 2),
            ("audit".into(), "delivered".into(), 7),
        ]);
        assert!(text.contains("# TYPE osb_broker_webhook_events gauge"));
        assert!(text
            .lines()
            .any(|l| l == "osb_broker_webhook_events{endpoint=\"audit\",state=\"dead\"} 2"));
        assert!(text
            .lines()
            .any(|l| l == "osb_broker_webhook_events{endpoint=\"audit\",state=\"delivered\"} 7"));
    }
}
