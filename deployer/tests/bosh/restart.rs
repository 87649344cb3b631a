//! A deployer restarted while its Director task runs follows that same task again.

use crate::director::*;
use crate::helpers::*;
use common::deployer::{Engine, TaskState};

#[tokio::test]
async fn a_deployer_restarted_during_a_director_task_follows_the_same_task_without_posting_again() {
    let bosh = BoshEnv::new().await;
    let app = bosh.start().await;
    let pw = password();
    let name = unique_name("pg");
    let spec = plan_spec(Engine::Postgresql, &name, &pw, "small");
    let task = bosh.apply_held(&app, &spec).await;
    let record = deployment_dir(bosh.env.data_dir(), &name).join("instance.json");
    let director_task = bosh.fake.tasks()[0].id;
    until("the task is recorded in flight", || {
        std::fs::read_to_string(&record)
            .is_ok_and(|r| r.contains(&format!("\"task\": {director_task}")))
    })
    .await;
    app.stop().await;

    let app = bosh.start().await;
    bosh.fake.release_tasks();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(posts(&bosh.fake), 1, "the manifest was posted once");
    assert_eq!(bosh.fake.tasks().len(), 1);
    let d = running(&app, &name).await;
    pg(&d.endpoints[0], &pw)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
    assert!(!std::fs::read_to_string(&record)
        .unwrap()
        .contains("\"in_flight\": {"));

    // Restarted with nothing in flight, it finds the deployment again from its instances.
    app.stop().await;
    let app = bosh.start().await;
    let again = running(&app, &name).await;
    assert_eq!(again.endpoints, d.endpoints);
}
