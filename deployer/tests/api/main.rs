//! Integration tests: the real deployer on port 0 with real mTLS, running real PostgreSQL and
//! Redis servers.

mod docker;
mod errors;
mod helpers;
mod mtls;
mod owners;
mod postgres;
mod redis;
mod supervision;
