//! Supervision of the process backend's servers. Every deployment whose apply or recovery
//! succeeded is watched: a look every `check_interval_ms` finds a server that died (a crash, a
//! `kill -9`, the OOM killer), kills what is left of its process group and starts it again
//! after a pause that doubles with each death in a row. After `crash_loop_limit` restarts in a
//! row the deployment is left `down` until it is applied again or the deployer restarts.
//!
//! Every operation on a deployment (apply, delete, recovery, a supervised restart) holds that
//! deployment's operation lock, so a restart never races an apply that is stopping the server
//! on purpose or a delete that is removing its directory.

use super::{read_instance, ProcessBackend, SERVERS_STOPPED_MARKER};
use crate::backend::shared::read_secret;
use crate::backend::BackendError;
use crate::config::SupervisionSettings;
use crate::sys;
use common::deployer::{DeploymentHealth, Health};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;
use tokio::task::AbortHandle;

/// Where a watched server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Up when last looked at.
    Healthy,
    /// Died; a restart is due at `retry_at` (or under way when that is `None`).
    Restarting,
    /// Left down (crash loop, or it could not be started).
    Down,
}

/// What supervision knows about one deployment.
#[derive(Debug, Clone)]
struct Watch {
    phase: Phase,
    /// Restarts in the current crash run (0: it has not died since its last apply).
    restarts: u32,
    /// When the server last came up.
    started_at: Instant,
    retry_at: Option<Instant>,
    /// The server's pid (its process group) when last seen up.
    pid: Option<u32>,
    message: String,
}

/// The supervision state of one backend.
#[derive(Debug, Default)]
pub(super) struct Supervisor {
    watches: Mutex<HashMap<String, Watch>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    task: Mutex<Option<AbortHandle>>,
    /// Restarts under way, aborted with the loop (a stopped deployer starts nothing more).
    restarts: Mutex<Vec<AbortHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pause before restart number `n` (1-based) of a crash run.
fn backoff(settings: &SupervisionSettings, n: u32) -> Duration {
    let factor = 1u64 << n.saturating_sub(1).min(20);
    Duration::from_millis(
        settings.restart_backoff_ms.saturating_mul(factor).min(
            settings
                .restart_backoff_max_ms
                .max(settings.restart_backoff_ms),
        ),
    )
}

impl Supervisor {
    /// Waits for, and holds, the operation lock of deployment `name`.
    pub(super) async fn operation(&self, name: &str) -> OwnedMutexGuard<()> {
        self.lock_of(name).lock_owned().await
    }

    fn lock_of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.locks).entry(name.to_string()).or_default())
    }

    /// The server of `name` came up through an apply or a recovery: a new crash run starts.
    pub(super) fn started(&self, name: &str, pid: Option<u32>) {
        lock(&self.watches).insert(
            name.to_string(),
            Watch {
                phase: Phase::Healthy,
                restarts: 0,
                started_at: Instant::now(),
                retry_at: None,
                pid,
                message: "running".into(),
            },
        );
    }

    /// `name` is no longer supervised (it is being deleted).
    pub(super) fn forget(&self, name: &str) {
        lock(&self.watches).remove(name);
    }

    /// `name` is down and is not restarted (until an apply or a recovery).
    pub(super) fn down(&self, name: &str, message: String) {
        lock(&self.watches).insert(
            name.to_string(),
            Watch {
                phase: Phase::Down,
                restarts: 0,
                started_at: Instant::now(),
                retry_at: None,
                pid: None,
                message,
            },
        );
    }

    /// `name` could not be brought up (an apply or a recovery failed with the server down).
    pub(super) fn failed(&self, settings: &SupervisionSettings, name: &str, why: &str) {
        let watch = Watch {
            phase: Phase::Restarting,
            restarts: 0,
            started_at: Instant::now(),
            retry_at: None,
            pid: None,
            message: String::new(),
        };
        let next = after_failed_start(settings, watch, why);
        lock(&self.watches).insert(name.to_string(), next);
    }

    fn watch(&self, name: &str) -> Option<Watch> {
        lock(&self.watches).get(name).cloned()
    }

    /// Replaces the watch of `name` if it is still supervised.
    fn set(&self, name: &str, watch: Watch) {
        if let Some(w) = lock(&self.watches).get_mut(name) {
            *w = watch;
        }
    }

    /// Stops the supervision loop.
    pub(super) fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        for restart in lock(&self.restarts).drain(..) {
            restart.abort();
        }
    }
}

/// The watch after a failed start: `watch.restarts` restarts of this crash run were tried
/// (0: the failed start was an apply or a recovery).
fn after_failed_start(settings: &SupervisionSettings, watch: Watch, why: &str) -> Watch {
    let tried = watch.restarts;
    if tried >= settings.crash_loop_limit {
        return Watch {
            phase: Phase::Down,
            retry_at: None,
            message: format!(
                "the server is down and is not restarted again: it could not be started \
                 ({tried} restart(s) in a row, crash_loop_limit {}): {why}; apply the deployment \
                 again or restart the deployer to try again",
                settings.crash_loop_limit
            ),
            ..watch
        };
    }
    let next = tried + 1;
    let pause = backoff(settings, next);
    Watch {
        phase: Phase::Restarting,
        restarts: next,
        retry_at: Some(Instant::now() + pause),
        message: format!(
            "the server is down and is being restarted (restart {next} of at most {}, in {} ms); \
             the last start failed: {why}",
            settings.crash_loop_limit,
            pause.as_millis()
        ),
        ..watch
    }
}

impl ProcessBackend {
    /// Starts the supervision loop on the current tokio runtime (none: no supervision). The
    /// loop holds the backend weakly and ends with it, or at [`Supervisor::stop`].
    pub(super) fn spawn_supervisor(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(self.supervision.check_interval_ms.max(10));
        let task = runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(backend) = weak.upgrade() else {
                    return;
                };
                backend.check_servers();
            }
        });
        *lock(&self.supervisor.task) = Some(task.abort_handle());
    }

    /// The pid of the deployment's server if it runs.
    pub(super) fn server_pid(&self, name: &str) -> Option<u32> {
        let dir = self.dir(name);
        let instance = read_instance(&dir).ok().flatten()?;
        self.running_pid(name, &dir, &instance)
    }

    /// One look at every watched server.
    fn check_servers(self: &Arc<Self>) {
        if self.root.join(SERVERS_STOPPED_MARKER).exists() {
            return;
        }
        lock(&self.supervisor.restarts).retain(|r| !r.is_finished());
        let names: Vec<String> = lock(&self.supervisor.watches).keys().cloned().collect();
        for name in names {
            // Busy (an apply, delete or restart runs): that operation decides.
            let Ok(guard) = self.supervisor.lock_of(&name).try_lock_owned() else {
                continue;
            };
            let Some(watch) = self.supervisor.watch(&name) else {
                continue;
            };
            match watch.phase {
                Phase::Down => {}
                Phase::Healthy => match self.server_pid(&name) {
                    Some(pid) if watch.pid != Some(pid) => {
                        self.supervisor.set(
                            &name,
                            Watch {
                                pid: Some(pid),
                                ..watch
                            },
                        );
                    }
                    Some(_) => {}
                    None => self.on_death(&name, watch),
                },
                Phase::Restarting => {
                    if watch.retry_at.is_some_and(|at| at <= Instant::now()) {
                        self.supervisor.set(
                            &name,
                            Watch {
                                retry_at: None,
                                ..watch.clone()
                            },
                        );
                        let backend = Arc::clone(self);
                        let restart = tokio::spawn(async move {
                            let _operation = guard;
                            backend.restart(&name, watch).await;
                        });
                        lock(&self.supervisor.restarts).push(restart.abort_handle());
                    }
                }
            }
        }
    }

    /// A watched server is gone: clean up after it and schedule a restart (or give up).
    fn on_death(&self, name: &str, watch: Watch) {
        let settings = &self.supervision;
        let stable = Duration::from_secs(settings.stable_secs);
        let restarts = if watch.started_at.elapsed() >= stable {
            1
        } else {
            watch.restarts + 1
        };
        tracing::warn!(deployment.name = %name, pid = watch.pid, restarts, "server died");
        if let Some(pid) = watch.pid {
            // Whatever the dead server left in its process group (PostgreSQL backends hold
            // its shared memory, and a new postmaster refuses to start beside them).
            let _ = sys::send_signal_to_group(pid, sys::SIGKILL);
        }
        let next = if restarts > settings.crash_loop_limit {
            tracing::error!(deployment.name = %name, restarts, "server in a crash loop; it is left down");
            Watch {
                phase: Phase::Down,
                restarts,
                retry_at: None,
                pid: None,
                message: format!(
                    "the server is down and is not restarted again: it died {restarts} times in a row \
                     (crash_loop_limit {}); apply the deployment again or restart the deployer to try again",
                    settings.crash_loop_limit
                ),
                ..watch
            }
        } else {
            let pause = backoff(settings, restarts);
            Watch {
                phase: Phase::Restarting,
                restarts,
                retry_at: Some(Instant::now() + pause),
                pid: None,
                message: format!(
                    "the server died and is being restarted (restart {restarts} of at most {}, in {} ms)",
                    settings.crash_loop_limit,
                    pause.as_millis()
                ),
                ..watch
            }
        };
        self.supervisor.set(name, next);
    }

    /// Starts a dead server again (its operation lock is held by the caller).
    async fn restart(&self, name: &str, watch: Watch) {
        let dir = self.dir(name);
        let result: Result<(), BackendError> = async {
            let instance = read_instance(&dir)?.ok_or_else(|| {
                BackendError::Server(format!("deployment {name} has no instance record"))
            })?;
            if self.running_pid(name, &dir, &instance).is_some() {
                return Ok(());
            }
            let password = read_secret(&dir)?;
            self.start_server(name, &dir, &instance, &password, 1).await
        }
        .await;
        let next = match result {
            Ok(()) => {
                tracing::info!(deployment.name = %name, restarts = watch.restarts, "server restarted");
                Watch {
                    phase: Phase::Healthy,
                    started_at: Instant::now(),
                    retry_at: None,
                    pid: self.server_pid(name),
                    message: format!(
                        "running; restarted after it died ({} restart(s) in a row)",
                        watch.restarts
                    ),
                    ..watch
                }
            }
            Err(e) => {
                tracing::warn!(deployment.name = %name, error = %e, "server restart failed");
                after_failed_start(&self.supervision, watch, &e.to_string())
            }
        };
        self.supervisor.set(name, next);
    }

    /// The health of deployment `name`'s server.
    pub(super) fn server_health(&self, name: &str) -> DeploymentHealth {
        let running = self.server_pid(name).is_some();
        match self.supervisor.watch(name) {
            Some(w) => match w.phase {
                Phase::Healthy if running => DeploymentHealth::new(Health::Healthy, w.message),
                // Died since the last look; the next one restarts it.
                Phase::Healthy => DeploymentHealth::new(
                    Health::Restarting,
                    "the server died and is being restarted",
                ),
                Phase::Restarting => DeploymentHealth::new(Health::Restarting, w.message),
                Phase::Down => DeploymentHealth::new(Health::Down, w.message),
            },
            None if running => DeploymentHealth::new(Health::Healthy, "running"),
            None => DeploymentHealth::new(Health::Down, "the server is not running"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(limit: u32) -> SupervisionSettings {
        SupervisionSettings {
            restart_backoff_ms: 100,
            restart_backoff_max_ms: 1000,
            crash_loop_limit: limit,
            ..SupervisionSettings::default()
        }
    }

    #[test]
    fn the_pause_between_restarts_doubles_up_to_the_maximum() {
        let s = settings(5);
        let ms: Vec<u128> = (1..=6).map(|n| backoff(&s, n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn failed_starts_end_down_at_the_crash_loop_limit() {
        let s = settings(2);
        let supervisor = Supervisor::default();
        supervisor.failed(&s, "kv", "exited");
        let first = supervisor.watch("kv").unwrap();
        assert_eq!((first.phase, first.restarts), (Phase::Restarting, 1));
        // Restart 1 failed.
        let second = after_failed_start(&s, first, "exited");
        assert_eq!((second.phase, second.restarts), (Phase::Restarting, 2));
        // Restart 2 (the last one allowed) failed.
        let third = after_failed_start(&s, second, "exited");
        assert_eq!(third.phase, Phase::Down);
        assert!(
            third.message.contains("not restarted again"),
            "{}",
            third.message
        );
        assert!(third.message.contains("exited"), "{}", third.message);
    }
}
