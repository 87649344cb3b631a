//! Reconciliation: the broker's instances against the deployer's deployments. An orphan
//! deployment is one no live instance names; a missing deployment is a ready instance whose
//! deployment the deployer does not hold. The running broker reports both periodically;
//! `broker reconcile --delete-orphans` also deletes orphan deployments.

use crate::domain::instance::InstanceState;
use crate::store::{OwnedDeployment, Store};
use anyhow::Context as _;
use common::client::CallContext;
use common::deployer::{DeployerClient, Deployment, DeploymentState, Task};
use std::collections::HashSet;
use std::time::Duration;

/// What one reconciliation found (and did).
#[derive(Debug, Default)]
pub struct Report {
    /// Deployments the deployer holds (not counting ones being deleted).
    pub deployments: usize,
    /// Live instances that name a deployment.
    pub instances: usize,
    /// Deployments no live instance names.
    pub orphan_deployments: Vec<Deployment>,
    /// Ready instances whose deployment the deployer does not hold.
    pub missing_deployments: Vec<OwnedDeployment>,
    /// The deletion tasks of orphans (with `delete_orphans`).
    pub deletions: Vec<Task>,
}

impl Report {
    /// Whether broker and deployer agree.
    pub fn is_clean(&self) -> bool {
        self.orphan_deployments.is_empty() && self.missing_deployments.is_empty()
    }

    /// Logs one warning per orphan, either way.
    pub fn log(&self) {
        for d in &self.orphan_deployments {
            tracing::warn!(
                deployment.name = %d.name,
                instance.id = d.labels.get("instance_id").map_or("", String::as_str),
                "orphan deployment: no service instance owns it"
            );
        }
        for m in &self.missing_deployments {
            tracing::warn!(
                instance.id = %m.instance_id,
                deployment.name = %m.deployment_name,
                "service instance without deployment: the deployer does not hold it"
            );
        }
    }
}

/// Compares the broker's instances with the deployer's deployments; with `delete_orphans`,
/// asks the deployer to delete every orphan deployment.
///
/// The deployer is asked first: an instance's deployment name is committed before its
/// deployment is created, so any deployment listed then has its owner in the database read
/// afterwards (unless the owner was deleted meanwhile, in which case the deployment goes too).
pub async fn reconcile(
    store: &Store,
    deployer: &DeployerClient,
    delete_orphans: bool,
) -> anyhow::Result<Report> {
    let ctx = CallContext::with_request_id(common::new_request_id());
    let deployments: Vec<Deployment> = deployer
        .list_deployments(&ctx)
        .await
        .context("listing the deployer's deployments")?
        .into_iter()
        .filter(|d| d.state != DeploymentState::Deleting)
        .collect();
    let owned = store
        .owned_deployments()
        .await
        .context("reading the instances")?;
    let owned_names: HashSet<&str> = owned.iter().map(|o| o.deployment_name.as_str()).collect();
    let held: HashSet<&str> = deployments.iter().map(|d| d.name.as_str()).collect();
    let mut report = Report {
        deployments: deployments.len(),
        instances: owned.len(),
        missing_deployments: owned
            .iter()
            .filter(|o| {
                o.state == InstanceState::Ready && !held.contains(o.deployment_name.as_str())
            })
            .cloned()
            .collect(),
        ..Report::default()
    };
    report.orphan_deployments = deployments
        .into_iter()
        .filter(|d| !owned_names.contains(d.name.as_str()))
        .collect();
    if delete_orphans {
        for orphan in &report.orphan_deployments {
            let task = deployer
                .delete_deployment(&orphan.name, &ctx)
                .await
                .with_context(|| format!("deleting orphan deployment {}", orphan.name))?;
            tracing::info!(deployment.name = %orphan.name, task.id = %task.id, "deleting orphan deployment");
            report.deletions.push(task);
        }
    }
    Ok(report)
}

/// Reports orphans every `every` until the future is dropped.
pub async fn watch(store: Store, deployer: DeployerClient, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match reconcile(&store, &deployer, false).await {
            Ok(report) => report.log(),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reconciliation check failed"),
        }
    }
}

/// Waits until every task ended (or `timeout` passed); the tasks as last seen.
pub async fn wait_for_tasks(
    deployer: &DeployerClient,
    tasks: Vec<Task>,
    timeout: Duration,
) -> anyhow::Result<Vec<Task>> {
    let ctx = CallContext::with_request_id(common::new_request_id());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut done = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        while !task.state.is_terminal() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            task = deployer
                .get_task(&task.id, &ctx)
                .await
                .with_context(|| format!("deployer task {}", task.id))?;
        }
        done.push(task);
    }
    Ok(done)
}
