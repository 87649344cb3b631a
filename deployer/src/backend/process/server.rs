//! The process backend's servers: started in their own process group with their output in
//! `server.log`, reaped when they exit, probed until ready, stopped with the engine's polite
//! signal (then a kill of the group), and found again by their pid files after a deployer
//! restart.

use super::{
    engines, read_instance, Child, Instance, NotReady, ProcessBackend, KILL_GRACE, LOG_FILE, POLL,
    READY_FIRST_NAP, READY_MAX_NAP, SERVERS_STOPPED_MARKER, STOP_GRACE,
};
use crate::backend::shared::{last_lines, save_before_stop, DEPLOYMENTS_DIR};
use crate::backend::BackendError;
use crate::engine;
use crate::sys;
use common::deployer::Engine;
use common::secret::SecretString;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

impl ProcessBackend {
    /// The server this backend started for `name`, if it did.
    pub(super) fn child(&self, name: &str) -> Option<Child> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The pid of the deployment's running server, if one runs (started by this backend or by
    /// an earlier deployer process).
    pub(super) fn running_pid(&self, name: &str, dir: &Path, instance: &Instance) -> Option<u32> {
        if let Some(child) = self.child(name) {
            if !*child.exited.borrow() {
                return Some(child.pid);
            }
        }
        engines::running_pid_from_files(dir, instance)
    }

    /// Starts the server with its output appended to `server.log`, and its reaper.
    fn spawn_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
    ) -> Result<Child, BackendError> {
        let log_path = dir.join(LOG_FILE);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log_path)
            .map_err(BackendError::io(format!("opening {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(BackendError::io("duplicating the log file handle"))?;
        let mut cmd = engines::server_command(self, dir, instance.engine);
        // Its own process group: signals meant for the deployer (Ctrl-C) do not reach the
        // server, and a kill of the group takes the server's own children with it.
        cmd.stdout(log)
            .stderr(log_err)
            .process_group(0)
            .kill_on_drop(false);
        let mut process = cmd.spawn().map_err(BackendError::io(format!(
            "starting the {} server",
            instance.engine_name()
        )))?;
        let pid = process
            .id()
            .ok_or_else(|| BackendError::Server("the server exited at once".into()))?;
        let (tx, rx) = watch::channel(false);
        let child = Child { pid, exited: rx };
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), child.clone());
        let children = Arc::clone(&self.children);
        let reaped_name = name.to_string();
        // The reaper: without it a stopped server would stay a zombie until the deployer exits.
        tokio::spawn(async move {
            let status = process.wait().await;
            tracing::info!(deployment.name = %reaped_name, pid, ?status, "server process exited");
            let _ = tx.send(true);
            let mut children = children.lock().unwrap_or_else(|e| e.into_inner());
            if children.get(&reaped_name).is_some_and(|c| c.pid == pid) {
                children.remove(&reaped_name);
            }
        });
        tracing::info!(deployment.name = %name, pid, port = instance.port, "server process started");
        Ok(child)
    }

    /// Logs in as the admin and runs the engine's probe query.
    async fn probe(&self, instance: &Instance, password: &SecretString) -> Result<(), String> {
        let host = &self.settings.advertise_host;
        engine::probe(
            instance.engine,
            host,
            instance.port,
            &instance.admin_username,
            password,
        )
        .await
    }

    /// Waits until the server answers a real query as the admin, it exits, or `deadline`.
    pub(super) async fn wait_ready(
        &self,
        instance: &Instance,
        password: &SecretString,
        pid: u32,
        child: Option<&Child>,
        deadline: Instant,
    ) -> Result<(), NotReady> {
        // Short naps first: a Redis server answers within milliseconds of its start.
        let mut nap = READY_FIRST_NAP;
        loop {
            let gone = match child {
                Some(c) => *c.exited.borrow(),
                None => !sys::is_alive(pid),
            };
            if gone {
                return Err(NotReady::Exited);
            }
            let last = match self.probe(instance, password).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(NotReady::TimedOut(last));
            }
            tokio::time::sleep(nap).await;
            nap = (nap * 2).min(READY_MAX_NAP);
        }
    }

    /// Starts the server and waits until it is ready, trying again (up to `attempts` starts in
    /// all) if it exits while starting.
    pub(super) async fn start_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
        password: &SecretString,
        attempts: u32,
    ) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.start_timeout();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let child = self.spawn_server(name, dir, instance)?;
            let reason = match self
                .wait_ready(instance, password, child.pid, Some(&child), deadline)
                .await
            {
                Ok(()) => return Ok(()),
                Err(NotReady::Exited)
                    if attempt < attempts && Instant::now() + Duration::from_secs(1) < deadline =>
                {
                    tracing::warn!(deployment.name = %name, attempt, "server exited while starting; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(NotReady::Exited) => "exited while starting".to_string(),
                Err(NotReady::TimedOut(last)) => {
                    self.stop_pid(name, child.pid, instance.engine).await;
                    format!(
                        "did not accept connections within {}s (last error: {last})",
                        self.settings.start_timeout_secs
                    )
                }
            };
            return Err(BackendError::Server(format!(
                "the {} server of {name} {reason}; end of {}: {}",
                instance.engine_name(),
                dir.join(LOG_FILE).display(),
                log_tail(&dir.join(LOG_FILE))
            )));
        }
    }

    /// Stops the deployment's server if it runs: the engine's polite signal, then a kill of
    /// its process group if it is still there after [`STOP_GRACE`].
    pub(super) async fn stop_server(
        &self,
        name: &str,
        dir: &Path,
        instance: &Instance,
    ) -> Result<(), BackendError> {
        let Some(pid) = self.running_pid(name, dir, instance) else {
            return Ok(());
        };
        save_before_stop(
            name,
            dir,
            instance.engine,
            (&self.settings.advertise_host, instance.port),
            &instance.admin_username,
        )
        .await;
        if self.stop_pid(name, pid, instance.engine).await {
            Ok(())
        } else {
            Err(BackendError::Server(format!(
                "the server of {name} (pid {pid}) did not stop"
            )))
        }
    }

    /// Signals `pid` to stop and waits until it is gone (reaped, if it is our child).
    pub(super) async fn stop_pid(&self, name: &str, pid: u32, engine: Engine) -> bool {
        let child = self.child(name).filter(|c| c.pid == pid);
        if let Err(e) = sys::send_signal(pid, engine::stop_signal(engine)) {
            tracing::debug!(deployment.name = %name, pid, error = %e, "stop signal not delivered");
        }
        if wait_gone(pid, child.as_ref(), STOP_GRACE).await {
            return true;
        }
        tracing::warn!(deployment.name = %name, pid, "server did not stop in time; killing it");
        let _ = sys::send_signal_to_group(pid, sys::SIGKILL);
        wait_gone(pid, child.as_ref(), KILL_GRACE).await
    }
}

/// Stops every server of the deployments under `data_dir` and waits until they are gone:
/// for test guards and tools that must not leave servers behind (servers otherwise outlive the
/// deployer, on purpose). Returns how many servers were running.
pub fn stop_all_servers(data_dir: &Path) -> usize {
    let root = data_dir.join(DEPLOYMENTS_DIR);
    let Ok(entries) = fs::read_dir(&root) else {
        return 0;
    };
    let _ = fs::write(root.join(SERVERS_STOPPED_MARKER), b"");
    let mut running = Vec::new();
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let Ok(Some(instance)) = read_instance(&dir) else {
            continue;
        };
        if let Some(pid) = engines::running_pid_from_files(&dir, &instance) {
            let _ = sys::send_signal(pid, engine::stop_signal(instance.engine));
            running.push(pid);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while running.iter().any(|pid| sys::is_alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    for pid in running.iter().filter(|pid| sys::is_alive(**pid)) {
        let _ = sys::send_signal_to_group(*pid, sys::SIGKILL);
    }
    let deadline = Instant::now() + KILL_GRACE;
    while running.iter().any(|pid| sys::is_alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    running.len()
}

async fn wait_gone(pid: u32, child: Option<&Child>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // Our own child is gone once reaped; anyone else's once the pid is free.
        let gone = match child {
            Some(c) => *c.exited.borrow(),
            None => !sys::is_alive(pid),
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The last few lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let Ok(bytes) = fs::read(path) else {
        return "(no log)".into();
    };
    let start = bytes.len().saturating_sub(2048);
    let text = String::from_utf8_lossy(&bytes[start..]);
    last_lines(&text, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\nd\ne\nf\ng\n").unwrap();
        assert_eq!(log_tail(&path), "c | d | e | f | g");
    }
}
