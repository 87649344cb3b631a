//! The Open Service Broker API v2.17 server: the OSB edge, the catalog assembled from the
//! SPIs, the state database with its durable operation journal and workers, and encryption of
//! the secrets it stores.

pub mod catalog;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod flows;
pub mod journal;
pub mod reconcile;
pub mod reencrypt;
pub mod routes;
pub mod service;
pub mod startup;
pub mod store;
pub mod webhooks;
