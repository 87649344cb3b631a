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
