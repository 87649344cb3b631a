//! The steps of the journal's operations, one method per [`crate::domain::steps::StepAction`]:
//! [`deployment`] for provision, update and deprovision, [`binding`] for bind and unbind.

mod binding;
mod deployment;

use super::failure::StepError;
use super::run::OpCtx;
use super::Journal;
use crate::store::models::InstanceRow;
use crate::store::now_ms;
use anyhow::Context as _;
use common::deployer::DeploymentSpec;
use common::osb::JsonObject;

impl Journal {
    /// The instance's current deployment spec, decrypted.
    pub(super) fn current_spec(
        &self,
        instance: &InstanceRow,
    ) -> Result<Option<DeploymentSpec>, StepError> {
        instance
            .deployment_spec_enc
            .as_deref()
            .map(|enc| self.cipher.decrypt_json(enc))
            .transpose()
            .map_err(StepError::from)
    }

    /// A stored parameters object.
    pub(super) fn parameters(json: &str) -> Result<JsonObject, StepError> {
        serde_json::from_str(json)
            .context("stored parameters")
            .map_err(StepError::Internal)
    }

    /// Waits until no other worker holds a live lease on the instance (or binding): a
    /// cancelled provision or bind may still be finishing an external call.
    pub(super) async fn wait_for_cancelled(
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
}
