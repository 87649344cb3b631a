//! The process backend's port allocation: once per deployment (the port never changes), from
//! the configured `port_range` when there is one (firewalls and network policies need to know
//! it), else a free port of the OS's choosing.

use crate::backend::BackendError;
use std::collections::HashSet;
use std::net::TcpListener;

/// Checks a configured range: `start ≤ end`, no port 0.
pub(super) fn validate_range(range: Option<(u16, u16)>) -> Result<(), BackendError> {
    match range {
        Some((start, end)) if start == 0 || start > end => Err(BackendError::Invalid(format!(
            "process.port_range [{start}, {end}] is invalid: it needs 1 ≤ start ≤ end"
        ))),
        _ => Ok(()),
    }
}

/// A port on `host` that is free now and not in `taken` (the ports of the other deployments,
/// which come back on them even while they are stopped).
pub(super) fn allocate(
    host: &str,
    range: Option<(u16, u16)>,
    taken: &HashSet<u16>,
) -> Result<u16, BackendError> {
    match range {
        Some((start, end)) => (start..=end)
            .filter(|port| !taken.contains(port))
            .find(|port| TcpListener::bind((host, *port)).is_ok())
            .ok_or_else(|| {
                BackendError::Server(format!(
                    "no free port left in process.port_range [{start}, {end}] on {host}"
                ))
            }),
        None => {
            for _ in 0..32 {
                let listener = TcpListener::bind((host, 0))
                    .map_err(BackendError::io(format!("finding a free port on {host}")))?;
                let port = listener
                    .local_addr()
                    .map_err(BackendError::io("reading the allocated port"))?
                    .port();
                if !taken.contains(&port) {
                    return Ok(port);
                }
            }
            Err(BackendError::Server("no free port found".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_range_skips_taken_and_busy_ports_and_ends_when_full() {
        let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        // A range of the busy port and the one after it (if that one is free now).
        let next = busy_port.checked_add(1).unwrap();
        if TcpListener::bind(("127.0.0.1", next)).is_err() {
            return;
        }
        let range = Some((busy_port, next));
        assert_eq!(allocate("127.0.0.1", range, &HashSet::new()).unwrap(), next);
        let err = allocate("127.0.0.1", range, &HashSet::from([next])).unwrap_err();
        assert!(err.to_string().contains("no free port left"), "{err}");
    }

    #[test]
    fn an_empty_or_zero_range_is_refused() {
        assert!(validate_range(Some((10, 9))).is_err());
        assert!(validate_range(Some((0, 9))).is_err());
        assert!(validate_range(Some((9, 9))).is_ok());
        assert!(validate_range(None).is_ok());
    }
}
