//! Claiming and leases: who owns which operation, claiming orphaned ones, renewing a lease
//! while a step runs, and handing leases back when the broker stops.

use super::{lock, Journal, CLAIM_BATCH};
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::domain::policy;
use crate::store::{now_ms, Outcome, StoreError};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The lease owner id: `broker-<identity>` when one is configured, else `broker-<random>`.
pub(super) fn lease_owner(identity: Option<&str>) -> String {
    match identity {
        Some(identity) => format!("broker-{identity}"),
        None => format!("broker-{}", uuid::Uuid::new_v4()),
    }
}

impl Journal {
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
        policy::lease_until(now, self.settings.lease())
    }

    /// Claims and starts every operation whose lease is free or expired (and that this process
    /// does not drive already).
    pub(super) async fn claim_orphans(self: &Arc<Self>) -> Result<(), StoreError> {
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
    pub(super) async fn expire_bindings(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(validity) = self.bindings.validity_secs else {
            return Ok(());
        };
        let cutoff = policy::binding_expiry_cutoff(now_ms(), validity);
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

    /// Renews the lease on `op_id` every third of its duration; returns once the lease is
    /// gone (cancelled or taken over).
    pub(super) async fn keep_lease(&self, op_id: &str) {
        let lease = self.settings.lease();
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
    }
}
