//! The journal workers: run operations step by step under a lease, persisting every step so a
//! restarted broker resumes where the last one stopped, and take over operations whose owner
//! died once their lease expires.
//!
//! Steps: provision `spec` → `deploy` → `wait`; update the same; deprovision `delete` → `wait`;
//! bind `create`; unbind `delete`. Every external call is idempotent (deployer PUT/DELETE by
//! name, SPI create-binding resets the password, SPI delete-binding of an unknown binding
//! succeeds), so repeating the step a dead broker was in is safe.

use crate::catalog::{CatalogCache, NamedSpi};
use crate::config::{BindingSettings, WorkerSettings};
use crate::crypto::Cipher;
use crate::domain::operation::{
    merge_parameters, progress_description, OperationKind, OperationPayload, Step,
};
use crate::store::models::{
    BindingChanges, BindingRow, InstanceChanges, InstanceRow, OperationChanges, OperationRow,
};
use crate::store::{now_ms, Effect, Outcome, Store, StoreError};
use anyhow::{anyhow, Context as _};
use common::client::{CallContext, ClientError};
use common::deployer::{DeployerClient, DeploymentEndpoint, DeploymentSpec, TaskState};
use common::osb::{JsonObject, OperationState};
use common::spi::{CreateBindingRequest, DeleteBindingRequest, DeploymentSpecRequest};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument as _;

const CLAIM_BATCH: i64 = 16;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
const DEPLOYER: &str = "deployer";

/// Why a step did not complete.
#[derive(Debug)]
enum StepError {
    /// The lease is gone (cancelled, or taken over): stop and write nothing.
    LeaseLost,
    /// The journal could not be written: stop; the operation resumes once the lease expires.
    Store(StoreError),
    /// A callee refused (4xx); the description is user-facing.
    Refused { status: u16, description: String },
    /// The operation failed for a reason a person should read.
    Failed(String),
    /// Anything unexpected; logged, the operation fails with a generic description.
    Internal(anyhow::Error),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<crate::crypto::CryptoError> for StepError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the step loop does next.
enum Flow {
    /// Run the (newly persisted) next step.
    Continue,
    /// The operation ended.
    Finished,
}

/// An operation loaded for one step.
struct OpCtx {
    op: OperationRow,
    kind: OperationKind,
    payload: OperationPayload,
    instance: InstanceRow,
    binding: Option<BindingRow>,
    call: CallContext,
    deadline_ms: i64,
    /// The maximum polling duration the deadline comes from, for descriptions.
    max_secs: u64,
}

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

/// The lease owner id: `broker-<identity>` when one is configured, else `broker-<random>`.
fn lease_owner(identity: Option<&str>) -> String {
    match identity {
        Some(identity) => format!("broker-{identity}"),
        None => format!("broker-{}", uuid::Uuid::new_v4()),
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
            owner: lease_owner(settings.identity.as_deref()),
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

    /// At start, with a configured identity: clears the leases an earlier process of the same
    /// identity held when it died, so its operations resume at the next poll instead of when
    /// their leases expire. Without one the owner is new and holds nothing.
    pub async fn take_back_own_leases(&self) -> Result<usize, StoreError> {
        if self.settings.identity.is_none() {
            return Ok(0);
        }
        let released = self.store.release_leases_of(&self.owner).await?;
        if released > 0 {
            tracing::info!(
                leases = released,
                owner = %self.owner,
                "took back the leases of this broker identity's previous run"
            );
        }
        Ok(released)
    }

    /// The lease end for a claim made now.
    pub fn lease_until(&self, now: i64) -> i64 {
        now + self.settings.lease().as_millis() as i64
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
            state: OperationState::InProgress.as_str().into(),
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

    async fn claim_orphans(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = now_ms();
        for id in self.store.claimable_operations(now, CLAIM_BATCH).await? {
            if lock(&self.active).contains(&id) {
                continue;
            }
            if self
                .store
                .claim(&id, &self.owner, now, self.lease_until(now))
                .await?
            {
                tracing::info!(operation.id = %id, "claimed operation");
                self.start(&id);
            }
        }
        Ok(())
    }

    /// Starts an unbind for every ready binding whose credentials expired (when bindings
    /// expire at all). Two brokers may race here: the one-operation-per-binding index lets
    /// only one unbind in.
    async fn expire_bindings(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(validity) = self.bindings.validity_secs else {
            return Ok(());
        };
        let validity_ms = i64::try_from(validity.saturating_mul(1000)).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(validity_ms);
        for (binding_id, instance_id) in self.store.expired_bindings(cutoff, CLAIM_BATCH).await? {
            let op = self.new_operation(
                Some(common::new_request_id()),
                None,
                &instance_id,
                Some(&binding_id),
                OperationKind::Unbind,
                &OperationPayload::default(),
            );
            let op_id = op.id.clone();
            match self.store.begin_unbind(op, None).await {
                Ok(Outcome::Done) => {
                    tracing::info!(binding.id = %binding_id, operation.id = %op_id, "binding expired; revoking its credentials");
                    self.start(&op_id);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(binding.id = %binding_id, error = %e, "expired binding is being processed already")
                }
            }
        }
        Ok(())
    }

    /// Stops every operation task of this process (their leases expire and another broker, or
    /// this one restarted, takes them over).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        lock(&self.tasks).abort_all();
    }

    /// Stops claiming and starting operations (the broker is stopping; requests still in
    /// flight may insert operations, which `hand_back` then releases).
    pub fn stop_claiming(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Graceful stop: no more claims, every operation task ended, then every lease of this
    /// process cleared so another broker takes the operations over at its next poll instead of
    /// waiting for the leases to expire. Repeating the interrupted step is safe (every step is
    /// idempotent), and a write the aborted task still had under way is lease-checked, so it
    /// cannot land after the release. How many leases were handed back.
    pub async fn hand_back(&self) -> Result<usize, StoreError> {
        self.stop_claiming();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let released = self.store.release_leases_of(&self.owner).await?;
        tracing::info!(leases = released, "journal stopped; leases handed back");
        Ok(released)
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
                if op.state != "in progress" {
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

    async fn drive(self: &Arc<Self>, op_id: &str) {
        let span = tracing::info_span!("operation", operation.id = %op_id);
        async {
            let lease = self.settings.lease();
            // Renewal runs beside the steps; when it fails (cancelled or taken over) the step
            // future is dropped mid-call, and the step's own lease-checked writes could not
            // have landed anyway.
            let renew = async {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let until = self.lease_until(now_ms());
                    match self.store.renew_lease(op_id, &self.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
                    }
                }
            };
            let outcome = tokio::select! {
                r = self.execute(op_id) => r,
                () = renew => Err(StepError::LeaseLost),
            };
            match outcome {
                Ok(()) => {}
                Err(StepError::LeaseLost) => {
                    tracing::info!("operation cancelled or taken over; this worker stops");
                    if let Err(e) = self.store.release_lease(op_id, &self.owner).await {
                        tracing::warn!(error = %e, "lease release failed");
                    }
                }
                Err(StepError::Store(e)) => tracing::error!(
                    error = %e,
                    "journal write failed; the operation resumes when its lease expires"
                ),
                Err(other) => tracing::error!(error = ?other, "operation stopped unexpectedly"),
            }
        }
        .instrument(span)
        .await
    }

    async fn load(&self, op_id: &str) -> Result<Option<OpCtx>, StepError> {
        let Some(op) = self.store.operation(op_id).await? else {
            return Ok(None);
        };
        if op.state != "in progress" || op.lease_owner.as_deref() != Some(self.owner.as_str()) {
            return Err(StepError::LeaseLost);
        }
        let kind = OperationKind::parse(&op.kind)
            .ok_or_else(|| StepError::Internal(anyhow!("unknown operation kind {:?}", op.kind)))?;
        let Some((instance, _)) = self.store.instance(&op.instance_id).await? else {
            return Err(StepError::Internal(anyhow!(
                "the operation's instance is missing"
            )));
        };
        let binding = match &op.binding_id {
            Some(id) => self.store.binding(id).await?.map(|(b, _)| b),
            None => None,
        };
        let payload = OperationPayload::decode(&op.payload);
        let plan_id = payload.plan_id.as_deref().unwrap_or(&instance.plan_id);
        let max_secs = self
            .catalog
            .snapshot()
            .plan(&instance.service_id, plan_id)
            .ok()
            .and_then(|(_, plan)| plan.maximum_polling_duration)
            // The broker's own limit also caps the plan's (an operator may want it shorter).
            .map_or(self.settings.max_operation_secs, |plan| {
                plan.min(self.settings.max_operation_secs)
            });
        let call = CallContext {
            request_id: op.request_id.clone(),
            originating_identity: op.originating_identity.clone(),
        };
        Ok(Some(OpCtx {
            deadline_ms: op.created_at_ms + (max_secs as i64) * 1000,
            max_secs,
            kind,
            payload,
            instance,
            binding,
            call,
            op,
        }))
    }

    async fn execute(&self, op_id: &str) -> Result<(), StepError> {
        loop {
            let ctx = match self.load(op_id).await {
                Ok(Some(ctx)) => ctx,
                Ok(None) => return Ok(()),
                Err(StepError::Internal(e)) => {
                    // A row this build cannot run would otherwise be claimed again forever.
                    tracing::error!(error = format!("{e:#}"), "operation cannot be run");
                    let changes = OperationChanges {
                        state: Some(OperationState::Failed.as_str().into()),
                        description: Some(format!("internal error; operation {op_id}")),
                        lease_owner: Some(None),
                        lease_expires_ms: Some(None),
                        finished_at_ms: Some(Some(now_ms())),
                        ..Default::default()
                    };
                    self.store
                        .advance(op_id, &self.owner, changes, vec![])
                        .await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let span = tracing::info_span!(
                "step",
                operation.kind = ctx.kind.as_str(),
                step = %ctx.op.step,
                instance.id = %ctx.op.instance_id,
                binding.id = ctx.op.binding_id.as_deref().unwrap_or(""),
                request.id = ctx.op.request_id.as_deref().unwrap_or(""),
            );
            let result = async {
                let step = Step::parse(&ctx.op.step).ok_or_else(|| {
                    StepError::Internal(anyhow!("unknown step {:?}", ctx.op.step))
                })?;
                tracing::debug!("running step");
                match (ctx.kind, step) {
                    (OperationKind::Provision | OperationKind::Update, Step::Spec) => {
                        self.step_spec(&ctx).await
                    }
                    (OperationKind::Provision | OperationKind::Update, Step::Deploy) => {
                        self.step_deploy(&ctx).await
                    }
                    (
                        OperationKind::Provision
                        | OperationKind::Update
                        | OperationKind::Deprovision,
                        Step::Wait,
                    ) => self.step_wait(&ctx).await,
                    (OperationKind::Deprovision, Step::Delete) => {
                        self.step_delete_deployment(&ctx).await
                    }
                    (OperationKind::Bind, Step::Create) => self.step_bind(&ctx).await,
                    (OperationKind::Unbind, Step::Delete) => self.step_unbind(&ctx).await,
                    (kind, step) => Err(StepError::Internal(anyhow!(
                        "no step {} for a {} operation",
                        step.as_str(),
                        kind.as_str()
                    ))),
                }
            }
            .instrument(span.clone())
            .await;
            match result {
                Ok(Flow::Continue) => continue,
                Ok(Flow::Finished) => return Ok(()),
                Err(e @ (StepError::LeaseLost | StepError::Store(_))) => return Err(e),
                Err(failure) => {
                    return self.fail(&ctx, failure).instrument(span).await;
                }
            }
        }
    }

    /// Writes a step result; a lost lease stops the worker.
    async fn advance(
        &self,
        ctx: &OpCtx,
        changes: OperationChanges,
        effects: Vec<Effect>,
    ) -> Result<(), StepError> {
        if self
            .store
            .advance(&ctx.op.id, &self.owner, changes, effects)
            .await?
        {
            Ok(())
        } else {
            Err(StepError::LeaseLost)
        }
    }

    /// Moves to `step` with a new description and payload.
    async fn next_step(
        &self,
        ctx: &OpCtx,
        step: Step,
        description: String,
        payload: &OperationPayload,
        effects: Vec<Effect>,
    ) -> Result<Flow, StepError> {
        let changes = OperationChanges {
            step: Some(step.as_str().into()),
            description: Some(description),
            payload: Some(payload.encode()),
            ..Default::default()
        };
        self.advance(ctx, changes, effects).await?;
        Ok(Flow::Continue)
    }

    /// Ends the operation successfully, releasing the lease.
    async fn succeed(
        &self,
        ctx: &OpCtx,
        payload: &OperationPayload,
        effects: Vec<Effect>,
    ) -> Result<Flow, StepError> {
        let changes = OperationChanges {
            state: Some(OperationState::Succeeded.as_str().into()),
            description: Some(ctx.kind.success_description().into()),
            step: Some(Step::Done.as_str().into()),
            payload: Some(payload.encode()),
            lease_owner: Some(None),
            lease_expires_ms: Some(None),
            finished_at_ms: Some(Some(now_ms())),
            ..Default::default()
        };
        self.advance(ctx, changes, effects).await?;
        tracing::info!(
            operation.kind = ctx.kind.as_str(),
            duration_ms = now_ms() - ctx.op.created_at_ms,
            "operation succeeded"
        );
        Ok(Flow::Finished)
    }

    /// Ends the operation as failed with a user-facing description, releasing the lease.
    async fn fail(&self, ctx: &OpCtx, failure: StepError) -> Result<(), StepError> {
        let mut payload = ctx.payload.clone();
        payload.new_spec_enc = None;
        let description = match failure {
            StepError::Refused {
                status,
                description,
            } => {
                payload.error_status = Some(status);
                description
            }
            StepError::Failed(description) => description,
            StepError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "operation failed unexpectedly");
                format!(
                    "internal error; request id {}",
                    ctx.op.request_id.as_deref().unwrap_or(&ctx.op.id)
                )
            }
            e @ (StepError::LeaseLost | StepError::Store(_)) => return Err(e),
        };
        tracing::warn!(
            operation.kind = ctx.kind.as_str(),
            description = %description,
            "operation failed"
        );
        let failed = |state: &str| InstanceChanges {
            state: Some(state.into()),
            ..Default::default()
        };
        let effects = match ctx.kind {
            OperationKind::Provision | OperationKind::Deprovision => vec![Effect::Instance {
                id: ctx.instance.id.clone(),
                changes: failed("failed"),
            }],
            // A failed update leaves the instance as it was.
            OperationKind::Update => vec![],
            OperationKind::Bind | OperationKind::Unbind => match &ctx.binding {
                Some(b) => vec![Effect::Binding {
                    id: b.id.clone(),
                    changes: BindingChanges {
                        state: Some("failed".into()),
                        ..Default::default()
                    },
                }],
                None => vec![],
            },
        };
        let changes = OperationChanges {
            state: Some(OperationState::Failed.as_str().into()),
            description: Some(description),
            payload: Some(payload.encode()),
            lease_owner: Some(None),
            lease_expires_ms: Some(None),
            finished_at_ms: Some(Some(now_ms())),
            ..Default::default()
        };
        self.advance(ctx, changes, effects).await
    }

    /// Calls a callee, retrying transport errors and 5xx with backoff until the operation's
    /// deadline; a 4xx is a refusal, and a TLS handshake failed on a certificate fails the
    /// operation at once.
    async fn call<T, F, Fut>(&self, ctx: &OpCtx, callee: &str, mut f: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() => {
                    if now_ms() >= ctx.deadline_ms {
                        return Err(StepError::Failed(format!(
                            "{callee} did not answer within the maximum polling duration of {} s; the operation failed",
                            ctx.max_secs
                        )));
                    }
                    tracing::warn!(
                        callee,
                        error = %e,
                        retry_in_ms = delay.as_millis() as u64,
                        "internal call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
                Err(ClientError::Status {
                    status, envelope, ..
                }) if (400..500).contains(&status) => {
                    let description = if callee == DEPLOYER {
                        format!("the deployer refused: {}", envelope.description)
                    } else {
                        envelope.description
                    };
                    return Err(StepError::Refused {
                        status,
                        description,
                    });
                }
                Err(e) => {
                    if let Some(reason) = e.certificate_refusal() {
                        // Permanent: no retry until the deadline for what only an operator
                        // can fix.
                        tracing::error!(callee, error = %e, "internal call refused on a certificate");
                        return Err(StepError::Failed(format!(
                            "{callee} cannot be called: the TLS handshake failed on a certificate ({reason}); the operation failed"
                        )));
                    }
                    return Err(StepError::Internal(
                        anyhow::Error::new(e).context(format!("calling {callee}")),
                    ));
                }
            }
        }
    }

    /// The SPI owning the instance's offering; waits (until the deadline) for it to appear
    /// in the catalog if its SPI was down when the catalog was last fetched.
    async fn spi(&self, ctx: &OpCtx) -> Result<NamedSpi, StepError> {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            if let Some(routed) = self.catalog.snapshot().service(&ctx.instance.service_id) {
                return Ok(NamedSpi::clone(&routed.spi));
            }
            if now_ms() >= ctx.deadline_ms {
                return Err(StepError::Failed(format!(
                    "no SPI publishes service {} any more",
                    ctx.instance.service_id
                )));
            }
            tracing::warn!(service.id = %ctx.instance.service_id, "offering not in the catalog; refreshing");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
            self.catalog.refresh().await;
        }
    }

    fn current_spec(&self, instance: &InstanceRow) -> Result<Option<DeploymentSpec>, StepError> {
        instance
            .deployment_spec_enc
            .as_deref()
            .map(|enc| self.cipher.decrypt_json(enc))
            .transpose()
            .map_err(StepError::from)
    }

    fn parameters(json: &str) -> Result<JsonObject, StepError> {
        serde_json::from_str(json)
            .context("stored parameters")
            .map_err(StepError::Internal)
    }

    async fn step_spec(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let spi = self.spi(ctx).await?;
        let current = Self::parameters(&ctx.instance.parameters)?;
        let (plan_id, parameters, previous) = match ctx.kind {
            OperationKind::Update => (
                ctx.payload
                    .plan_id
                    .clone()
                    .unwrap_or_else(|| ctx.instance.plan_id.clone()),
                match &ctx.payload.parameters {
                    Some(update) => merge_parameters(&current, update),
                    None => current,
                },
                self.current_spec(&ctx.instance)?,
            ),
            _ => (ctx.instance.plan_id.clone(), current, None),
        };
        let request = DeploymentSpecRequest {
            instance_id: ctx.instance.id.clone().into(),
            service_id: ctx.instance.service_id.clone().into(),
            plan_id: plan_id.into(),
            parameters,
            previous,
        };
        let response = self
            .call(ctx, &spi.name, || {
                spi.client.deployment_spec(&request, &ctx.call)
            })
            .await?;
        let spec_enc = self.cipher.encrypt_json(&response.spec)?;
        let mut payload = ctx.payload.clone();
        payload.spi_description = Some(response.description.clone());
        let effects = match ctx.kind {
            OperationKind::Update => {
                // The instance keeps its spec until the update succeeds.
                payload.new_spec_enc = Some(spec_enc);
                vec![]
            }
            _ => vec![Effect::Instance {
                id: ctx.instance.id.clone(),
                changes: InstanceChanges {
                    deployment_name: Some(Some(response.spec.name.to_string())),
                    deployment_spec_enc: Some(Some(spec_enc)),
                    ..Default::default()
                },
            }],
        };
        let description = progress_description(Some(&response.description), "");
        self.next_step(ctx, Step::Deploy, description, &payload, effects)
            .await
    }

    async fn step_deploy(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let spec: DeploymentSpec = match (ctx.kind, &ctx.payload.new_spec_enc) {
            (OperationKind::Update, Some(enc)) => self.cipher.decrypt_json(enc)?,
            _ => self.current_spec(&ctx.instance)?.ok_or_else(|| {
                StepError::Internal(anyhow!("the instance has no deployment spec"))
            })?,
        };
        let task = self
            .call(ctx, DEPLOYER, || {
                self.deployer.put_deployment(&spec, &ctx.call)
            })
            .await?;
        let mut payload = ctx.payload.clone();
        payload.task_id = Some(task.id.to_string());
        let description =
            progress_description(ctx.payload.spi_description.as_deref(), &task.progress);
        self.next_step(ctx, Step::Wait, description, &payload, vec![])
            .await
    }

    async fn step_wait(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let Some(task_id) = ctx.payload.task_id.clone() else {
            return Err(StepError::Internal(anyhow!("no deployer task to wait for")));
        };
        let mut shown = ctx.op.description.clone();
        loop {
            if now_ms() >= ctx.deadline_ms {
                return Err(StepError::Failed(format!(
                    "{} did not finish within the maximum polling duration of {} s; the operation failed",
                    ctx.kind.as_str(),
                    ctx.max_secs
                )));
            }
            let task = match self
                .call(ctx, DEPLOYER, || {
                    self.deployer.get_task(&task_id, &ctx.call)
                })
                .await
            {
                Ok(task) => task,
                Err(StepError::Refused { status: 404, .. }) => {
                    // The deployer forgot the task: apply (or delete) again; both are
                    // idempotent by deployment name.
                    tracing::warn!(task.id = %task_id, "deployer task unknown; repeating the request");
                    let mut payload = ctx.payload.clone();
                    payload.task_id = None;
                    let step = match ctx.kind {
                        OperationKind::Deprovision => Step::Delete,
                        _ => Step::Deploy,
                    };
                    return self.next_step(ctx, step, shown, &payload, vec![]).await;
                }
                Err(e) => return Err(e),
            };
            match task.state {
                TaskState::Succeeded => return self.finish(ctx).await,
                TaskState::Failed => {
                    let what = ctx
                        .payload
                        .spi_description
                        .clone()
                        .unwrap_or_else(|| ctx.kind.initial_description().to_string());
                    let why = task.error.unwrap_or(task.progress);
                    return Err(StepError::Failed(format!("{what} failed: {why}")));
                }
                TaskState::Queued | TaskState::Running => {
                    let description = progress_description(
                        ctx.payload.spi_description.as_deref(),
                        &task.progress,
                    );
                    if description != shown {
                        let changes = OperationChanges {
                            description: Some(description.clone()),
                            ..Default::default()
                        };
                        self.advance(ctx, changes, vec![]).await?;
                        shown = description;
                    }
                    tokio::time::sleep(self.settings.poll_interval()).await;
                }
            }
        }
    }

    /// The deployer task ended well: record the outcome on the instance.
    async fn finish(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let mut payload = ctx.payload.clone();
        let mut changes = InstanceChanges::default();
        let mut effects = vec![];
        match ctx.kind {
            OperationKind::Deprovision => {
                changes.state = Some("deleted".into());
                changes.deployment_spec_enc = Some(None);
                changes.endpoints = Some(None);
                effects.push(Effect::DeleteBindingsOf {
                    instance_id: ctx.instance.id.clone(),
                });
            }
            OperationKind::Provision | OperationKind::Update => {
                let name = ctx.instance.deployment_name.clone().ok_or_else(|| {
                    StepError::Internal(anyhow!("the instance has no deployment name"))
                })?;
                let deployment = self
                    .call(ctx, DEPLOYER, || {
                        self.deployer.get_deployment(&name, &ctx.call)
                    })
                    .await?;
                let endpoints = serde_json::to_string(&deployment.endpoints)
                    .map_err(|e| StepError::Internal(e.into()))?;
                changes.endpoints = Some(Some(endpoints));
                if ctx.kind == OperationKind::Provision {
                    changes.state = Some("ready".into());
                } else {
                    let current = Self::parameters(&ctx.instance.parameters)?;
                    if let Some(update) = &ctx.payload.parameters {
                        let merged = merge_parameters(&current, update);
                        changes.parameters = Some(
                            serde_json::to_string(&merged)
                                .map_err(|e| StepError::Internal(e.into()))?,
                        );
                    }
                    changes.plan_id = ctx.payload.plan_id.clone();
                    if let Some(v) = &ctx.payload.maintenance_version {
                        changes.maintenance_version = Some(Some(v.clone()));
                    }
                    if let Some(context) = &ctx.payload.context {
                        changes.context = Some(serde_json::to_string(context).ok());
                    }
                    changes.deployment_spec_enc = Some(payload.new_spec_enc.take());
                }
            }
            OperationKind::Bind | OperationKind::Unbind => {
                return Err(StepError::Internal(anyhow!(
                    "a binding operation has no deployer task"
                )))
            }
        }
        effects.insert(
            0,
            Effect::Instance {
                id: ctx.instance.id.clone(),
                changes,
            },
        );
        self.succeed(ctx, &payload, effects).await
    }

    /// Waits until no other worker holds a live lease on the instance (or binding): a
    /// cancelled provision or bind may still be finishing an external call.
    async fn wait_for_cancelled(
        &self,
        ctx: &OpCtx,
        binding: Option<&str>,
    ) -> Result<(), StepError> {
        loop {
            let now = now_ms();
            if !self
                .store
                .lease_held_elsewhere(&ctx.op.instance_id, binding, &ctx.op.id, now)
                .await?
            {
                return Ok(());
            }
            if now >= ctx.deadline_ms {
                return Err(StepError::Failed(
                    "the cancelled operation did not stop in time".into(),
                ));
            }
            tracing::debug!("waiting for the cancelled operation's worker to stop");
            tokio::time::sleep(self.settings.poll_interval()).await;
        }
    }

    async fn step_delete_deployment(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        self.wait_for_cancelled(ctx, None).await?;
        // Read again: a cancelled provision may have named the deployment meanwhile.
        let instance = match self.store.instance(&ctx.instance.id).await? {
            Some((instance, _)) => instance,
            None => return Err(StepError::Internal(anyhow!("the instance is missing"))),
        };
        let Some(name) = instance.deployment_name.clone() else {
            return self.finish(ctx).await;
        };
        match self
            .call(ctx, DEPLOYER, || {
                self.deployer
                    .delete_owned_deployment(&name, &ctx.instance.id, &ctx.call)
            })
            .await
        {
            Ok(task) => {
                let mut payload = ctx.payload.clone();
                payload.task_id = Some(task.id.to_string());
                payload.spi_description = Some("deleting deployment".into());
                let description = progress_description(Some("deleting deployment"), &task.progress);
                self.next_step(ctx, Step::Wait, description, &payload, vec![])
                    .await
            }
            // Already gone.
            Err(StepError::Refused { status: 404, .. }) => self.finish(ctx).await,
            // The name belongs to another instance's deployment (this instance's own deploy
            // was refused): this instance has none, and the other one's is left alone.
            Err(StepError::Refused { status: 409, .. }) => {
                tracing::warn!(deployment.name = %name, "the deployment belongs to another instance; not deleting it");
                self.finish(ctx).await
            }
            Err(e) => Err(e),
        }
    }

    fn admin_and_endpoints(
        &self,
        instance: &InstanceRow,
    ) -> Result<Option<(DeploymentSpec, Vec<DeploymentEndpoint>)>, StepError> {
        let Some(spec) = self.current_spec(instance)? else {
            return Ok(None);
        };
        let endpoints: Vec<DeploymentEndpoint> = match &instance.endpoints {
            Some(json) => serde_json::from_str(json)
                .context("stored endpoints")
                .map_err(StepError::Internal)?,
            None => vec![],
        };
        Ok(Some((spec, endpoints)))
    }

    async fn step_bind(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let binding = ctx
            .binding
            .as_ref()
            .ok_or_else(|| StepError::Internal(anyhow!("the operation's binding is missing")))?;
        let spi = self.spi(ctx).await?;
        let (spec, endpoints) = self.admin_and_endpoints(&ctx.instance)?.ok_or_else(|| {
            StepError::Failed("the service instance has no deployment to bind to".into())
        })?;
        let request = CreateBindingRequest {
            instance_id: ctx.instance.id.clone().into(),
            binding_id: binding.id.clone().into(),
            service_id: binding.service_id.clone().into(),
            plan_id: binding.plan_id.clone().into(),
            parameters: Some(Self::parameters(&binding.parameters)?).filter(|p| !p.is_empty()),
            endpoints,
            admin: spec.admin,
        };
        let response = self
            .call(ctx, &spi.name, || {
                spi.client.create_binding(&request, &ctx.call)
            })
            .await?;
        let credentials_enc = self.cipher.encrypt_json(&response.credentials)?;
        let endpoints = serde_json::to_string(&response.endpoints)
            .map_err(|e| StepError::Internal(e.into()))?;
        let effects = vec![Effect::Binding {
            id: binding.id.clone(),
            changes: BindingChanges {
                state: Some("ready".into()),
                credentials_enc: Some(Some(credentials_enc)),
                endpoints: Some(Some(endpoints)),
                ..Default::default()
            },
        }];
        self.succeed(ctx, &ctx.payload, effects).await
    }

    async fn step_unbind(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let binding = ctx
            .binding
            .as_ref()
            .ok_or_else(|| StepError::Internal(anyhow!("the operation's binding is missing")))?;
        self.wait_for_cancelled(ctx, Some(&binding.id)).await?;
        // An instance without a deployment has no credentials to revoke.
        if let Some((spec, endpoints)) = self.admin_and_endpoints(&ctx.instance)? {
            let spi = self.spi(ctx).await?;
            let request = DeleteBindingRequest {
                instance_id: ctx.instance.id.clone().into(),
                binding_id: binding.id.clone().into(),
                endpoints,
                admin: spec.admin,
            };
            self.call(ctx, &spi.name, || {
                spi.client.delete_binding(&request, &ctx.call)
            })
            .await?;
        }
        let effects = vec![Effect::Binding {
            id: binding.id.clone(),
            changes: BindingChanges {
                state: Some("deleted".into()),
                credentials_enc: Some(None),
                ..Default::default()
            },
        }];
        self.succeed(ctx, &ctx.payload, effects).await
    }
}
