//! Use cases of service bindings: bind, fetch, last_operation (unbind in `unbind.rs`). Bind
//! runs its operation at once and waits for it up to the synchronous window.

use super::instances::last_operation;
use super::start::{NewOperation, Started};
use super::{encode_object, Broker, LoadedBinding, LoadedInstance, RequestContext};
use crate::catalog::NamedSpi;
use crate::domain::binding::{
    check_instance_for_bind, decide_bind, expiry, fetchable, format_timestamp, BindAsk,
    BindDecision, BindingState,
};
use crate::domain::instance::InstanceState;
use crate::domain::operation::{OperationKind, OperationPayload};
use crate::domain::plan::check_bind_plan;
use crate::error::{BrokerError, RefusalStatus};
use crate::flows::{FlowKind, FlowRequest};
use crate::store::models::{BindingRow, InstanceRow, OperationRow};
use crate::store::now_ms;
use common::osb::{
    BindRequest, BindingMetadata, BindingResponse, Endpoint, JsonObject, LastOperationResponse,
    OperationState,
};
use common::spi::ValidateBindingRequest;

/// How a bind request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BindOutcome {
    /// Created by this request: 201 with credentials.
    Created(BindingResponse),
    /// The same binding existed: 200 with credentials.
    Existing(BindingResponse),
    /// Still being created (the client accepts async): 202.
    Accepted {
        /// The OSB operation.
        operation: String,
    },
}

fn binding_not_found(binding_id: &str) -> BrokerError {
    BrokerError::NotFound(format!("service binding {binding_id} not found"))
}

/// The answer of a bind overtaken by a concurrent unbind of the same binding: 422
/// `ConcurrencyError`, after which a platform performs no orphan mitigation (the unbind
/// removes whatever the bind created).
fn unbound_meanwhile() -> BrokerError {
    BrokerError::Concurrency(
        "a concurrent unbind of this service binding cancelled the bind; the binding is being deleted"
            .into(),
    )
}

fn deprovisioned_meanwhile() -> BrokerError {
    BrokerError::Concurrency(
        "a concurrent deprovision of the service instance cancelled the bind".into(),
    )
}

/// The answer for a binding operation that failed: the SPI's refusal passes through, anything
/// else is internal.
pub(super) fn failure(op: &OperationRow) -> BrokerError {
    let payload = OperationPayload::decode(&op.payload);
    match payload.error_status {
        Some(422) => BrokerError::Refused {
            status: RefusalStatus::Unprocessable,
            error: None,
            description: op.description.clone(),
        },
        Some(400..=499) => BrokerError::Refused {
            status: RefusalStatus::BadRequest,
            error: None,
            description: op.description.clone(),
        },
        _ => BrokerError::internal(anyhow::anyhow!(
            "{} operation {} failed: {}",
            op.kind,
            op.id,
            op.description
        )),
    }
}

/// The row of a new binding.
fn binding_row(instance_id: &str, binding_id: &str, ask: &BindAsk) -> BindingRow {
    BindingRow {
        parameters: encode_object(&ask.parameters),
        context: ask.context.as_ref().map(encode_object),
        bind_resource: ask.bind_resource.as_ref().map(encode_object),
        app_guid: ask.app_guid.clone(),
        ..BindingRow::bare(
            binding_id,
            instance_id,
            &ask.service_id,
            &ask.plan_id,
            BindingState::Creating,
            now_ms(),
        )
    }
}

/// Where a bind stands once the stored binding was looked at (and created, if need be).
enum BindStart {
    /// Answered from what is stored.
    Answered(BindOutcome),
    /// Its bind operation runs: started by this request (`created_here`) or by an identical
    /// earlier one.
    Running {
        operation: String,
        created_here: bool,
    },
}

impl Broker {
    /// The binding body of a ready binding (credentials decrypted).
    fn binding_response(
        &self,
        row: &BindingRow,
        with_parameters: bool,
    ) -> Result<BindingResponse, BrokerError> {
        let credentials: Option<JsonObject> = row
            .credentials_enc
            .as_deref()
            .map(|enc| self.cipher.decrypt_json(enc))
            .transpose()?;
        let endpoints: Option<Vec<Endpoint>> =
            row.endpoint_list().map_err(BrokerError::internal)?;
        let parameters = if with_parameters {
            Some(row.parameters_object().map_err(BrokerError::internal)?)
        } else {
            None
        };
        let metadata = self.bindings.validity_secs.map(|validity| {
            let (expires, renew) =
                expiry(row.created_at_ms, validity, self.bindings.renew_before_secs);
            BindingMetadata {
                expires_at: Some(format_timestamp(expires)),
                renew_before: Some(format_timestamp(renew)),
            }
        });
        Ok(BindingResponse {
            metadata,
            credentials: Some(credentials.unwrap_or_default()),
            endpoints: endpoints.filter(|e| !e.is_empty()),
            parameters,
            ..Default::default()
        })
    }

    /// `PUT /v2/service_instances/{id}/service_bindings/{bid}`.
    pub async fn bind(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: &str,
        body: BindRequest,
        accepts_incomplete: bool,
    ) -> Result<BindOutcome, BrokerError> {
        // A rotation request may leave out everything but the predecessor: the rest is the
        // predecessor's.
        let predecessor = match body.predecessor_binding_id.as_deref() {
            Some(predecessor) => Some(self.rotation_source(instance_id, predecessor).await?),
            None => None,
        };
        let inherited = predecessor.as_ref().map(|p| p.view().attributes);
        let ask = BindAsk::from_request(body, inherited.as_ref())?;
        let snapshot = self.catalog_for(&ask.service_id).await;
        let (routed, plan) = snapshot
            .plan(&ask.service_id, &ask.plan_id)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        check_bind_plan(&routed.service, plan, ask.rotation)?;
        let instance = self.instance_to_bind(&ask, instance_id).await?;
        let started = self
            .start_or_join_bind(ctx, binding_id, &ask, &routed.spi, &instance.row)
            .await?;
        match started {
            BindStart::Answered(outcome) => Ok(outcome),
            BindStart::Running {
                operation,
                created_here,
            } => {
                self.await_bind(
                    ctx,
                    instance_id,
                    binding_id,
                    operation,
                    accepts_incomplete,
                    created_here,
                )
                .await
            }
        }
    }

    /// Looks at the stored binding: answers a repeat of a ready one, joins a running bind, or
    /// creates the binding and starts its bind (in a second round when a concurrent identical
    /// request inserted in between).
    async fn start_or_join_bind(
        &self,
        ctx: &RequestContext,
        binding_id: &str,
        ask: &BindAsk,
        spi: &NamedSpi,
        instance: &InstanceRow,
    ) -> Result<BindStart, BrokerError> {
        for _ in 0..2 {
            let existing = self.load_binding(binding_id).await?;
            let view = existing.as_ref().map(LoadedBinding::view);
            match decide_bind(view.as_ref(), &instance.id, &ask.attributes(), &ask.target) {
                BindDecision::Create => {}
                BindDecision::AlreadyReady => {
                    let existing = existing.ok_or_else(|| binding_not_found(binding_id))?;
                    let body = self.binding_response(&existing.row, false)?;
                    return Ok(BindStart::Answered(BindOutcome::Existing(body)));
                }
                BindDecision::InProgress(operation) => {
                    return Ok(BindStart::Running {
                        operation,
                        created_here: false,
                    })
                }
                BindDecision::Conflict(d) => return Err(BrokerError::Conflict(d)),
                BindDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            }
            match self
                .create_binding(ctx, binding_id, ask, spi, instance)
                .await?
            {
                Started::Running(operation) => {
                    return Ok(BindStart::Running {
                        operation,
                        created_here: true,
                    })
                }
                Started::Exists => continue,
                Started::Busy(d) => return Err(BrokerError::Concurrency(d)),
            }
        }
        Err(BrokerError::Concurrency(
            "the service binding is being created by a concurrent request; retry".into(),
        ))
    }

    /// Whether the instance is being (or was) deprovisioned.
    async fn being_deprovisioned(&self, instance_id: &str) -> Result<bool, BrokerError> {
        Ok(self.load_instance(instance_id).await?.is_none_or(|i| {
            matches!(
                i.state(),
                InstanceState::Deprovisioning | InstanceState::Deleted
            )
        }))
    }

    /// The instance a bind goes to, if the bind may go to it.
    async fn instance_to_bind(
        &self,
        ask: &BindAsk,
        instance_id: &str,
    ) -> Result<LoadedInstance, BrokerError> {
        let instance = self.load_instance(instance_id).await?;
        let view = instance.as_ref().map(LoadedInstance::view);
        check_instance_for_bind(ask, instance_id, view.as_ref())?;
        instance.ok_or_else(|| {
            BrokerError::NotFound(format!("service instance {instance_id} not found"))
        })
    }

    /// Refuses a bind to a server known to be down, has the SPI validate the binding, then
    /// stores it with its bind operation and starts that.
    async fn create_binding(
        &self,
        ctx: &RequestContext,
        binding_id: &str,
        ask: &BindAsk,
        spi: &NamedSpi,
        instance: &InstanceRow,
    ) -> Result<Started, BrokerError> {
        // Fail fast: a bind to a dead server would only be retried until its deadline.
        self.check_server_up(&ctx.call(), instance).await?;
        let instance_id = instance.id.as_str();
        spi.client
            .validate_binding(
                &ValidateBindingRequest {
                    instance_id: instance_id.into(),
                    binding_id: binding_id.into(),
                    service_id: ask.service_id.clone().into(),
                    plan_id: ask.plan_id.clone().into(),
                    parameters: ask.sent_parameters.clone(),
                },
                &ctx.call(),
            )
            .await
            .map_err(|e| BrokerError::from_call(&spi.name, e))?;
        let row = binding_row(instance_id, binding_id, ask);
        let flow = FlowRequest::new(FlowKind::Bind, ctx, instance_id, Some(binding_id))
            .offering(Some(&ask.service_id), Some(&ask.plan_id))
            .sent(ask.context.as_ref());
        let new = NewOperation {
            binding_id: Some(binding_id),
            flow: Some(flow),
            ..NewOperation::new(OperationKind::Bind, instance_id, "bind accepted")
        };
        self.start_operation(ctx, new, |op| self.store.create_binding(row, op))
            .await
    }

    /// The predecessor of a rotation: a ready binding of the same instance, else a 400.
    async fn rotation_source(
        &self,
        instance_id: &str,
        predecessor: &str,
    ) -> Result<LoadedBinding, BrokerError> {
        common::ids::validate_id("predecessor_binding_id", predecessor)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        self.load_binding(predecessor)
            .await?
            .filter(|b| {
                fetchable(Some(&b.view()), instance_id)
            })
            .ok_or_else(|| {
                BrokerError::BadRequest(format!(
                    "predecessor_binding_id {predecessor} is not a binding of service instance {instance_id} that can be rotated"
                ))
            })
    }

    /// Waits up to the synchronous window for a bind operation.
    async fn await_bind(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: &str,
        operation: String,
        accepts_incomplete: bool,
        created_here: bool,
    ) -> Result<BindOutcome, BrokerError> {
        let finished = self
            .journal
            .wait_finished(&operation, self.worker.sync_timeout())
            .await?;
        match finished {
            Some(op) if op.state == OperationState::Succeeded => {
                let (row, _) = self
                    .store
                    .binding(binding_id)
                    .await?
                    .ok_or_else(|| binding_not_found(binding_id))?;
                if row.state != BindingState::Ready {
                    // An unbind began right after the bind ended: its credentials are going.
                    return Err(unbound_meanwhile());
                }
                let body = self.binding_response(&row, false)?;
                Ok(if created_here {
                    BindOutcome::Created(body)
                } else {
                    BindOutcome::Existing(body)
                })
            }
            Some(op) => {
                let state = self
                    .store
                    .binding(binding_id)
                    .await?
                    .map(|(row, _)| row.state);
                if state
                    .is_some_and(|s| matches!(s, BindingState::Deleting | BindingState::Deleted))
                {
                    // A concurrent unbind cancelled this bind and deletes what it created.
                    return Err(unbound_meanwhile());
                }
                if self.being_deprovisioned(instance_id).await? {
                    // A concurrent deprovision cancelled this bind; it removes the instance
                    // with everything bound to it.
                    return Err(deprovisioned_meanwhile());
                }
                // Nobody was told about this binding yet: leave no trace of it.
                self.store.remove_failed_binding(binding_id).await?;
                Err(failure(&op))
            }
            None if accepts_incomplete => Ok(BindOutcome::Accepted { operation }),
            None => {
                // The spec's answer is 422 AsyncRequired, after which the platform forgets the
                // request (no orphan mitigation for a 4xx): the binding this request started
                // must not survive it, so its creation is halted and undone.
                if created_here {
                    self.cancel_bind(ctx, instance_id, binding_id, &operation)
                        .await?;
                }
                Err(BrokerError::AsyncRequired)
            }
        }
    }

    /// Halts a bind operation and starts deleting what it may have created.
    async fn cancel_bind(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        binding_id: &str,
        bind_operation: &str,
    ) -> Result<(), BrokerError> {
        let new = NewOperation {
            binding_id: Some(binding_id),
            cancels: Some(bind_operation),
            ..NewOperation::new(
                OperationKind::Unbind,
                instance_id,
                "bind outran the synchronous window without accepts_incomplete; undoing it",
            )
        };
        let store = |op| {
            self.store
                .begin_unbind(op, Some(bind_operation.to_string()))
        };
        // Not written: the bind just ended, or another request already deletes the binding.
        self.start_operation(ctx, new, store).await?;
        Ok(())
    }

    /// `GET /v2/service_instances/{id}/service_bindings/{bid}`.
    pub async fn fetch_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<BindingResponse, BrokerError> {
        let existing = self.load_binding(binding_id).await?;
        if !fetchable(existing.as_ref().map(|b| b.view()).as_ref(), instance_id) {
            return Err(binding_not_found(binding_id));
        }
        let Some(existing) = existing else {
            return Err(binding_not_found(binding_id));
        };
        self.binding_response(&existing.row, true)
    }

    /// `GET …/service_bindings/{bid}/last_operation`; `operation` is only a hint.
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperationResponse, BrokerError> {
        let known = self
            .store
            .binding(binding_id)
            .await?
            .is_some_and(|(row, _)| row.instance_id == instance_id);
        if !known {
            return Err(binding_not_found(binding_id));
        }
        let op = self
            .store
            .latest_operation(instance_id, Some(binding_id), operation)
            .await?
            .ok_or_else(|| binding_not_found(binding_id))?;
        last_operation(&op.kind, op.state, &op.description)
    }
}
