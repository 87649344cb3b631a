//! The broker's API tests: the real broker, deployer and spi-postgres on loopback with mTLS,
//! driven over HTTP as a platform would.

mod bindings;
mod catalog;
mod edge;
mod helpers;
mod lifecycle;
mod replicas;
mod restart;
mod validation;
