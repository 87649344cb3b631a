//! The walkthrough through the deployer's bosh backend, for both offerings, against the fake
//! BOSH Director of `testkit::bosh` (a stand-in speaking the Director's API that runs the real
//! servers): catalog → provision (its progress text made of the Director's task events) →
//! bind → a real query → unbind → deprovision, and then no BOSH deployment is left.

use crate::docker::lifecycle;
use crate::helpers::TestStack;
use common::secret::SecretString;
use deployer::config::bosh::{BoshSettings, ManifestTemplate, ReleaseRef, StemcellRef};
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::bosh::{FakeDirector, FakeOptions};

/// A template of one VM from `release`.
fn template(release: &str, vm_type: &str) -> ManifestTemplate {
    ManifestTemplate {
        releases: vec![ReleaseRef {
            name: release.into(),
            version: "latest".into(),
        }],
        stemcell: StemcellRef {
            os: "ubuntu-noble".into(),
            version: "latest".into(),
        },
        vm_type: vm_type.into(),
        persistent_disk_type: "10GB".into(),
        networks: vec!["default".into()],
        azs: vec!["z1".into()],
        instances: 1,
        job: None,
        job_release: None,
        port: None,
    }
}

/// The `[bosh]` section for `fake`: its secret in a file, quick polls, a PostgreSQL template for
/// the plan `small` and a Redis one for every plan (`default`).
pub fn bosh_settings(fake: &FakeDirector) -> BoshSettings {
    let (client, _) = fake.credentials();
    let mut s = BoshSettings::new(
        &fake.url(),
        fake.ca_file(),
        &client,
        SecretString::default(),
    );
    s.client_secret = None;
    s.client_secret_file = Some(fake.secret_file().to_path_buf());
    s.poll_interval_ms = 50;
    s.templates = BTreeMap::from([
        (
            "postgresql-15".to_string(),
            BTreeMap::from([("small".to_string(), template("postgres", "small"))]),
        ),
        (
            "redis-7".to_string(),
            BTreeMap::from([("default".to_string(), template("redis", "small"))]),
        ),
    ]);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_offerings_work_end_to_end_through_the_bosh_backend_on_a_fake_director() {
    // Steps slow enough for the broker (polling its deployer task every 200 ms) to show them.
    let fake = FakeDirector::start(FakeOptions {
        step_delay: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let t = TestStack::start_bosh(bosh_settings(&fake)).await;
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
