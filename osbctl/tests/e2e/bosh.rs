//! The walkthrough through the deployer's bosh backend, for both offerings, against the fake
//! BOSH Director of `testkit::bosh` (a stand-in speaking the Director's API that runs the real
//! servers): catalog → provision (its progress text made of the Director's task events) →
//! bind → a real query → unbind → deprovision, and then no BOSH deployment is left.

use crate::docker::lifecycle;
use crate::helpers::TestStack;
use std::time::Duration;
use testkit::bosh::{FakeDirector, FakeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_offerings_work_end_to_end_through_the_bosh_backend_on_a_fake_director() {
    // Steps slow enough for the broker (polling its deployer task every 200 ms) to show them.
    let fake = FakeDirector::start(FakeOptions {
        step_delay: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let t = TestStack::start_bosh(fake.deployer_settings()).await;
    let osb = t.stack().osb_client().unwrap();
    let direct = |host: &str, port: u16| (host.to_string(), port);
    for (service, group) in [("postgresql", "postgresql"), ("keyvalue", "redis")] {
        let progress = lifecycle(&osb, "bosh", service, "small", &direct).await;
        assert!(
            progress.iter().any(|p| p.contains(&format!("Updating instance {group}/"))
                && p.contains("% complete")),
            "{service}: no progress from the Director's task events in last_operation: {progress:?}"
        );
    }
    // One deploy and one delete per instance, and nothing left on the Director.
    let tasks = fake.tasks();
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    assert!(tasks
        .iter()
        .all(|t| t.state == testkit::bosh::TaskState::Done));
    let deleted = tasks
        .iter()
        .filter(|t| t.description.contains("delete"))
        .count();
    assert_eq!(deleted, 2, "{tasks:?}");
    assert!(t.deployments().await.is_empty());
}
