//! What the webhook tests share: the endpoint settings they run with, requests that carry a
//! `tracing_id` and an originating identity, and the checks (no secret in a body, a metric,
//! every operation's events in order for the crash test).

use crate::helpers::{provision_body, TestApp};
use crate::webhook_receiver::{distinct_checked, Received, Receiver};
use base64::Engine as _;
use broker::webhooks::{EndpointSettings, RetrySettings, WebhookSettings};
use common::secret::SecretString;
use serde_json::{json, Value};
use std::time::Duration;

pub const SECRET: &str = "hook-secret-5f2c9a";
pub const ENDPOINT: &str = "audit";
pub const ARRIVAL: Duration = Duration::from_secs(60);

/// Webhook settings for one endpoint at `url` with quick retries.
pub fn webhooks(url: &str, max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        endpoints: vec![EndpointSettings {
            name: ENDPOINT.into(),
            url: url.into(),
            events: vec!["*".into()],
            secret: Some(SecretString::new(SECRET)),
            secret_file: None,
            timeout_ms: 30_000,
            ca_file: None,
        }],
        poll_interval_ms: 50,
        lease_ms: 2_000,
        retry: RetrySettings {
            initial_backoff_ms: 50,
            max_backoff_ms: 400,
            max_attempts,
        },
        ..WebhookSettings::default()
    }
}

pub fn identity_header() -> String {
    let value = base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"user-42"}"#);
    format!("cloudfoundry {value}")
}

/// Provisions `id` with a `tracing_id` (and a would-be secret parameter) and waits for it.
pub async fn provision(app: &TestApp, id: &str, tracing_id: &str) {
    let body = provision_body(json!({"tracing_id": tracing_id, "work_mem_mb": 8}));
    let answer = app
        .request(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        )
        .header("X-Broker-API-Originating-Identity", identity_header())
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer = crate::helpers::Answer::from(answer).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

/// Changes `id`'s plan to medium with a `tracing_id` parameter and waits for the update.
pub async fn update_to_medium(app: &TestApp, id: &str, tracing_id: &str) {
    let body = json!({
        "service_id": crate::helpers::SERVICE_ID,
        "plan_id": crate::helpers::PLAN_MEDIUM,
        "parameters": {"tracing_id": tracing_id},
    });
    let answer = app
        .request(
            reqwest::Method::PATCH,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer = crate::helpers::Answer::from(answer).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

pub async fn deprovision(app: &TestApp, id: &str) {
    let answer = app.deprovision(id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

/// Every string value in a JSON tree.
pub fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

pub fn assert_no_secret(events: &[Received], secrets: &[String]) {
    for event in events {
        for secret in secrets.iter().filter(|s| s.len() >= 6) {
            assert!(
                !event.body.contains(secret.as_str()),
                "{secret:?} in {}",
                event.body
            );
        }
    }
}

/// Waits until `/metrics` counts `n` outbox events of the endpoint in `state`.
pub async fn wait_for_metric(app: &TestApp, state: &str, n: usize) {
    let line =
        format!("osb_broker_webhook_events{{endpoint=\"{ENDPOINT}\",state=\"{state}\"}} {n}");
    let deadline = std::time::Instant::now() + ARRIVAL;
    loop {
        let metrics = app
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        let text = metrics.text().await.unwrap();
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{line} not in /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The crash test's webhook settings: one endpoint at `url`, quick retries, a short lease (a
/// restarted broker has a new identity there and waits for the old lease to expire).
pub fn crash_settings(url: &str) -> WebhookSettings {
    WebhookSettings {
        lease_ms: 1_500,
        ..webhooks(url, 10_000)
    }
}

/// For the crash test: every operation of `journal` (all ended) had its started and ended
/// events delivered, signed, each event id with one body however often it came, and each
/// instance's events first arrived in the order the outbox recorded them (commit order).
pub async fn assert_every_operation_s_events_arrived(
    receiver: &Receiver,
    journal: &[broker::store::models::OperationRow],
    database: &std::path::Path,
) {
    use broker::store::schema::outbox;
    use broker::store::OutboxRow;
    use diesel::prelude::*;
    let expected = 2 * journal.len();
    let received = receiver
        .wait_until(Duration::from_secs(120), "every operation's events", |r| {
            r.iter()
                .map(|e| e.event_id.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= expected
        })
        .await;
    let events = distinct_checked(&received, SECRET);
    for op in journal {
        let of: Vec<&str> = events
            .iter()
            .filter(|e| e.json["operation"]["id"] == op.id.as_str())
            .map(Received::kind)
            .collect();
        let ended = format!("{}.{}", op.kind, op.state.as_str());
        assert_eq!(of, [format!("{}.started", op.kind), ended], "{op:?}");
    }
    let mut conn = diesel::SqliteConnection::establish(&database.display().to_string()).unwrap();
    let rows: Vec<OutboxRow> = outbox::table
        .order(outbox::seq.asc())
        .select(OutboxRow::as_select())
        .load(&mut conn)
        .unwrap();
    let instances: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.instance_id.as_str()).collect();
    for instance in instances {
        let recorded: Vec<&str> = rows
            .iter()
            .filter(|r| r.instance_id == instance)
            .map(|r| r.event_id.as_str())
            .take_while(|id| events.iter().any(|e| e.event_id == *id))
            .collect();
        let arrived: Vec<&str> = events
            .iter()
            .filter(|e| e.json["instance_id"] == instance)
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(
            arrived, recorded,
            "events of instance {instance} out of order"
        );
    }
    println!(
        "webhooks: {} events of {} operations delivered in order, {} deliveries in all",
        events.len(),
        journal.len(),
        received.len()
    );
}

/// The broker holding the dispatcher lease of the PostgreSQL database at `url`, if any.
pub fn dispatcher_owner(url: &str) -> Option<String> {
    use broker::store::schema::outbox_lease;
    use diesel::prelude::*;
    let mut conn = diesel::PgConnection::establish(url).unwrap();
    outbox_lease::table
        .find("dispatcher")
        .select(outbox_lease::owner)
        .first::<Option<String>>(&mut conn)
        .unwrap()
}
