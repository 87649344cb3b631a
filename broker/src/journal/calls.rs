//! Internal calls of the steps: retried with backoff until the operation's deadline, a
//! refusal passed on, a certificate failure final; and finding the SPI of an offering.

use super::failure::StepError;
use super::run::OpCtx;
use super::Journal;
use crate::catalog::NamedSpi;
use crate::domain::policy::Backoff;
use crate::store::now_ms;
use common::client::ClientError;
use std::future::Future;

/// The callee name of the deployer in logs and descriptions.
pub(super) const DEPLOYER: &str = "deployer";

impl Journal {
    /// Calls a callee, retrying transport errors and 5xx with backoff until the operation's
    /// deadline; a 4xx is a refusal, and a TLS handshake failed on a certificate fails the
    /// operation at once.
    pub(super) async fn call<T, F, Fut>(
        &self,
        ctx: &OpCtx,
        callee: &str,
        mut f: F,
    ) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut backoff = Backoff::default();
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
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        callee,
                        error = %e,
                        retry_in_ms = delay.as_millis() as u64,
                        "internal call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
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
    pub(super) async fn spi(&self, ctx: &OpCtx) -> Result<NamedSpi, StepError> {
        let mut backoff = Backoff::default();
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
            tokio::time::sleep(backoff.next_delay()).await;
            self.catalog.refresh().await;
        }
    }
}
