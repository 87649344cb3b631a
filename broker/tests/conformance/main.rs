//! OSB v2.17 conformance: one test per broker rule (B) of `docs/conformance.md`, named after its
//! number, plus the choices of §10, a seeded fuzz test, request shapes generated from the
//! spec's openapi.yaml (`interop`), ownership and id reuse (`ownership`) and HTTP conventions
//! (`conventions`), all against the real stack (broker, deployer, spi-postgres, real
//! PostgreSQL) over HTTP. `docs/conformance.md` maps every rule and decision to its test.

#[path = "../api/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the api test binary; each binary uses a different part"
)]
mod helpers;
#[path = "../api/process.rs"]
#[allow(
    dead_code,
    reason = "shared with the api test binary; each binary uses a different part"
)]
mod process;

mod asynchrony;
mod bind;
mod catalog;
mod choices;
mod conventions;
mod deprovision;
mod fetch_binding;
mod fetch_instance;
mod fuzz;
mod general;
mod interop;
mod last_operation;
mod ownership;
mod provision;
mod support;
mod unbind;
mod update;
