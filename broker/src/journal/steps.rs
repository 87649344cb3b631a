//! The steps of the journal's operations, one method per [`crate::domain::steps::StepAction`]:
//! [`deployment`] for provision, update and deprovision, [`binding`] for bind and unbind.

mod binding;
mod deployment;

use super::failure::StepError;
use super::run::OpCtx;
use super::Journal;
use crate::store::models::InstanceRow;
use crate::store::now_ms;
use common::deployer::DeploymentSpec;

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
