//! The key-value service provider (SPI): the Redis-compatible `keyvalue` offering with its plans,
//! schemas and plan transitions, deployment specs for the deployer, and per-binding ACL users
//! created on the running server. Served under `/spi/v1` over mutual TLS.

pub mod binding;
pub mod config;
pub mod error;
pub mod offering;
pub mod request;
pub mod routes;
pub mod spec;
pub mod startup;
pub mod validation;
