//! `osbctl`: runs the whole stack on one machine (`up`), makes the mTLS material (`certs`),
//! drives any OSB broker (`catalog`, `provision`, `bind`, …) and benchmarks the stack (`bench`).

pub mod bench;
pub mod bench_store;
pub mod certs;
pub mod cli;
pub mod osb_client;
pub mod stack;
