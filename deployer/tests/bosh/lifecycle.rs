//! A deployment's life through the bosh backend: apply, the progress text, endpoints that
//! answer a real query, an update that re-deploys, operations in a row, delete.

use crate::director::*;
use crate::helpers::*;
use common::deployer::{Engine, TaskState};
use testkit::bosh::TaskState as DirectorTaskState;

#[tokio::test]
async fn a_postgres_apply_deploys_through_the_director_and_its_endpoint_answers_the_admin() {
    let bosh = BoshEnv::new().await;
    bosh.fake
        .set_step_delay(std::time::Duration::from_millis(150));
    let app = bosh.start().await;
    let name = unique_name("pg");
    let pw = password();
    let mut spec = plan_spec(Engine::Postgresql, &name, &pw, "small");
    spec.settings.insert("max_connections".into(), "42".into());
    let task = app.client.put_deployment(&spec, &ctx()).await.unwrap();
    let (done, seen) = wait_for_task_progress(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");

    // Progress a person can follow, made of the Director's task events.
    assert!(
        seen.iter()
            .any(|p| p.starts_with("Updating instance postgresql/")
                && p.contains("(1/1)")
                && p.ends_with("% complete")),
        "no progress from the task events in {seen:?}"
    );
    // The manifest: named from the deployment, the plan's template, the spec's settings.
    let manifests = bosh.fake.manifests();
    assert_eq!(manifests.len(), 1);
    let m: serde_json::Value = serde_yaml::from_str(&manifests[0]).unwrap();
    assert_eq!(m["name"], format!("osb-{name}"));
    let group = &m["instance_groups"][0];
    assert_eq!(group["vm_type"], "small");
    let osb = &group["jobs"][0]["properties"]["osb"];
    assert_eq!(osb["settings"]["max_connections"], "42");
    assert_eq!(osb["admin"]["password"], pw.expose());
    // The deployer task's id is the Director task's context id; no secret in task descriptions.
    let tasks = bosh.fake.tasks();
    assert_eq!(tasks[0].context_id.as_deref(), Some(task.id.as_str()));
    assert!(tasks.iter().all(|t| !t.description.contains(pw.expose())));
    let post = bosh
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.header("x-bosh-context-id"), Some(task.id.as_str()));
    assert_eq!(post.header("content-type"), Some("text/yaml"));
    // Events are read a piece at a time: each poll asks only for the bytes after the last.
    let ranges: Vec<u64> = bosh
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/output"))
        .filter_map(|r| {
            r.header("range")?
                .strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        ranges.windows(2).all(|w| w[0] <= w[1]) && ranges.iter().any(|n| *n > 0),
        "{ranges:?}"
    );

    let d = running(&app, &name).await;
    assert_eq!(d.endpoints.len(), 1);
    let at = &d.endpoints[0];
    assert!(
        at.host.starts_with("127.") && at.host != "127.0.0.1",
        "the VM's own IP: {at:?}"
    );
    assert_eq!(at.port, 5432);
    let client = pg(at, &pw).await;
    assert_eq!(show(&client, "max_connections").await, "42");
    assert!(d.health.unwrap().is_healthy());
}

#[tokio::test]
async fn an_update_redeploys_with_the_new_settings_and_plan_and_operations_run_in_order() {
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let name = unique_name("pg");
    let pw = password();
    let mut first = plan_spec(Engine::Postgresql, &name, &pw, "small");
    first.settings.insert("max_connections".into(), "30".into());
    let mut second = plan_spec(Engine::Postgresql, &name, &pw, "medium");
    second
        .settings
        .insert("max_connections".into(), "60".into());
    // Two operations on one deployment, sent at once: the second waits for the first.
    let a = app.client.put_deployment(&first, &ctx()).await.unwrap();
    let b = app.client.put_deployment(&second, &ctx()).await.unwrap();
    let a = wait_for_task(&app.client, &a.id).await;
    let b = wait_for_task(&app.client, &b.id).await;
    assert_eq!(a.state, TaskState::Succeeded, "{a:?}");
    assert_eq!(b.state, TaskState::Succeeded, "{b:?}");
    let tasks = bosh.fake.tasks();
    let contexts: Vec<_> = tasks
        .iter()
        .rev()
        .filter_map(|t| t.context_id.clone())
        .collect();
    assert_eq!(
        contexts,
        [a.id.to_string(), b.id.to_string()],
        "one Director task each, in order"
    );

    let manifests = bosh.fake.manifests();
    let last: serde_json::Value = serde_yaml::from_str(manifests.last().unwrap()).unwrap();
    assert_eq!(last["instance_groups"][0]["vm_type"], "medium");
    let d = running(&app, &name).await;
    let client = pg(&d.endpoints[0], &pw).await;
    assert_eq!(show(&client, "max_connections").await, "60");

    // The same spec again: the Director finds nothing to change; the server keeps its data.
    client
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);")
        .await
        .unwrap();
    apply_ok(&app.client, &second).await;
    let d = running(&app, &name).await;
    let row = pg(&d.endpoints[0], &pw)
        .await
        .query_one("SELECT v FROM kept", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
}

#[tokio::test]
async fn a_redis_deployment_is_deleted_with_its_bosh_deployment_and_an_unknown_one_counts_as_gone()
{
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("kv");
    apply_ok(&app.client, &plan_spec(Engine::Redis, &name, &pw, "any")).await;
    let d = running(&app, &name).await;
    let at = d.endpoints[0].clone();
    assert_eq!(at.port, 6379);
    deployer::engine::probe(Engine::Redis, &at.host, at.port, "admin", &pw)
        .await
        .unwrap();

    let task = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(
        deployer::engine::probe(Engine::Redis, &at.host, at.port, "admin", &pw)
            .await
            .is_err(),
        "the server still answers after the delete"
    );
    let deleted = bosh.fake.tasks();
    assert!(
        deleted[0].description.contains("delete"),
        "{:?}",
        deleted[0]
    );
    assert!(!deployment_dir(bosh.env.data_dir(), &name).exists());

    // An operator deleted the BOSH deployment behind the deployer's back: the delete is done.
    let other = unique_name("kv");
    apply_ok(&app.client, &plan_spec(Engine::Redis, &other, &pw, "any")).await;
    let (user, secret) = bosh.fake.credentials();
    let answer = operator_client(&bosh.fake)
        .delete(format!("{}/deployments/osb-{other}", bosh.fake.url()))
        .basic_auth(user, Some(secret.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    until("the operator's delete ends", || {
        bosh.fake.tasks()[0].state == DirectorTaskState::Done
    })
    .await;
    let task = app.client.delete_deployment(&other, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(app.client.get_deployment(&other, &ctx()).await.is_err());
}
