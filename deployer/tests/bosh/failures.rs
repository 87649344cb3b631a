//! Failures: Director tasks ending badly, the Director down and back, a mutating call whose
//! answer is lost, UAA tokens expiring or refused, and a Director task somebody else runs on
//! the deployment.

use crate::director::*;
use crate::helpers::*;
use common::deployer::{DeploymentState, Engine, TaskState};
use std::time::Duration;
use testkit::bosh::{TaskEnd, TaskState as DirectorTaskState, TOKEN_PATH};

#[tokio::test]
async fn a_director_task_ending_badly_fails_the_operation_with_a_readable_description() {
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("pg");
    let spec = plan_spec(Engine::Postgresql, &name, &pw, "small");
    let ends = [
        (
            TaskEnd::Error("CPI error: no capacity left in z1".into()),
            "failed",
        ),
        (TaskEnd::Cancelled, "was cancelled"),
        (TaskEnd::Timeout, "timed out"),
    ];
    for (end, said) in ends {
        bosh.fake.fail_next_task(end);
        let task = app.client.put_deployment(&spec, &ctx()).await.unwrap();
        let done = wait_for_task(&app.client, &task.id).await;
        assert_eq!(done.state, TaskState::Failed, "{done:?}");
        let error = done.error.unwrap();
        let director_task = bosh.fake.tasks()[0].id;
        assert!(
            error.starts_with(&format!(
                "BOSH could not deploy deployment osb-{name}: Director task {director_task} {said}"
            )),
            "{error}"
        );
        assert!(
            !error.contains("no capacity"),
            "the Director's own error is for the log: {error}"
        );
        assert!(!error.contains(pw.expose()));
        let d = app.client.get_deployment(&name, &ctx()).await.unwrap();
        assert_eq!(d.state, DeploymentState::Failed);
    }
    // The next apply works.
    apply_ok(&app.client, &spec).await;
    let d = running(&app, &name).await;
    pg(&d.endpoints[0], &pw)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_director_down_during_a_task_is_waited_for_and_down_too_long_fails_the_operation() {
    let mut bosh = BoshEnv::new().await;
    bosh.tweak = |s| s.unreachable_timeout_secs = 4;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("pg");
    let spec = plan_spec(Engine::Postgresql, &name, &pw, "small");
    let task = bosh.apply_held(&app, &spec).await;
    bosh.fake.go_down().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    bosh.fake.release_tasks();
    bosh.fake.come_back().await.unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(posts(&bosh.fake), 1);
    let d = running(&app, &name).await;
    pg(&d.endpoints[0], &pw)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();

    // Down for longer than the deployer waits: the operation fails, saying so.
    bosh.fake.go_down().await;
    let task = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Failed, "{done:?}");
    let error = done.error.unwrap();
    assert!(
        error.contains("the BOSH Director at https://127.0.0.1:") && error.contains("unreachable"),
        "{error}"
    );
    bosh.fake.come_back().await.unwrap();
    let task = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(
        wait_for_task(&app.client, &task.id).await.state,
        TaskState::Succeeded
    );
}

#[tokio::test]
async fn uaa_tokens_are_fetched_again_before_they_expire() {
    // Tokens of 4 s are replaced 1 s early: room for a loaded machine between the client's
    // check and the Director's.
    let bosh = BoshEnv::uaa(Duration::from_secs(4)).await;
    // Long enough a deploy for a few tokens to expire on the way.
    bosh.fake.set_step_delay(Duration::from_millis(1500));
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("kv");
    apply_ok(&app.client, &plan_spec(Engine::Redis, &name, &pw, "any")).await;
    let requests = bosh.fake.requests();
    let tokens = requests.iter().filter(|r| r.path == TOKEN_PATH).count();
    assert!(
        tokens >= 2,
        "{tokens} token(s) for a deploy of several token lifetimes"
    );
    let authorized = requests
        .iter()
        .filter(|r| r.path.starts_with("/tasks/"))
        .all(|r| r.header("authorization").is_some());
    assert!(authorized, "every task poll carries the token");
    // Replaced before it expired: no call was ever sent with an expired token.
    let refused: Vec<_> = requests.iter().filter(|r| r.status == Some(401)).collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    let d = running(&app, &name).await;
    let at = &d.endpoints[0];
    deployer::engine::probe(Engine::Redis, &at.host, at.port, "admin", &pw)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_the_director_refuses_is_replaced_and_the_refused_call_sent_again() {
    let bosh = BoshEnv::uaa(Duration::from_secs(600)).await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("kv");
    let task = bosh
        .apply_held(&app, &plan_spec(Engine::Redis, &name, &pw, "any"))
        .await;
    // The token (valid for ten minutes) stops being accepted: the next poll gets a 401.
    let before = bosh.fake.requests().len();
    bosh.fake.revoke_tokens();
    until("a call is refused", || {
        bosh.fake.requests()[before..]
            .iter()
            .any(|r| r.status == Some(401))
    })
    .await;
    bosh.fake.release_tasks();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");

    let after = bosh.fake.requests().split_off(before);
    let refused = after.iter().position(|r| r.status == Some(401)).unwrap();
    let token = refused
        + after[refused..]
            .iter()
            .position(|r| r.path == TOKEN_PATH)
            .expect("a new token after the 401");
    assert_eq!(after[token].status, Some(200), "{:?}", after[token]);
    let again = &after[token + 1..];
    assert!(
        again.iter().any(|r| r.path == after[refused].path
            && r.query == after[refused].query
            && r.status.is_some_and(|s| (200..300).contains(&s))),
        "the refused {} {} was not sent again with the new token: {again:?}",
        after[refused].method,
        after[refused].path
    );
    assert!(
        again.iter().all(|r| r.status != Some(401)),
        "the new token is accepted: {again:?}"
    );
    assert_eq!(posts(&bosh.fake), 1);
    let d = running(&app, &name).await;
    let at = &d.endpoints[0];
    deployer::engine::probe(Engine::Redis, &at.host, at.port, "admin", &pw)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_mutating_call_whose_answer_is_lost_finds_its_task_by_context_id_and_sends_nothing_again()
{
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("pg");
    let spec = plan_spec(Engine::Postgresql, &name, &pw, "small");

    // The Director makes the deploy task, but its 302 never reaches the deployer: the
    // connection breaks while the Director is away a moment.
    bosh.fake.leave_next_unanswered();
    let task = app.client.put_deployment(&spec, &ctx()).await.unwrap();
    lose_the_answer(&bosh, &task.id).await;
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(posts(&bosh.fake), 1, "the manifest was posted once");
    found_by_context(&bosh, &task.id, "POST", 1);
    let d = running(&app, &name).await;
    pg(&d.endpoints[0], &pw)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();

    // The same for a delete.
    bosh.fake.leave_next_unanswered();
    let task = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    lose_the_answer(&bosh, &task.id).await;
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    found_by_context(&bosh, &task.id, "DELETE", 2);
    assert!(bosh.fake.tasks()[0].description.contains("delete"));
    assert!(!deployment_dir(bosh.env.data_dir(), &name).exists());
}

/// Waits for the Director task the unanswered request of deployer task `context` made, then
/// breaks the request's connection.
async fn lose_the_answer(bosh: &BoshEnv, context: &str) {
    until("the Director made the task", || {
        bosh.fake
            .tasks()
            .iter()
            .any(|t| t.context_id.as_deref() == Some(context))
    })
    .await;
    bosh.fake.go_down().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    bosh.fake.come_back().await.unwrap();
}

/// Checks that the deployer task `context` sent one `method`, never answered, and found the
/// Director task it made by its context id; `tasks` is how many Director tasks exist now.
fn found_by_context(bosh: &BoshEnv, context: &str, method: &str, tasks: usize) {
    let all = bosh.fake.tasks();
    assert_eq!(all.len(), tasks, "one Director task per operation: {all:?}");
    assert_eq!(all[0].context_id.as_deref(), Some(context));
    let requests = bosh.fake.requests();
    let sent: Vec<_> = requests
        .iter()
        .filter(|r| r.method == method && r.header("x-bosh-context-id") == Some(context))
        .collect();
    assert_eq!(sent.len(), 1, "sent once: {sent:?}");
    assert_eq!(sent[0].status, None, "its answer was lost");
    assert!(
        requests.iter().any(|r| r.path == "/tasks"
            && r.query.contains(&format!("context_id={context}"))
            && r.status == Some(200)),
        "the task was looked for by its context id"
    );
}

#[tokio::test]
async fn a_director_task_this_deployer_did_not_start_refuses_the_operation() {
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("pg");
    let spec = plan_spec(Engine::Postgresql, &name, &pw, "small");
    apply_ok(&app.client, &spec).await;

    // An operator re-deploys the same deployment by hand; its task is held running.
    bosh.fake.hold_tasks();
    let manifest = bosh.fake.manifests().pop().unwrap();
    let (user, secret) = bosh.fake.credentials();
    let answer = operator_client(&bosh.fake)
        .post(format!("{}/deployments", bosh.fake.url()))
        .basic_auth(user, Some(secret.expose()))
        .header("content-type", "text/yaml")
        .header("x-bosh-context-id", "operator")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    until("the operator's task runs", || {
        bosh.fake.tasks()[0].state == DirectorTaskState::Processing
    })
    .await;
    let operator_task = bosh.fake.tasks()[0].id;

    let task = app.client.put_deployment(&spec, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Failed, "{done:?}");
    let error = done.error.unwrap();
    assert!(
        error.contains(&format!("busy with Director task {operator_task}")),
        "{error}"
    );
    assert_eq!(
        posts(&bosh.fake),
        2,
        "nothing was posted for the refused operation"
    );

    bosh.fake.release_tasks();
    until("the operator's task ends", || {
        bosh.fake.tasks()[0].state == DirectorTaskState::Done
    })
    .await;
    apply_ok(&app.client, &spec).await;
}
