//! Use cases of service instances: provision, update, deprovision, fetch, last_operation.

use super::health::unhealthy_description;
use super::{
    check_maintenance, encode_object, non_empty_if_present, required, Broker, RequestContext,
};
use crate::domain::identity::Placement;
use crate::domain::instance::{
    decide_deprovision, decide_fetch, decide_provision, decide_update, DeprovisionDecision,
    FetchDecision, InstanceState, ProvisionDecision, UpdateDecision, UpdateView,
};
use crate::domain::operation::{last_operation_view, OperationKind, OperationPayload};
use crate::domain::Attributes;
use crate::error::{BrokerError, RefusalStatus};
use crate::store::models::InstanceRow;
use crate::store::{now_ms, Outcome};
use common::client::{CallContext, ClientError};
use common::osb::{
    FetchInstanceResponse, InstanceMetadata, JsonObject, LastOperationResponse, MaintenanceInfo,
    OperationState, Plan, ProvisionRequest, Service, UpdateRequest,
};
use common::spi::{InstanceOperation, ValidateInstanceRequest};

/// How a provision request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionOutcome {
    /// Provisioning runs (new, or the same request repeated): 202.
    Accepted {
        /// The OSB operation.
        operation: String,
        /// Dashboard of the instance.
        dashboard_url: Option<String>,
        /// Labels and attributes of the instance.
        metadata: InstanceMetadata,
    },
    /// The same instance exists and is ready: 200.
    AlreadyReady {
        /// Dashboard of the instance.
        dashboard_url: Option<String>,
        /// Labels and attributes of the instance.
        metadata: InstanceMetadata,
    },
}

/// How an update request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing to do (a context was stored): 200 `{}`.
    Applied,
    /// The update runs: 202.
    Accepted {
        /// The OSB operation.
        operation: String,
    },
}

/// The instance metadata the platform is given: labels naming the offering and plan, and the
/// plan's maintenance version as an attribute.
fn instance_metadata(service: &Service, plan: &Plan) -> InstanceMetadata {
    let mut labels = JsonObject::new();
    labels.insert("service".into(), service.name.clone().into());
    labels.insert("plan".into(), plan.name.clone().into());
    let mut attributes = JsonObject::new();
    if let Some(m) = &plan.maintenance_info {
        attributes.insert("maintenance_version".into(), m.version.clone().into());
    }
    InstanceMetadata {
        labels: Some(labels),
        attributes: Some(attributes),
    }
}

/// The SPI's code for a plan change it does not allow.
const PLAN_CHANGE_NOT_ALLOWED: &str = "PlanChangeNotAllowed";

/// Maps an SPI refusal of an update: a plan change that is not supported is the spec's 422
/// ("the requested change is not supported"); everything else as any SPI call.
fn update_refusal(spi: &str, e: ClientError) -> BrokerError {
    match e {
        ClientError::Status {
            status: 400,
            envelope,
            ..
        } if envelope.error == PLAN_CHANGE_NOT_ALLOWED => BrokerError::Refused {
            status: RefusalStatus::Unprocessable,
            error: None,
            description: envelope.description,
        },
        other => BrokerError::from_call(spi, other),
    }
}

/// Whether the offering declares `allow_context_updates: true`.
fn context_updates_allowed(service: &Service) -> bool {
    service.allow_context_updates == Some(true)
}

fn not_found(instance_id: &str) -> BrokerError {
    BrokerError::NotFound(format!("service instance {instance_id} not found"))
}

impl Broker {
    /// `PUT /v2/service_instances/{id}`.
    pub async fn provision(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        body: ProvisionRequest,
        accepts_incomplete: bool,
    ) -> Result<ProvisionOutcome, BrokerError> {
        let service_id = required(body.service_id, "service_id")?;
        let plan_id = required(body.plan_id, "plan_id")?;
        if body.context.is_none() {
            required(body.organization_guid.clone(), "organization_guid")?;
            required(body.space_guid.clone(), "space_guid")?;
        } else {
            non_empty_if_present(&body.organization_guid, "organization_guid")?;
            non_empty_if_present(&body.space_guid, "space_guid")?;
        }
        let snapshot = self.catalog_for(&service_id).await;
        let (routed, plan) = snapshot
            .plan(&service_id, &plan_id)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        check_maintenance(body.maintenance_info.as_ref(), plan)?;
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let parameters = body.parameters.unwrap_or_default();
        let requested = Attributes {
            service_id: &service_id,
            plan_id: &plan_id,
            parameters: &parameters,
        };
        let placement = Placement::of(
            body.context.as_ref(),
            body.organization_guid.as_deref(),
            body.space_guid.as_deref(),
        );
        // Two rounds: a concurrent identical PUT may insert between our read and our insert,
        // and the second round then answers as for a repeat.
        for _ in 0..2 {
            let existing = self.load_instance(instance_id).await?;
            let view = existing.as_ref().map(|e| e.view());
            let dashboard_url = existing
                .as_ref()
                .and_then(|e| e.row.dashboard_url.as_ref())
                .map(|_| self.dashboard_url(instance_id));
            match decide_provision(view.as_ref(), &requested, &placement) {
                ProvisionDecision::Create => {}
                ProvisionDecision::AlreadyReady => {
                    return Ok(ProvisionOutcome::AlreadyReady {
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    })
                }
                ProvisionDecision::InProgress(operation) => {
                    return Ok(ProvisionOutcome::Accepted {
                        operation,
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    })
                }
                ProvisionDecision::Conflict(d) => return Err(BrokerError::Conflict(d)),
                ProvisionDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            }
            let spi = &routed.spi;
            let validated = spi
                .client
                .validate_instance(
                    &ValidateInstanceRequest {
                        operation: InstanceOperation::Provision,
                        instance_id: instance_id.into(),
                        service_id: service_id.clone().into(),
                        plan_id: plan_id.clone().into(),
                        previous_plan_id: None,
                        parameters: Some(parameters.clone()),
                        previous_parameters: None,
                    },
                    &ctx.call(),
                )
                .await
                .map_err(|e| BrokerError::from_call(&spi.name, e))?;
            // The SPI says whether the offering has a dashboard; the broker serves it, at its
            // own external URL.
            let dashboard_url = validated
                .dashboard_url
                .as_ref()
                .map(|_| self.dashboard_url(instance_id));
            let now = now_ms();
            let row = InstanceRow {
                id: instance_id.to_string(),
                service_id: service_id.clone(),
                plan_id: plan_id.clone(),
                parameters: encode_object(&parameters),
                context: body.context.as_ref().map(encode_object),
                organization_guid: body.organization_guid.clone(),
                space_guid: body.space_guid.clone(),
                maintenance_version: plan.maintenance_info.as_ref().map(|m| m.version.clone()),
                dashboard_url: dashboard_url.clone(),
                state: InstanceState::Provisioning,
                deployment_name: None,
                deployment_spec_enc: None,
                endpoints: None,
                created_at_ms: now,
                updated_at_ms: now,
            };
            let op = self.new_operation(
                ctx,
                instance_id,
                None,
                OperationKind::Provision,
                &OperationPayload::default(),
            );
            let operation = op.id.clone();
            match self.store.create_instance(row, op).await? {
                Outcome::Done => {
                    tracing::info!(instance.id = %instance_id, operation.id = %operation, "provision accepted");
                    self.journal.start(&operation);
                    return Ok(ProvisionOutcome::Accepted {
                        operation,
                        dashboard_url,
                        metadata: instance_metadata(&routed.service, plan),
                    });
                }
                Outcome::Exists => continue,
                Outcome::Busy(d) => return Err(BrokerError::Concurrency(d)),
            }
        }
        Err(BrokerError::Concurrency(
            "the service instance is being created by a concurrent request; retry".into(),
        ))
    }

    /// `PATCH /v2/service_instances/{id}`.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        body: UpdateRequest,
        accepts_incomplete: bool,
    ) -> Result<UpdateOutcome, BrokerError> {
        let service_id = required(body.service_id, "service_id")?;
        non_empty_if_present(&body.plan_id, "plan_id")?;
        // An empty context says nothing (the profile requires `platform` in every context):
        // it changes nothing, as if absent.
        let context = body.context.filter(|c| !c.is_empty());
        let existing = self
            .load_instance(instance_id)
            .await?
            .filter(|e| e.state() != InstanceState::Deleted)
            .ok_or_else(|| not_found(instance_id))?;
        if service_id != existing.row.service_id {
            return Err(BrokerError::BadRequest(format!(
                "service_id {service_id} is not the service of service instance {instance_id}"
            )));
        }
        let target_plan = body
            .plan_id
            .clone()
            .unwrap_or_else(|| existing.row.plan_id.clone());
        let snapshot = self.catalog_for(&service_id).await;
        let (routed, plan) = snapshot
            .plan(&service_id, &target_plan)
            .map_err(|e| BrokerError::BadRequest(e.to_string()))?;
        check_maintenance(body.maintenance_info.as_ref(), plan)?;
        let requested = UpdateView {
            plan_id: &target_plan,
            parameters: body.parameters.as_ref(),
            maintenance_version: body.maintenance_info.as_ref().map(|m| m.version.as_str()),
        };
        let running_payload = existing
            .running
            .as_ref()
            .filter(|op| op.kind == OperationKind::Update.as_str())
            .map(|op| OperationPayload::decode(&op.payload));
        let running_request = running_payload.as_ref().map(|p| UpdateView {
            plan_id: p.plan_id.as_deref().unwrap_or(&existing.row.plan_id),
            parameters: p.parameters.as_ref(),
            maintenance_version: p.maintenance_version.as_deref(),
        });
        match decide_update(&existing.view(), &requested, running_request.as_ref()) {
            UpdateDecision::InProgress(operation) => {
                return if accepts_incomplete {
                    Ok(UpdateOutcome::Accepted { operation })
                } else {
                    Err(BrokerError::AsyncRequired)
                };
            }
            UpdateDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            UpdateDecision::NothingToChange => {
                if let Some(context) = &context {
                    let stored = existing.row.context_object().ok().flatten();
                    if !context_updates_allowed(&routed.service) && stored.as_ref() != Some(context)
                    {
                        return Err(BrokerError::Refused {
                            status: RefusalStatus::Unprocessable,
                            error: None,
                            description: format!(
                                "service {} does not allow context-only updates (allow_context_updates is not true); the context was not changed",
                                routed.service.name
                            ),
                        });
                    }
                    self.store
                        .store_context(instance_id, encode_object(context))
                        .await?;
                }
                return Ok(UpdateOutcome::Applied);
            }
            UpdateDecision::Change => {}
        }
        let spi = &routed.spi;
        spi.client
            .validate_instance(
                &ValidateInstanceRequest {
                    operation: InstanceOperation::Update,
                    instance_id: instance_id.into(),
                    service_id: service_id.clone().into(),
                    plan_id: target_plan.clone().into(),
                    previous_plan_id: Some(existing.row.plan_id.clone().into()),
                    parameters: body.parameters.clone(),
                    previous_parameters: Some(existing.parameters.clone()),
                },
                &ctx.call(),
            )
            .await
            .map_err(|e| update_refusal(&spi.name, e))?;
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let payload = OperationPayload {
            plan_id: Some(target_plan),
            parameters: body.parameters,
            maintenance_version: body.maintenance_info.map(|m| m.version),
            context,
            ..Default::default()
        };
        let op = self.new_operation(ctx, instance_id, None, OperationKind::Update, &payload);
        let operation = op.id.clone();
        match self.store.begin_update(op).await? {
            Outcome::Done => {
                tracing::info!(instance.id = %instance_id, operation.id = %operation, "update accepted");
                self.journal.start(&operation);
                Ok(UpdateOutcome::Accepted { operation })
            }
            Outcome::Exists | Outcome::Busy(_) => Err(BrokerError::Concurrency(
                "another operation is in progress on this service instance; retry after it ends"
                    .into(),
            )),
        }
    }

    /// `DELETE /v2/service_instances/{id}`; the OSB operation of the deprovision.
    pub async fn deprovision(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
        service_id: Option<String>,
        plan_id: Option<String>,
        accepts_incomplete: bool,
    ) -> Result<String, BrokerError> {
        required(service_id, "service_id")?;
        required(plan_id, "plan_id")?;
        let existing = self.load_instance(instance_id).await?;
        let decision = decide_deprovision(existing.as_ref().map(|e| e.view()).as_ref());
        if decision == DeprovisionDecision::Gone {
            return Err(BrokerError::Gone);
        }
        if !accepts_incomplete {
            return Err(BrokerError::AsyncRequired);
        }
        let cancel = match decision {
            DeprovisionDecision::Gone => return Err(BrokerError::Gone),
            DeprovisionDecision::InProgress(operation) => return Ok(operation),
            DeprovisionDecision::Concurrency(d) => return Err(BrokerError::Concurrency(d)),
            DeprovisionDecision::Begin { cancel } => cancel,
        };
        let op = self.new_operation(
            ctx,
            instance_id,
            None,
            OperationKind::Deprovision,
            &OperationPayload::default(),
        );
        let operation = op.id.clone();
        match self.store.begin_deprovision(op, cancel.clone()).await? {
            Outcome::Done => {
                tracing::info!(
                    instance.id = %instance_id,
                    operation.id = %operation,
                    cancelled = cancel.as_deref().unwrap_or(""),
                    "deprovision accepted"
                );
                self.journal.start(&operation);
                Ok(operation)
            }
            Outcome::Exists | Outcome::Busy(_) => Err(BrokerError::Concurrency(
                "another operation is in progress on this service instance; retry after it ends"
                    .into(),
            )),
        }
    }

    /// `GET /v2/service_instances/{id}`.
    pub async fn fetch_instance(
        &self,
        instance_id: &str,
    ) -> Result<FetchInstanceResponse, BrokerError> {
        let existing = self.load_instance(instance_id).await?;
        match decide_fetch(existing.as_ref().map(|e| e.view()).as_ref()) {
            FetchDecision::NotFound => Err(not_found(instance_id)),
            FetchDecision::Concurrency => Err(BrokerError::Concurrency(
                "the service instance is being updated; retry after the update ends".into(),
            )),
            FetchDecision::Found => {
                let Some(existing) = existing else {
                    return Err(not_found(instance_id));
                };
                let snapshot = self.catalog.snapshot();
                let mut metadata = snapshot
                    .plan(&existing.row.service_id, &existing.row.plan_id)
                    .ok()
                    .map(|(routed, plan)| instance_metadata(&routed.service, plan));
                // The server's health, as a broker-generated attribute (OSB allows those).
                if let (Some(health), Some(metadata)) = (
                    self.server_health(&CallContext::default(), &existing.row)
                        .await,
                    metadata.as_mut(),
                ) {
                    let attributes = metadata.attributes.get_or_insert_with(JsonObject::new);
                    attributes.insert("server_health".into(), health.status.as_str().into());
                    if !health.is_healthy() {
                        attributes.insert(
                            "server_health_description".into(),
                            unhealthy_description(&health).into(),
                        );
                    }
                }
                Ok(FetchInstanceResponse {
                    service_id: Some(existing.row.service_id),
                    plan_id: Some(existing.row.plan_id),
                    dashboard_url: existing
                        .row
                        .dashboard_url
                        .as_ref()
                        .map(|_| self.dashboard_url(instance_id)),
                    parameters: Some(existing.parameters),
                    maintenance_info: existing.row.maintenance_version.map(|version| {
                        MaintenanceInfo {
                            version,
                            description: None,
                        }
                    }),
                    metadata,
                })
            }
        }
    }

    /// `GET /v2/service_instances/{id}/last_operation`; `operation` is only a hint.
    pub async fn instance_last_operation(
        &self,
        instance_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperationResponse, BrokerError> {
        if self.store.instance(instance_id).await?.is_none() {
            return Err(not_found(instance_id));
        }
        let op = self
            .store
            .latest_operation(instance_id, None, operation)
            .await?
            .ok_or_else(|| not_found(instance_id))?;
        let mut response = last_operation(&op.kind, op.state, &op.description)?;
        // A provision or update that succeeded says so, and also whether the server it
        // brought up is still up.
        let done = matches!(op.kind.as_str(), "provision" | "update")
            && op.state == OperationState::Succeeded;
        if done {
            if let Some((row, _)) = self.store.instance(instance_id).await? {
                if let Some(health) = self
                    .server_health(&CallContext::default(), &row)
                    .await
                    .filter(|h| !h.is_healthy())
                {
                    let note = unhealthy_description(&health);
                    response.description = Some(match response.description {
                        Some(d) if !d.is_empty() => format!("{d}; now {note}"),
                        _ => note,
                    });
                }
            }
        }
        Ok(response)
    }
}

/// The last_operation body of a stored operation.
pub(super) fn last_operation(
    kind: &str,
    state: OperationState,
    description: &str,
) -> Result<LastOperationResponse, BrokerError> {
    let kind = OperationKind::parse(kind)
        .ok_or_else(|| BrokerError::internal(anyhow::anyhow!("stored operation kind {kind:?}")))?;
    Ok(last_operation_view(kind, state, Some(description)))
}
