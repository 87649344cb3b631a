//! Retry and deadline policy of the journal: how long an operation may run, how long to wait
//! between retries of an internal call, and when a binding's credentials expire.

use std::time::Duration;

/// The first pause before retrying a failed internal call.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// The longest pause between retries.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff: 200 ms, doubling, at most 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: FIRST_RETRY_DELAY,
        }
    }
}

impl Backoff {
    /// The pause to take now; the following one is twice as long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_RETRY_DELAY);
        delay
    }
}

/// How long an operation may run, in seconds: the plan's `maximum_polling_duration`, capped
/// by the broker's own limit (an operator may want it shorter), else the broker's limit.
pub fn max_operation_secs(plan_max_secs: Option<u64>, broker_max_secs: u64) -> u64 {
    plan_max_secs.map_or(broker_max_secs, |plan| plan.min(broker_max_secs))
}

/// The Unix ms after which an operation created at `created_at_ms` has failed.
pub fn deadline_ms(created_at_ms: i64, max_secs: u64) -> i64 {
    let max_ms = i64::try_from(max_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    created_at_ms.saturating_add(max_ms)
}

/// Bindings created before this Unix ms have expired, for credentials valid `validity_secs`.
pub fn binding_expiry_cutoff(now_ms: i64, validity_secs: u64) -> i64 {
    let validity_ms = i64::try_from(validity_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    now_ms.saturating_sub(validity_ms)
}

/// When a lease taken at `now_ms` for `lease` ends.
pub fn lease_until(now_ms: i64, lease: Duration) -> i64 {
    now_ms + lease.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_200_ms_doubles_and_stops_at_5_s() {
        let mut backoff = Backoff::default();
        let delays: Vec<u128> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn the_plan_limit_applies_only_below_the_broker_limit() {
        assert_eq!(max_operation_secs(Some(60), 3600), 60);
        assert_eq!(max_operation_secs(Some(7200), 3600), 3600);
        assert_eq!(max_operation_secs(None, 3600), 3600);
    }

    #[test]
    fn the_deadline_counts_from_the_creation_of_the_operation() {
        assert_eq!(deadline_ms(1_000, 60), 61_000);
        assert_eq!(deadline_ms(1_000, u64::MAX), i64::MAX);
    }

    #[test]
    fn bindings_expire_their_validity_after_creation() {
        assert_eq!(binding_expiry_cutoff(100_000, 60), 40_000);
        assert_eq!(binding_expiry_cutoff(100_000, u64::MAX), 100_000 - i64::MAX);
    }

    #[test]
    fn a_lease_ends_its_duration_after_the_claim() {
        assert_eq!(lease_until(1_000, Duration::from_secs(30)), 31_000);
    }
}
