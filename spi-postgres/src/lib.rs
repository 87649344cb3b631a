//! The PostgreSQL service provider (SPI): the `postgresql` offering with its plans, schemas and
//! plan transitions, deployment specs for the deployer, and per-binding login roles created on
//! the running instance. Served under `/spi/v1` over mutual TLS by `spi-kit`, which holds what
//! every SPI shares; this crate implements its traits on [`Postgres`].

pub mod binding;
pub mod config;
pub mod offering;
pub mod spec;
pub mod sql;
pub mod startup;

// Shared with every SPI; still reachable under this crate's paths.
pub use spi_kit::{error, request, routes, validation};

/// The PostgreSQL data service: `spi_kit`'s `Catalog` ([`offering`]), `Deployment` ([`spec`])
/// and `Bindings` ([`binding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postgres;
