//! The test knobs of the fake Director: tasks made to end `error` / `cancelled` / `timeout`
//! (the next one, or every one of a deployment), tasks held in `processing` until released,
//! the pause between steps, the lifetime of UAA tokens, and a mutating request left
//! unanswered after its task was made.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How a task that a knob makes fail ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    /// `error`, with this message in the error event and the task's result.
    Error(String),
    /// `cancelled`.
    Cancelled,
    /// `timeout`.
    Timeout,
}

/// The knobs' current values.
#[derive(Debug)]
pub(crate) struct Knobs {
    fail_next: Mutex<Option<TaskEnd>>,
    fail_deployment: Mutex<HashMap<String, TaskEnd>>,
    hold: watch::Sender<bool>,
    step_delay: Mutex<Duration>,
    token_ttl: Mutex<Duration>,
    leave_unanswered: Mutex<bool>,
}

impl Knobs {
    /// Knobs that fail nothing and hold nothing.
    pub fn new(step_delay: Duration, token_ttl: Duration) -> Self {
        Self {
            fail_next: Mutex::default(),
            fail_deployment: Mutex::default(),
            hold: watch::channel(false).0,
            step_delay: Mutex::new(step_delay),
            token_ttl: Mutex::new(token_ttl),
            leave_unanswered: Mutex::new(false),
        }
    }

    /// The next task to reach its work ends `end` instead.
    pub fn fail_next(&self, end: TaskEnd) {
        *lock(&self.fail_next) = Some(end);
    }

    /// Every task of `deployment` ends `end` (`None`: they work again).
    pub fn fail_deployment(&self, deployment: &str, end: Option<TaskEnd>) {
        let mut map = lock(&self.fail_deployment);
        match end {
            Some(end) => map.insert(deployment.to_string(), end),
            None => map.remove(deployment),
        };
    }

    /// How a task of `deployment` that reaches its work must end, if a knob says so (taking
    /// the "next task" knob).
    pub fn failure_for(&self, deployment: &str) -> Option<TaskEnd> {
        lock(&self.fail_next)
            .take()
            .or_else(|| lock(&self.fail_deployment).get(deployment).cloned())
    }

    /// Holds tasks in `processing` (before their work) until [`Knobs::set_hold`]`(false)`.
    pub fn set_hold(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    /// Waits while tasks are held.
    pub async fn wait_unheld(&self) {
        let mut rx = self.hold.subscribe();
        // The sender lives as long as `self`, so this only ends when released.
        let _ = rx.wait_for(|held| !*held).await;
    }

    /// The pause before each step of a task.
    pub fn step_delay(&self) -> Duration {
        *lock(&self.step_delay)
    }

    /// Sets the pause before each step of a task.
    pub fn set_step_delay(&self, delay: Duration) {
        *lock(&self.step_delay) = delay;
    }

    /// The lifetime of the UAA tokens issued from now on.
    pub fn token_ttl(&self) -> Duration {
        *lock(&self.token_ttl)
    }

    /// Sets the lifetime of the UAA tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        *lock(&self.token_ttl) = ttl;
    }

    /// The next mutating request makes its task but is never answered.
    pub fn leave_next_unanswered(&self) {
        *lock(&self.leave_unanswered) = true;
    }

    /// Whether the request making a task now must go unanswered (taking the knob).
    pub fn take_unanswered(&self) -> bool {
        std::mem::take(&mut *lock(&self.leave_unanswered))
    }
}

/// Locks a mutex, surviving a panic of another holder.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_task_knob_is_taken_once_and_a_deployment_knob_stays() {
        let knobs = Knobs::new(Duration::ZERO, Duration::from_secs(1));
        knobs.fail_next(TaskEnd::Timeout);
        knobs.fail_deployment("d", Some(TaskEnd::Cancelled));
        assert_eq!(knobs.failure_for("x"), Some(TaskEnd::Timeout));
        assert_eq!(knobs.failure_for("x"), None);
        assert_eq!(knobs.failure_for("d"), Some(TaskEnd::Cancelled));
        assert_eq!(knobs.failure_for("d"), Some(TaskEnd::Cancelled));
        knobs.fail_deployment("d", None);
        assert_eq!(knobs.failure_for("d"), None);
    }

    #[test]
    fn the_unanswered_knob_is_taken_once() {
        let knobs = Knobs::new(Duration::ZERO, Duration::from_secs(1));
        assert!(!knobs.take_unanswered());
        knobs.leave_next_unanswered();
        assert!(knobs.take_unanswered());
        assert!(!knobs.take_unanswered());
    }
}
