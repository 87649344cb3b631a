//! The tail of every use case that starts an operation: build the operation, store it together
//! with its instance or binding change, and once it is stored log it and start it at once.

use super::{Broker, RequestContext};
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::error::{BrokerError, RefusalStatus};
use crate::flows::{run_init_flows, FlowRefusal, FlowRequest};
use crate::store::models::OperationRow;
use crate::store::{now_ms, Outcome, StoreError};
use std::future::Future;

/// An operation to start.
pub(super) struct NewOperation<'a> {
    /// What it does.
    pub kind: OperationKind,
    /// The instance it is about.
    pub instance_id: &'a str,
    /// The binding it is about, for binding operations.
    pub binding_id: Option<&'a str>,
    /// What it runs with.
    pub payload: OperationPayload,
    /// The operation it halts, if any (named in the log line).
    pub cancels: Option<&'a str>,
    /// The log line once it is stored.
    pub log: &'a str,
    /// The request as its event flows see it; `None` for an operation the broker starts on
    /// its own (no flows run for it).
    pub flow: Option<FlowRequest>,
}

impl<'a> NewOperation<'a> {
    /// An operation of `kind` on `instance_id` with an empty payload, logged as
    /// "`kind` accepted".
    pub fn new(kind: OperationKind, instance_id: &'a str, log: &'a str) -> Self {
        Self {
            kind,
            instance_id,
            binding_id: None,
            payload: OperationPayload::default(),
            cancels: None,
            log,
            flow: None,
        }
    }
}

/// How starting an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Started {
    /// Stored and started: its OSB operation.
    Running(String),
    /// Nothing written: a live row with this id exists.
    Exists,
    /// Nothing written: another operation is in progress or the state changed; the text says
    /// why.
    Busy(String),
}

impl Broker {
    /// Builds `new` (claimed by this process), stores it with `store` (which writes it together
    /// with the change of its instance or binding), and when it is written logs it and hands it
    /// to the journal.
    pub(super) async fn start_operation<F, Fut>(
        &self,
        ctx: &RequestContext,
        new: NewOperation<'_>,
        store: F,
    ) -> Result<Started, BrokerError>
    where
        F: FnOnce(OperationRow) -> Fut,
        Fut: Future<Output = Result<Outcome, StoreError>>,
    {
        let payload = OperationPayload {
            tracing_id: ctx.tracing_id.clone(),
            ..new.payload.clone()
        };
        let mut op = self.journal.new_operation(
            Some(ctx.request_id.clone()),
            ctx.originating_identity.clone(),
            new.instance_id,
            new.binding_id,
            new.kind,
            &payload,
        );
        let operation = op.id.clone();
        let recorded = match new.flow {
            Some(mut request) => {
                request.operation = Some(operation.clone());
                run_init_flows(self.flows.registry(), &request)
                    .await
                    .map_err(refused)?;
                // The flows may have taken a while: the lease starts now.
                let now = now_ms();
                (op.created_at_ms, op.updated_at_ms) = (now, now);
                op.lease_expires_ms = Some(self.journal.lease_until(now));
                self.flows.record(&request).await?
            }
            None => false,
        };
        let stored = store(op).await;
        if recorded && wrote_nothing(&stored) {
            self.flows.forget(&operation).await;
        }
        Ok(match stored? {
            Outcome::Done => {
                tracing::info!(
                    instance.id = %new.instance_id,
                    binding.id = new.binding_id,
                    operation.id = %operation,
                    cancelled = new.cancels,
                    "{}",
                    new.log
                );
                self.journal.start(&operation);
                Started::Running(operation)
            }
            Outcome::Exists => Started::Exists,
            Outcome::Busy(why) => Started::Busy(why),
        })
    }
}

/// Whether `stored` says for certain that the operation was not written (its flows row is
/// then removed at once). A query error may have come after the commit: such a row stays, and
/// is swept as an orphan if its operation never came.
fn wrote_nothing(stored: &Result<Outcome, StoreError>) -> bool {
    matches!(
        stored,
        Ok(Outcome::Exists | Outcome::Busy(_))
            | Err(StoreError::QuotaExceeded(_) | StoreError::RolledBack(_) | StoreError::Pool(_))
    )
}

/// The answer to a request an initialization flow refused.
pub(super) fn refused(refusal: FlowRefusal) -> BrokerError {
    BrokerError::Refused {
        status: RefusalStatus::Chosen(refusal.answered_status()),
        error: refusal.error,
        description: refusal.description,
    }
}
