//! Integration tests: the real deployer on port 0 with real mTLS, running real PostgreSQL and
//! Redis servers.

mod errors;
mod helpers;
mod mtls;
mod postgres;
mod redis;
