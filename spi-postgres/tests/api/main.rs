//! Integration tests: the real SPI on port 0 with real mTLS, and (for bindings) a real
//! PostgreSQL server run by the real deployer.

mod bindings;
mod catalog;
mod edge;
mod validate;
