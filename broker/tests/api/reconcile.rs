//! Reconciliation against the real deployer: a deployment no instance owns and an instance
//! whose deployment vanished are reported by the running broker's periodic check and by
//! `broker reconcile`; `--delete-orphans` removes the orphan and nothing else.

use crate::helpers::{free_address, spawn_services, TestApp};
use common::client::CallContext;
use common::deployer::{AdminCredentials, DeploymentSpec, Engine, Task};
use common::secret::random_password;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const ORPHAN: &str = "kv-orphan-of-nobody";

async fn finished(app: &TestApp, task: Task) -> Task {
    let ctx = CallContext::with_request_id(common::new_request_id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut task = task;
    while !task.state.is_terminal() {
        assert!(Instant::now() < deadline, "{task:?} never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
        task = app.deployer_client.get_task(&task.id, &ctx).await.unwrap();
    }
    task
}

async fn deployment_names(app: &TestApp) -> BTreeSet<String> {
    app.deployments()
        .await
        .into_iter()
        .map(|d| d.name.into())
        .collect()
}

#[tokio::test]
async fn orphans_either_way_are_reported_and_only_orphan_deployments_are_deleted() {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.reconcile.interval_secs = 1;
    app.start_broker_process(&settings).await;
    let kept = app.provision_keyvalue().await;
    let vanished = app.provision_keyvalue().await;
    let (kept_deployment, vanished_deployment) =
        (app.deployment_of(&kept), app.deployment_of(&vanished));

    // Behind the broker's back: a deployment of nobody, and one instance's deployment gone.
    let ctx = CallContext::with_request_id(common::new_request_id());
    let orphan = DeploymentSpec {
        name: ORPHAN.into(),
        engine: Engine::Redis,
        version: spi_keyvalue::spec::REDIS_VERSION.into(),
        settings: BTreeMap::new(),
        admin: AdminCredentials {
            username: "admin".into(),
            password: random_password(24),
        },
        labels: BTreeMap::from([("instance_id".to_string(), "nobody".to_string())]),
    };
    let task = app
        .deployer_client
        .put_deployment(&orphan, &ctx)
        .await
        .unwrap();
    assert!(finished(&app, task).await.error.is_none());
    let task = app
        .deployer_client
        .delete_deployment(&vanished_deployment, &ctx)
        .await
        .unwrap();
    assert!(finished(&app, task).await.error.is_none());

    // The running broker's periodic check warns about both.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(app.log_path()).unwrap();
        let warned = log.lines().any(|l| {
            l.contains("orphan deployment: no service instance owns it") && l.contains(ORPHAN)
        }) && log
            .lines()
            .any(|l| l.contains("service instance without deployment") && l.contains(&vanished));
        if warned {
            break;
        }
        assert!(Instant::now() < deadline, "no periodic warning:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (code, out) = app.broker_command_output(&settings, &["reconcile"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "orphan deployment {ORPHAN} (labelled instance nobody)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "instance {vanished} without deployment {vanished_deployment}"
        )),
        "{out}"
    );
    assert_eq!(
        deployment_names(&app).await,
        BTreeSet::from([kept_deployment.clone(), ORPHAN.to_string()]),
        "a report deletes nothing"
    );

    let (code, out) = app
        .broker_command_output(&settings, &["reconcile", "--delete-orphans"])
        .await;
    assert_eq!(
        code,
        Some(2),
        "the missing deployment is still to fix: {out}"
    );
    assert!(
        out.contains(&format!("deleting {ORPHAN}: Succeeded")),
        "{out}"
    );
    assert_eq!(
        deployment_names(&app).await,
        BTreeSet::from([kept_deployment]),
        "only the orphan went"
    );

    // The platform removes the instance whose deployment vanished: now both sides agree.
    let gone = app.delete_keyvalue(&vanished, None).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = app.wait_for_instance(&vanished, "").await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let (code, out) = app.broker_command_output(&settings, &["reconcile"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 deployments, 1 instances naming a deployment"),
        "{out}"
    );
    app.stop_all().await;
}
