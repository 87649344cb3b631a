//! The steps of bind and unbind: create or revoke the binding's credentials through the SPI,
//! with the instance's admin access and endpoints.

use crate::journal::ending::Ending;
use crate::journal::failure::StepError;
use crate::journal::run::{Flow, OpCtx};
use crate::journal::Journal;
use crate::store::models::{BindingChanges, InstanceRow};
use anyhow::anyhow;
use common::deployer::{DeploymentEndpoint, DeploymentSpec};
use common::spi::{CreateBindingRequest, DeleteBindingRequest};

impl Journal {
    /// The instance's admin access and endpoints, `None` when it has no deployment.
    fn admin_and_endpoints(
        &self,
        instance: &InstanceRow,
    ) -> Result<Option<(DeploymentSpec, Vec<DeploymentEndpoint>)>, StepError> {
        let Some(spec) = self.current_spec(instance)? else {
            return Ok(None);
        };
        let endpoints: Vec<DeploymentEndpoint> = instance.endpoint_list()?;
        Ok(Some((spec, endpoints)))
    }

    /// Creates the binding's credentials through the SPI; the binding becomes ready.
    pub(in crate::journal) async fn step_bind(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
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
            parameters: Some(binding.parameters_object()?).filter(|p| !p.is_empty()),
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
        let ending = Ending {
            binding: Some(BindingChanges {
                credentials_enc: Some(Some(credentials_enc)),
                endpoints: Some(Some(endpoints)),
                ..Default::default()
            }),
            ..Ending::default()
        };
        self.succeed(ctx, &ctx.payload, ending).await
    }

    /// Revokes the binding's credentials through the SPI (after a cancelled bind stopped);
    /// the binding is deleted.
    pub(in crate::journal) async fn step_unbind(&self, ctx: &OpCtx) -> Result<Flow, StepError> {
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
        let ending = Ending {
            binding: Some(BindingChanges {
                credentials_enc: Some(None),
                ..Default::default()
            }),
            ..Ending::default()
        };
        self.succeed(ctx, &ctx.payload, ending).await
    }
}
