//! The deployer: turns deployment specs into running PostgreSQL and Redis servers through an
//! orchestrator backend, as durable asynchronous tasks, behind the `/deployer/v1` contract of
//! `common::deployer` (mutual TLS only). It knows nothing about OSB.

pub mod backend;
pub mod config;
pub mod engine;
pub mod error;
pub mod routes;
pub mod service;
pub mod startup;
pub mod store;
pub mod sys;

pub use backend::process::{default_run_as_user, stop_all_servers};
pub use backend::shared::deployment_dir;
pub use config::Settings;
pub use startup::Application;
