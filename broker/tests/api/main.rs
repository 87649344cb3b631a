//! The broker's API tests: the real broker, deployer and spi-postgres on loopback with mTLS,
//! driven over HTTP as a platform would.

mod bindings;
mod catalog;
mod collisions;
mod crash;
mod edge;
mod faults;
mod helpers;
mod lifecycle;
mod process;
mod reconcile;
mod replicas;
mod restart;
mod secrets;
mod shutdown;
mod validation;
