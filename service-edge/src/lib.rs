//! The HTTP edge every internal service (the SPIs through `spi-kit`, the deployer) serves
//! behind: mutual TLS with certificate renewal and caller authorization by certificate
//! identity ([`authz`], [`server`]), the request id and originating identity of every request
//! in its log span ([`request`], with the id rules and length limit the broker applies, from
//! [`common::ids`]), and the JSON error envelope ([`error`]). A service brings its routes and
//! its own failure kinds.

pub mod authz;
pub mod error;
pub mod request;
pub mod server;

pub use error::{ApiError, Failure};
pub use request::RequestId;
pub use server::{EdgeServer, Listener};
