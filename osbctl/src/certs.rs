//! `osbctl certs`: the internal CA and a certificate per service, in the per-service layout
//! (`ca/` holds the CA key, each service's directory only `ca.pem` and its own pair); on a
//! directory that already holds a CA, renewal instead of a new CA.

use crate::cli::CertsArgs;
use common::certs::{self, Layout, SERVICE_NAMES};

/// What a run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new CA and every certificate.
    Created,
    /// The existing CA issued these certificates again (none: all are valid for long enough).
    Renewed(Vec<String>),
}

/// Makes or renews the bundle in `args.out`.
pub fn make_or_renew(args: &CertsArgs) -> anyhow::Result<Outcome> {
    let mut hosts = certs::loopback_hosts();
    hosts.extend(args.hosts.iter().cloned());
    // A directory made by an older `osbctl certs` keeps its flat layout.
    let layout = if certs::has_ca(Layout::Flat, &args.out) {
        Layout::Flat
    } else {
        Layout::PerService
    };
    if !certs::has_ca(layout, &args.out) {
        if args.renew {
            anyhow::bail!(
                "{} holds no CA to renew from; run without --renew to make one",
                args.out.display()
            );
        }
        certs::write_bundle_in(layout, &args.out, SERVICE_NAMES, &hosts)?;
        return Ok(Outcome::Created);
    }
    let renewed = certs::renew_bundle(layout, &args.out, SERVICE_NAMES, &hosts, args.renew)?;
    Ok(Outcome::Renewed(renewed))
}

/// `osbctl certs`.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    let out = args.out.display();
    match make_or_renew(args)? {
        Outcome::Created => println!(
            "wrote a new CA to {out}/ca (keep it away from the services) and a certificate for each of {SERVICE_NAMES:?} to {out}/<service>/ (valid {} days)",
            certs::LEAF_VALIDITY_DAYS
        ),
        Outcome::Renewed(names) if names.is_empty() => println!(
            "{out} already holds a CA; every certificate is valid for more than {} days: kept",
            certs::RENEW_WITHIN_DAYS
        ),
        Outcome::Renewed(names) => println!(
            "renewed {names:?} in {out} from its CA (running services load them on their next connection)"
        ),
    }
    Ok(())
}
