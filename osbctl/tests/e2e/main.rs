//! End-to-end tests: the whole stack as `osbctl up` starts it (real deployer with real
//! PostgreSQL servers, real SPIs, real broker, real mTLS on loopback), driven over HTTP the way
//! a platform drives it.

mod bosh;
mod cli;
mod compose;
mod config_examples;
mod docker;
mod helpers;
mod keyvalue;
mod mtls;
mod readme;
mod up_bosh;
mod up_process;
mod walkthrough;
