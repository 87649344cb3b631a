//! The durable half of the flows: completion and error flows of operations that ended, run
//! from the state database so that each operation's flows run once, whichever broker ends or
//! resumes it.
//!
//! Before a use case stores an operation whose kind has completion or error flows, it writes a
//! row to `operation_flows` with the request view. The row is due once the operation is no
//! longer in progress, so the transaction that ends the operation (a step result, a
//! cancellation, a failure) is also the one that makes its flows due. Every broker polls for
//! due rows (and wakes when one of its operations ends), claims a row under a lease like the
//! journal's, runs the flows one after the other while renewing the lease, records after each
//! flow how many ran, and deletes the row after the last one.
//!
//! At least once, at one corner: a broker that dies while a flow runs has not recorded it, so
//! the broker that takes the row over runs that flow again (and only the flows after it).
//! The same happens when the lease expires because renewals could not reach the database: the
//! broker that took the row over runs the flow again, and this one abandons it once it sees
//! the lease gone. Rows whose operation never got written (the broker died between the two
//! writes, or a store error left it unknown whether the insert committed) are deleted after
//! [`ORPHAN_AGE_MS`]; a write that certainly stored nothing removes its row at once.

use super::registry::{ObserverFn, Registered};
use super::run::run_observer;
use super::view::{ended, Ended};
use super::{FlowKind, FlowRegistry, FlowRequest};
use crate::domain::policy;
use crate::journal::Journal;
use crate::store::{now_ms, ClaimedFlows, Store, StoreError};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// How many due rows one poll looks at.
const BATCH: i64 = 16;
/// Age after which a flows row without its operation is deleted.
pub const ORPHAN_AGE_MS: i64 = 10 * 60 * 1000;

/// One flow to run: its name and the future that runs it guarded (not started until polled).
type Pending<'a> = (&'a str, Pin<Box<dyn Future<Output = ()> + Send + 'a>>);

/// Runs the completion and error flows of ended operations from the state database, once per
/// operation whichever broker ends it: a row of `operation_flows` written before the operation
/// becomes due when the operation ends, is claimed under a lease like the journal's, records
/// after each flow how many ran, and is deleted after the last. A flow that was running when
/// its broker died (or lost its lease) runs again on the broker that takes the row over.
///
/// [`crate::startup::Application`] builds one from the [`FlowRegistry`] it is given and runs
/// it beside the journal; a library user only registers flows.
pub struct FlowDispatcher {
    store: Store,
    registry: Arc<FlowRegistry>,
    owner: String,
    lease: Duration,
    poll: Duration,
    active: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for FlowDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowDispatcher")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Removes a row from the rows this broker is running when its task ends (or is aborted).
struct Running(Arc<FlowDispatcher>, String);

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.0.active).remove(&self.1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FlowDispatcher {
    /// A dispatcher of `registry` claiming rows as `owner` (the journal's owner id) for the
    /// journal's lease, polling as often as the journal does.
    pub fn new(
        store: Store,
        registry: FlowRegistry,
        owner: &str,
        worker: &crate::config::WorkerSettings,
    ) -> Self {
        Self {
            store,
            registry: Arc::new(registry),
            owner: owner.to_string(),
            lease: worker.lease(),
            poll: worker.poll_interval(),
            active: Mutex::new(HashSet::new()),
        }
    }

    /// The flows it runs.
    pub fn registry(&self) -> &Arc<FlowRegistry> {
        &self.registry
    }

    /// Records that the operation `request.operation` owes flows, before it is stored; false
    /// (nothing written) when its kind has no completion or error flow.
    pub(crate) async fn record(&self, request: &FlowRequest) -> Result<bool, StoreError> {
        let Some(operation) = &request.operation else {
            return Ok(false);
        };
        if !self.registry.observes_end_of(request.kind) {
            return Ok(false);
        }
        let json = serde_json::to_string(request).map_err(|e| StoreError::Task(e.to_string()))?;
        self.store.record_flows(operation, json, now_ms()).await?;
        Ok(true)
    }

    /// Removes the row of an operation that was not stored after all.
    pub(crate) async fn forget(&self, operation: &str) {
        if let Err(e) = self.store.forget_flows(operation, None).await {
            tracing::warn!(operation.id = operation, error = %e, "removing a flows row failed; it is removed as an orphan later");
        }
    }

    /// Runs due flows every poll interval and whenever one of `journal`'s operations ends,
    /// until the future is dropped (which aborts the flows running).
    pub async fn run(self: Arc<Self>, journal: Arc<Journal>) {
        let any = FlowKind::ALL
            .iter()
            .any(|k| self.registry.observes_end_of(*k));
        if !any {
            return std::future::pending().await;
        }
        let mut tasks = JoinSet::new();
        let mut orphans_checked = 0;
        loop {
            let woken = journal.ended();
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(self.poll) => {}
            }
            while tasks.try_join_next().is_some() {}
            if let Err(e) = self.claim_due(&mut tasks).await {
                tracing::warn!(error = %e, "flows poll failed");
            }
            let now = now_ms();
            if now - orphans_checked > ORPHAN_AGE_MS / 10 {
                orphans_checked = now;
                match self.store.forget_orphan_flows(now - ORPHAN_AGE_MS).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(rows = n, "removed flows rows of operations never stored")
                    }
                    Err(e) => tracing::warn!(error = %e, "flows orphan sweep failed"),
                }
            }
        }
    }

    /// Claims due rows not running here and runs each in its own task.
    async fn claim_due(self: &Arc<Self>, tasks: &mut JoinSet<()>) -> Result<(), StoreError> {
        let now = now_ms();
        for id in self.store.due_flows(&self.owner, now, BATCH).await? {
            if !lock(&self.active).insert(id.clone()) {
                continue;
            }
            let running = Running(Arc::clone(self), id.clone());
            let until = policy::lease_until(now, self.lease);
            match self.store.claim_flows(&id, &self.owner, now, until).await {
                Ok(Some(claimed)) => {
                    let me = Arc::clone(self);
                    tasks.spawn(async move {
                        let _running = running;
                        if let Err(e) = me.deliver(claimed).await {
                            tracing::warn!(error = %e, "flows store call failed; the flows not recorded as run run again at a later poll");
                        }
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs the flows of a claimed row after those already run, then deletes it.
    async fn deliver(&self, claimed: ClaimedFlows) -> Result<(), StoreError> {
        let id = claimed.operation_id.as_str();
        let op = self.store.operation(id).await?;
        let request = serde_json::from_str::<FlowRequest>(&claimed.request);
        let (Some(op), Ok(request)) = (op, request) else {
            tracing::error!(
                operation.id = id,
                "flows row without a readable request or operation; dropped"
            );
            self.store.forget_flows(id, Some(&self.owner)).await?;
            return Ok(());
        };
        let Some(outcome) = ended(&op) else {
            return Ok(());
        };
        let pending = self.pending(&request, &outcome);
        let done = usize::try_from(claimed.next_flow).unwrap_or(0);
        for (index, (name, run)) in pending.into_iter().enumerate().skip(done) {
            tracing::debug!(operation.id = id, flow.name = name, "running flow");
            tokio::select! {
                () = run => {}
                () = self.keep_lease(id) => {
                    tracing::info!(operation.id = id, "flows lease lost; another broker runs them");
                    return Ok(());
                }
            }
            let until = policy::lease_until(now_ms(), self.lease);
            let next = i64::try_from(index + 1).unwrap_or(i64::MAX);
            if !self
                .store
                .renew_flows(id, &self.owner, until, Some(next))
                .await?
            {
                return Ok(());
            }
        }
        self.store.forget_flows(id, Some(&self.owner)).await?;
        Ok(())
    }

    /// The flows `outcome` calls for, in registration order.
    fn pending<'a>(&'a self, request: &'a FlowRequest, outcome: &'a Ended) -> Vec<Pending<'a>> {
        fn each<'a, A: Clone + Send + Sync + 'static>(
            flows: impl Iterator<Item = &'a Registered<ObserverFn<A>>>,
            (timeout, registry): (Duration, &'static str),
            request: &'a FlowRequest,
            outcome: &'a A,
        ) -> Vec<Pending<'a>> {
            flows
                .map(|flow| -> Pending<'a> {
                    let run = run_observer(timeout, registry, flow, request, outcome);
                    (flow.name.as_str(), Box::pin(run))
                })
                .collect()
        }
        let (kind, timeout) = (request.kind, self.registry.timeout());
        match outcome {
            Ended::Succeeded(response) => each(
                self.registry.completion_of(kind),
                (timeout, "completion"),
                request,
                response,
            ),
            Ended::Failed(error) => each(
                self.registry.error_of(kind),
                (timeout, "error"),
                request,
                error,
            ),
        }
    }

    /// Renews the lease on `id`'s flows every third of its duration; returns once it is lost.
    async fn keep_lease(&self, id: &str) {
        let mut tick = tokio::time::interval(self.lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let until = policy::lease_until(now_ms(), self.lease);
            match self.store.renew_flows(id, &self.owner, until, None).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "flows lease renewal failed"),
            }
        }
    }

    /// Graceful stop: clears this broker's flows leases so another broker takes them over at
    /// once (the flows that were running are run again there).
    pub async fn hand_back(&self) {
        match self.store.release_flows_of(&self.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "flows leases handed back"),
            Err(e) => {
                tracing::warn!(error = %e, "handing back flows leases failed; they expire instead")
            }
        }
    }
}
