//! What every service provider (SPI) shares, whatever its data service: the `/spi/v1` server
//! over mutual TLS ([`startup`], [`routes`]), request ids ([`request`]), the one error type and
//! its envelope ([`error`]), parameter validation with user-facing messages ([`validation`]),
//! the offering's generic rules ([`offering`]), deployment specs ([`spec`]) and binding helpers
//! ([`binding`]). An SPI describes its data service by implementing [`Catalog`],
//! [`Deployment`] and [`Bindings`] on one unit type (together: [`DataService`]); with the
//! `testing` feature, the module `testing` starts it (and a real deployer) for its tests.

pub mod binding;
pub mod config;
pub mod error;
pub mod offering;
pub mod request;
pub mod routes;
pub mod service;
pub mod spec;
pub mod startup;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validation;

#[cfg(test)]
mod demo;

pub use service::{Bindings, Catalog, DataService, Deployment};
