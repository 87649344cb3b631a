//! The steps of provision, update and deprovision: ask the SPI for the deployment spec, hand
//! it to the deployer (or delete the deployment), wait for the deployer task, and record the
//! outcome on the instance.

use crate::domain::operation::{
    merge_parameters, progress_description, OperationKind, OperationPayload, Step,
};
use crate::domain::steps::step_after_lost_task;
use crate::journal::calls::DEPLOYER;
use crate::journal::ending::Ending;
use crate::journal::failure::StepError;
use crate::journal::run::{Flow, OpCtx};
use crate::journal::Journal;
use crate::store::models::{InstanceChanges, OperationChanges};
use crate::store::{now_ms, Effect};
use anyhow::anyhow;
use common::deployer::{DeploymentSpec, TaskState};
use common::spi::DeploymentSpecRequest;

impl Journal {
    /// Asks the SPI for the deployment spec (an update's new one, with the current one as
    /// `previous`); a provision stores it on the instance, an update keeps it in the payload.
    pub(in crate::journal) async fn step_spec(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
        let spi = self.spi(ctx).await?;
        let current = ctx.instance.parameters_object()?;
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

    /// Hands the spec to the deployer and keeps the task id.
    pub(in crate::journal) async fn step_deploy(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
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

    /// Polls the deployer task until it ends (or the deadline passes), showing its progress.
    pub(in crate::journal) async fn step_wait(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
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
                    let step = step_after_lost_task(ctx.kind);
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
        let mut more = vec![];
        match ctx.kind {
            OperationKind::Deprovision => {
                changes.deployment_spec_enc = Some(None);
                changes.endpoints = Some(None);
                more.push(Effect::DeleteBindingsOf {
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
                if ctx.kind == OperationKind::Update {
                    Self::apply_update(ctx, &mut payload, &mut changes)?;
                }
            }
            OperationKind::Bind | OperationKind::Unbind => {
                return Err(StepError::Internal(anyhow!(
                    "a binding operation has no deployer task"
                )))
            }
        }
        let ending = Ending {
            instance: Some(changes),
            binding: None,
            more,
        };
        self.succeed(ctx, &payload, ending).await
    }

    /// A succeeded update's changes to the instance: merged parameters, plan, maintenance
    /// version, context, and the new spec (taken out of the payload).
    fn apply_update(
        ctx: &OpCtx,
        payload: &mut OperationPayload,
        changes: &mut InstanceChanges,
    ) -> Result<(), StepError> {
        let current = ctx.instance.parameters_object()?;
        if let Some(update) = &ctx.payload.parameters {
            let merged = merge_parameters(&current, update);
            changes.parameters =
                Some(serde_json::to_string(&merged).map_err(|e| StepError::Internal(e.into()))?);
        }
        changes.plan_id = ctx.payload.plan_id.clone();
        if let Some(v) = &ctx.payload.maintenance_version {
            changes.maintenance_version = Some(Some(v.clone()));
        }
        if let Some(context) = &ctx.payload.context {
            changes.context = Some(serde_json::to_string(context).ok());
        }
        changes.deployment_spec_enc = Some(payload.new_spec_enc.take());
        Ok(())
    }

    /// Deletes the instance's deployment once a cancelled operation let go of it.
    pub(in crate::journal) async fn step_delete_deployment(
        &self,
        ctx: &OpCtx,
    ) -> Result<Flow, StepError> {
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
}
