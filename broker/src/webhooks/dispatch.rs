//! The dispatcher: one across the brokers sharing the database (the `outbox_lease` row), it
//! POSTs each endpoint's pending events (each endpoint served on its own), oldest first and one
//! at a time per instance (an undelivered older event of an instance holds its newer ones
//! back), retries failures with exponential backoff up to a cap and turns an event whose last
//! attempt failed into a dead letter.

use super::settings::{EndpointSettings, RetrySettings, WebhookSettings};
use super::sign::{
    signature, EVENT_ID_HEADER, EVENT_KIND_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use crate::store::{now_ms, Attempted, OutboxRow, Store, StoreError};
use common::secret::SecretString;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Events of one endpoint attempted per pass (each of another instance).
const PER_PASS: usize = 500;
/// Deliveries of one endpoint in flight at once (each to another instance).
const IN_FLIGHT: usize = 16;
/// How often delivered rows older than `keep_delivered_secs` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Time beyond the longest endpoint timeout a graceful stop waits for attempts in flight.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// How much of an error answer's body is kept in `last_error`.
const ERROR_TEXT_MAX: usize = 200;

/// One endpoint, ready to deliver to.
struct Endpoint {
    name: String,
    url: String,
    secret: SecretString,
    timeout: Duration,
    http: reqwest::Client,
}

impl Endpoint {
    fn new(settings: &EndpointSettings) -> anyhow::Result<Self> {
        let secret = settings.load_secret().map_err(anyhow::Error::msg)?;
        // A redirect is an answer like any non-2xx: followed, a 301/302/303 would turn the POST
        // into a GET without the event, and its 2xx would count as a delivery.
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca_file) = &settings.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| anyhow::anyhow!("webhook endpoint {}: ca_file: {e}", settings.name))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Self {
            name: settings.name.clone(),
            url: settings.url.clone(),
            secret,
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            http: http.build()?,
        })
    }

    /// One attempt: POST the body, signed; Ok on a 2xx answer, else why not.
    async fn post(&self, row: &OutboxRow) -> Result<(), String> {
        let signed = signature(self.secret.expose().as_bytes(), row.body.as_bytes());
        let answer = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signed)
            .header(EVENT_ID_HEADER, &row.event_id)
            .header(EVENT_KIND_HEADER, &row.kind)
            .header(TIMESTAMP_HEADER, (now_ms() / 1000).to_string())
            .body(row.body.clone())
            .send()
            .await
            .map_err(|e| format!("POST failed: {}", error_chain(&e.without_url())))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        let text: String = text.chars().take(ERROR_TEXT_MAX).collect();
        Err(format!("answered {status}: {text}"))
    }
}

/// An error with its causes, `: `-separated (the URL left out by the caller: a webhook URL may
/// carry a token).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What follows a failed attempt, `attempts` counting it: the wait before the next one
/// (`initial · 2^(attempts-1)`, capped), or `None` once `max_attempts` were made.
pub fn backoff_after(attempts: i64, retry: &RetrySettings) -> Option<Duration> {
    if attempts >= i64::from(retry.max_attempts.max(1)) {
        return None;
    }
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
    let wait = retry
        .initial_backoff_ms
        .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX));
    Some(Duration::from_millis(wait.min(retry.max_backoff_ms)))
}

/// The webhook dispatcher of one broker.
pub struct Dispatcher {
    store: Store,
    endpoints: Vec<Endpoint>,
    settings: WebhookSettings,
    owner: String,
    /// Whether this broker held the lease at its last claim.
    holding: AtomicBool,
    stopping: AtomicBool,
}

impl Dispatcher {
    /// A dispatcher for `settings`' endpoints (secrets read now), leasing as `owner`.
    pub fn new(store: Store, settings: &WebhookSettings, owner: &str) -> anyhow::Result<Self> {
        settings.check().map_err(anyhow::Error::msg)?;
        let endpoints = settings
            .endpoints
            .iter()
            .map(Endpoint::new)
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            store,
            endpoints,
            settings: settings.clone(),
            owner: owner.to_string(),
            holding: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        })
    }

    /// Registers the endpoints in the database, so state changes record events for them (an
    /// empty list stops the recording); the pending events of an endpoint that left the
    /// settings become dead letters, with a warning.
    pub async fn register(&self) -> Result<(), StoreError> {
        let endpoints = self
            .settings
            .endpoints
            .iter()
            .map(|e| (e.name.clone(), e.events.clone()))
            .collect();
        let dropped = self.store.register_webhook_endpoints(endpoints).await?;
        if dropped > 0 {
            tracing::warn!(
                events = dropped,
                "pending webhook events of endpoints no longer configured are dead letters now (`broker webhooks` lists them)"
            );
        }
        Ok(())
    }

    /// Delivers until [`Dispatcher::stop`] is called: the lease is claimed and renewed by one
    /// loop, and each endpoint is served by a loop of its own while this broker holds it, so a
    /// slow endpoint never delays another. Once stopping, each endpoint's loop finishes the
    /// attempts it has in flight (still under the renewed lease) and ends, and then this does.
    pub async fn run(&self) {
        if self.endpoints.is_empty() {
            return std::future::pending().await;
        }
        let endpoints =
            futures_util::future::join_all(self.endpoints.iter().map(|e| self.serve(e)));
        let serving = async {
            tokio::join!(endpoints, self.prune_now_and_then());
        };
        tokio::select! {
            () = self.keep_lease() => {}
            () = serving => {}
        }
    }

    /// Graceful stop: no new attempt starts, the attempts in flight finish (up to the longest
    /// endpoint timeout) while `running`, this dispatcher's [`Dispatcher::run`] future, is
    /// driven to its end, and then the lease is handed back, so the next dispatcher does not
    /// send them again.
    pub async fn stop<F: std::future::Future<Output = ()>>(&self, running: Pin<&mut F>) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(longest) = self.endpoints.iter().map(|e| e.timeout).max() {
            let drain = longest + self.settings.poll_interval() + DRAIN_MARGIN;
            if tokio::time::timeout(drain, running).await.is_err() {
                tracing::warn!("webhook dispatcher: deliveries still in flight at the stop are sent again by the next dispatcher");
            }
        }
        self.holding.store(false, Ordering::SeqCst);
        if let Err(e) = self.store.release_dispatcher(&self.owner).await {
            tracing::warn!(error = %e, "webhook dispatcher: handing back the lease failed");
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn holds_lease(&self) -> bool {
        self.holding.load(Ordering::SeqCst) && !self.stopping()
    }

    /// Claims or renews the lease every poll interval (at least every third of the lease);
    /// once stopping, only renews a lease it holds, while the attempts in flight finish.
    async fn keep_lease(&self) {
        let every = self.settings.poll_interval().min(self.settings.lease() / 3);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.stopping() && !self.holding.load(Ordering::SeqCst) {
                continue;
            }
            let now = now_ms();
            let until = now + i64::try_from(self.settings.lease().as_millis()).unwrap_or(i64::MAX);
            let held = match self.store.claim_dispatcher(&self.owner, now, until).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatcher: lease claim failed");
                    false
                }
            };
            if self.holding.swap(held, Ordering::SeqCst) != held {
                if held {
                    tracing::info!(owner = %self.owner, "webhook dispatcher: this broker delivers");
                } else {
                    tracing::info!("webhook dispatcher: another broker delivers");
                }
            }
        }
    }

    /// Serves `endpoint` every poll interval while this broker holds the lease, until it stops.
    async fn serve(&self, endpoint: &Endpoint) {
        let mut tick = tokio::time::interval(self.settings.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.stopping() {
                return;
            }
            if self.holds_lease() {
                self.deliver_to(endpoint).await;
            }
        }
    }

    /// Delivers the due events of `endpoint` until none is due (or the broker stops).
    async fn deliver_to(&self, endpoint: &Endpoint) {
        loop {
            let heads = match self
                .store
                .due_deliveries(&endpoint.name, now_ms(), PER_PASS)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(webhook.endpoint = %endpoint.name, error = %e, "webhook dispatcher: reading the outbox failed");
                    return;
                }
            };
            if heads.is_empty() {
                return;
            }
            for chunk in heads.chunks(IN_FLIGHT) {
                let attempts = chunk.iter().map(|row| self.attempt(endpoint, row));
                futures_util::future::join_all(attempts).await;
                if !self.holds_lease() {
                    return;
                }
            }
        }
    }

    /// One attempt on `row`, and its outcome written.
    async fn attempt(&self, endpoint: &Endpoint, row: &OutboxRow) {
        let outcome = match endpoint.post(row).await {
            Ok(()) => {
                tracing::info!(webhook.endpoint = %endpoint.name, event.id = %row.event_id, event.kind = %row.kind, instance.id = %row.instance_id, "webhook event delivered");
                Attempted::Delivered
            }
            Err(error) => match backoff_after(row.attempts + 1, &self.settings.retry) {
                Some(wait) => {
                    tracing::warn!(webhook.endpoint = %endpoint.name, event.id = %row.event_id, attempts = row.attempts + 1, retry_in_ms = wait.as_millis() as u64, error = %error, "webhook delivery failed; retrying later");
                    let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                    Attempted::Retry {
                        next_attempt_ms: now_ms().saturating_add(wait),
                        error,
                    }
                }
                None => {
                    tracing::error!(webhook.endpoint = %endpoint.name, event.id = %row.event_id, event.kind = %row.kind, attempts = row.attempts + 1, error = %error, "webhook delivery failed for the last time; the event is a dead letter");
                    Attempted::Dead { error }
                }
            },
        };
        if let Err(e) = self.store.record_attempt(row.seq, outcome).await {
            tracing::warn!(event.id = %row.event_id, error = %e, "webhook dispatcher: recording the attempt failed (it is repeated)");
        }
    }

    /// Deletes delivered rows older than `keep_delivered_secs`, every minute while this broker
    /// holds the lease, until it stops.
    async fn prune_now_and_then(&self) {
        let keep = i64::try_from(self.settings.keep_delivered_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let mut tick = tokio::time::interval(self.settings.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if self.stopping() {
                return;
            }
            if last.elapsed() < PRUNE_EVERY || !self.holds_lease() {
                continue;
            }
            last = tokio::time::Instant::now();
            match self
                .store
                .prune_delivered(now_ms().saturating_sub(keep))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "webhook outbox: delivered events pruned"),
                Err(e) => tracing::warn!(error = %e, "webhook outbox: pruning failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_cap_then_the_event_is_dead() {
        let retry = RetrySettings {
            initial_backoff_ms: 100,
            max_backoff_ms: 500,
            max_attempts: 5,
        };
        let waits: Vec<_> = (1..=5).map(|n| backoff_after(n, &retry)).collect();
        let ms = |m| Some(Duration::from_millis(m));
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), None]);
        let huge = RetrySettings {
            max_attempts: u32::MAX,
            ..retry
        };
        assert_eq!(backoff_after(200, &huge), ms(500));
    }
}
