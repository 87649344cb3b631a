//! Integration tests of the `bosh` backend: the real deployer on port 0 with real mTLS, driving
//! the fake BOSH Director of `testkit::bosh` (a stand-in speaking the Director's documented
//! API), which runs the real PostgreSQL and Redis servers the manifests ask for.

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

mod director;
mod failures;
mod lifecycle;
mod restart;
