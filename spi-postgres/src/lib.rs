//! The PostgreSQL service provider (SPI): the `postgresql` offering with its plans, schemas and
//! plan transitions, deployment specs for the deployer, and per-binding login roles created on
//! the running instance. Served under `/spi/v1` over mutual TLS.

pub mod binding;
pub mod config;
pub mod error;
pub mod offering;
pub mod request;
pub mod routes;
pub mod spec;
pub mod sql;
pub mod startup;
pub mod validation;
