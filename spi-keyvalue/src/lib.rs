//! The key-value service provider (SPI): the Redis-compatible `keyvalue` offering with its plans,
//! schemas and plan transitions, deployment specs for the deployer, and per-binding ACL users
//! created on the running server. Served under `/spi/v1` over mutual TLS by `spi-kit`, which
//! holds what every SPI shares; this crate implements its traits on [`KeyValue`].

pub mod binding;
pub mod config;
pub mod offering;
pub mod spec;
pub mod startup;

// Shared with every SPI; still reachable under this crate's paths.
pub use spi_kit::{error, request, routes, validation};

/// The Redis-compatible key-value data service: `spi_kit`'s `Catalog` ([`offering`]),
/// `Deployment` ([`spec`]) and `Bindings` ([`binding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue;
