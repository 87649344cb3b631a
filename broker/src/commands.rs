//! The maintenance commands of the binary: `broker reconcile [--delete-orphans]`,
//! `broker reencrypt` and `broker webhooks [--redeliver-dead]`. They open the state database
//! and the deployer like the server does and print what they found to stdout.

use crate::config::Settings;
use crate::crypto::Cipher;
use crate::startup::{deployer_client, open_store};
use crate::{reconcile, reencrypt};
use anyhow::Context as _;
use std::time::Duration;

/// How long `reconcile --delete-orphans` waits for the deployer's deletions.
const DELETION_TIMEOUT: Duration = Duration::from_secs(300);

/// Reports orphans either way and, with `delete_orphans`, deletes orphan deployments.
/// True when nothing is left to fix (no missing deployment, and no orphan, or every orphan
/// deleted).
pub async fn reconcile(settings: &Settings, delete_orphans: bool) -> anyhow::Result<bool> {
    let store = open_store(settings).await?;
    let deployer = deployer_client(settings)?;
    let report = reconcile::reconcile(&store, &deployer, delete_orphans).await?;
    report.log();
    println!(
        "{} deployments, {} instances naming a deployment",
        report.deployments, report.instances
    );
    for orphan in &report.orphan_deployments {
        let owner = orphan.labels.get("instance_id").map_or("?", String::as_str);
        println!(
            "orphan deployment {} (labelled instance {owner}): no instance owns it",
            orphan.name
        );
    }
    for missing in &report.missing_deployments {
        println!(
            "instance {} without deployment {}",
            missing.instance_id, missing.deployment_name
        );
    }
    let tasks = reconcile::wait_for_tasks(&deployer, report.deletions, DELETION_TIMEOUT).await?;
    let mut deleted_all = true;
    for task in &tasks {
        let outcome = task.error.as_deref().unwrap_or(&task.progress);
        println!("deleting {}: {:?} ({outcome})", task.deployment, task.state);
        deleted_all &= task.state == common::deployer::TaskState::Succeeded;
    }
    let orphans_fixed = report.orphan_deployments.is_empty() || (delete_orphans && deleted_all);
    Ok(report.missing_deployments.is_empty() && orphans_fixed)
}

/// Re-encrypts every stored secret under `encryption.current`.
pub async fn reencrypt(settings: &Settings) -> anyhow::Result<bool> {
    let cipher = Cipher::new(&settings.encryption).context("encryption keys")?;
    let store = open_store(settings).await?;
    let report = reencrypt::reencrypt_all(&store, &cipher).await?;
    println!(
        "{} secrets re-encrypted under key {:?}; {} still under other keys",
        report.rewritten, settings.encryption.current, report.remaining
    );
    Ok(report.remaining == 0)
}

/// Dead letters listed by `broker webhooks`.
const DEAD_LETTERS_SHOWN: i64 = 1_000;

/// Prints the outbox per endpoint and state and every dead letter (event id, kind, instance,
/// attempts, last error; never a body); with `redeliver_dead` makes them pending again. True
/// when no dead letter is left.
pub async fn webhooks(settings: &Settings, redeliver_dead: bool) -> anyhow::Result<bool> {
    let store = open_store(settings).await?;
    if redeliver_dead {
        let n = store.redeliver_dead_letters().await?;
        println!("{n} dead letters made pending again");
    }
    for (endpoint, state, n) in store.outbox_counts().await? {
        println!("endpoint {endpoint}: {n} {state}");
    }
    let dead = store.dead_letters(DEAD_LETTERS_SHOWN).await?;
    for row in &dead {
        println!(
            "dead letter: endpoint {} event {} {} instance {} operation {} after {} attempts: {}",
            row.endpoint,
            row.event_id,
            row.kind,
            row.instance_id,
            row.operation_id,
            row.attempts,
            row.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(dead.is_empty())
}
