//! What every service provider (SPI) shares, whatever its data service: the `/spi/v1` server
//! over mutual TLS ([`startup`], [`routes`], on the edge of crate `service-edge`), request ids
//! ([`request`]), the failures and their envelope ([`error`]), parameter validation with user-facing messages ([`validation`]),
//! the offering's generic rules ([`offering`]), deployment specs ([`spec`]) and binding helpers
//! ([`binding`]). An SPI describes its data service by implementing [`Catalog`],
//! [`Deployment`] and [`Bindings`] on one unit type (together: [`DataService`]); the dev-only
//! crate `testkit` starts it (and a real deployer) for its tests.

pub mod binding;
pub mod config;
pub mod error;
pub mod offering;
pub mod routes;
pub mod service;
pub mod spec;
pub mod startup;
pub mod validation;

#[cfg(test)]
mod demo;

pub use service::{Bindings, Catalog, DataService, Deployment};
pub use service_edge::request;
