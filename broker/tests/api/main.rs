//! The broker's API tests: the real broker, deployer and spi-postgres on loopback with mTLS,
//! driven over HTTP as a platform would.

mod bind_race;
mod bindings;
mod bodies;
mod catalog;
mod collisions;
mod crash;
mod edge;
mod faults;
mod flows;
mod flows_failures;
mod flows_takeover;
mod helpers;
mod ids;
mod lifecycle;
mod process;
mod quotas;
mod reconcile;
mod replicas;
mod restart;
mod reuse;
mod secrets;
mod shutdown;
mod supervision;
mod takeover;
mod validation;
mod webhook_receiver;
mod webhook_replicas;
mod webhook_support;
mod webhooks;
