//! The operation journal: runs operations step by step under a lease, persisting every step
//! so a restarted broker resumes where the last one stopped, and takes over operations whose
//! owner died once their lease expires.
//!
//! Steps: provision `spec` → `deploy` → `wait`; update the same; deprovision `delete` → `wait`;
//! bind `create`; unbind `delete` (the table is [`crate::domain::steps`]). Every external call
//! is idempotent (deployer PUT/DELETE by name, SPI create-binding resets the password, SPI
//! delete-binding of an unknown binding succeeds), so repeating the step a dead broker was in
//! is safe.
//!
//! Modules: `lease` claiming, renewing and handing back leases; `run` loading an operation and
//! dispatching its step; `steps` the steps; `calls` internal calls with retries until the
//! deadline; `failure` what went wrong in a step; `ending` the one place an operation ends,
//! with what it does to its instance or binding.

mod calls;
mod ending;
mod failure;
mod lease;
mod run;
mod steps;

use crate::catalog::CatalogCache;
use crate::config::{BindingSettings, WorkerSettings};
use crate::crypto::Cipher;
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::store::models::OperationRow;
use crate::store::{now_ms, Store, StoreError};
use common::deployer::DeployerClient;
use common::osb::OperationState;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How many claimable operations (or expired bindings) one poll looks at.
const CLAIM_BATCH: i64 = 16;

/// Removes an operation from the set of those driven by this process when its task ends, by
/// completion, abort or panic, and wakes anyone waiting for it.
struct ActiveGuard {
    journal: Arc<Journal>,
    op_id: String,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        lock(&self.journal.active).remove(&self.op_id);
        self.journal.finished.notify_waiters();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data (a task set, an id set) stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The operation journal of one broker process.
pub struct Journal {
    store: Store,
    catalog: Arc<CatalogCache>,
    deployer: DeployerClient,
    cipher: Arc<Cipher>,
    settings: WorkerSettings,
    bindings: BindingSettings,
    owner: String,
    runtime: tokio::runtime::Handle,
    tasks: Mutex<JoinSet<()>>,
    active: Mutex<HashSet<String>>,
    finished: Notify,
    /// Set once the broker stops: no more claims, no new tasks.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// A journal whose tasks run on `runtime`, with a fresh random owner id.
    pub fn new(
        store: Store,
        catalog: Arc<CatalogCache>,
        deployer: DeployerClient,
        cipher: Arc<Cipher>,
        settings: WorkerSettings,
        bindings: BindingSettings,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            owner: lease::lease_owner(settings.identity.as_deref()),
            store,
            catalog,
            deployer,
            cipher,
            settings,
            bindings,
            runtime,
            tasks: Mutex::new(JoinSet::new()),
            active: Mutex::new(HashSet::new()),
            finished: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The deployer client the operations use.
    pub fn deployer(&self) -> &DeployerClient {
        &self.deployer
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A new operation row, already claimed by this process so it can start at once.
    pub fn new_operation(
        &self,
        request_id: Option<String>,
        originating_identity: Option<String>,
        instance_id: &str,
        binding_id: Option<&str>,
        kind: OperationKind,
        payload: &OperationPayload,
    ) -> OperationRow {
        let now = now_ms();
        OperationRow {
            id: uuid::Uuid::new_v4().to_string(),
            instance_id: instance_id.to_string(),
            binding_id: binding_id.map(str::to_string),
            kind: kind.as_str().into(),
            state: OperationState::InProgress,
            description: kind.initial_description().into(),
            step: kind.first_step().as_str().into(),
            payload: payload.encode(),
            request_id,
            originating_identity,
            lease_owner: Some(self.owner.clone()),
            lease_expires_ms: Some(self.lease_until(now)),
            attempts: 1,
            created_at_ms: now,
            updated_at_ms: now,
            finished_at_ms: None,
        }
    }

    /// Starts driving `op_id`, whose lease this process already holds (it was inserted
    /// claimed). The task runs on the broker's runtime, so a client disconnect does not stop it.
    pub fn start(self: &Arc<Self>, op_id: &str) {
        // A stopping broker hands the lease back instead (see `hand_back`).
        if self.stopping.load(Ordering::SeqCst) || !lock(&self.active).insert(op_id.to_string()) {
            return;
        }
        let guard = ActiveGuard {
            journal: Arc::clone(self),
            op_id: op_id.to_string(),
        };
        let journal = Arc::clone(self);
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(
            async move {
                let _guard = guard;
                journal.drive(&_guard.op_id).await;
            },
            &self.runtime,
        );
    }

    /// Claims and starts operations whose lease is free or expired, every poll interval,
    /// until the future is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.settings.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Keep ticking while stopping: returning would end the broker's serve loop before
            // in-flight requests finished.
            if self.stopping.load(Ordering::SeqCst) {
                continue;
            }
            if let Err(e) = self.claim_orphans().await {
                tracing::warn!(error = %e, "journal poll failed");
            }
            if let Err(e) = self.expire_bindings().await {
                tracing::warn!(error = %e, "binding expiry sweep failed");
            }
        }
    }

    /// Completes when one of this process's operation tasks ends (the event flows wake on it).
    pub fn ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.finished.notified()
    }

    /// Waits up to `timeout` for `op_id` to end; the row when it ended, `None` if it still runs.
    pub async fn wait_finished(
        &self,
        op_id: &str,
        timeout: Duration,
    ) -> Result<Option<OperationRow>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check so a completion in between is not missed.
            let notified = self.finished.notified();
            if let Some(op) = self.store.operation(op_id).await? {
                if op.state != OperationState::InProgress {
                    return Ok(Some(op));
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = (deadline - now).min(self.settings.poll_interval());
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}
