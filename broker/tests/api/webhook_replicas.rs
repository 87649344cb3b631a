//! Callbacks with two brokers on one PostgreSQL: each event is delivered once, and when the
//! broker that delivers dies (its lease not handed back) the other takes the dispatcher over.

use crate::helpers::{new_id, provision_body, spawn_app_with, PASSWORD};
use crate::webhook_receiver::{distinct_checked, kinds, Received, Receiver};
use crate::webhook_support::{dispatcher_owner, provision, webhooks, ARRIVAL, SECRET};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_deliver_each_event_once() {
    let pg = testkit::TestPostgres::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let receiver = Receiver::start();
    let hook = receiver.url();
    let db = url.clone();
    let app = spawn_app_with(|s| {
        s.database.url = db;
        s.webhooks = webhooks(&hook, 100);
    })
    .await;
    let mut second = app.broker_settings();
    second.database.url = url;
    second.webhooks = webhooks(&hook, 100);
    let replica = broker::startup::Application::build(second).await.unwrap();
    let replica_address = format!("http://127.0.0.1:{}", replica.port());
    let replica_run = tokio::spawn(replica.run_until_stopped());
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = new_id();
        let body = provision_body(json!({"tracing_id": format!("trace-{n}")}));
        // Alternate the broker that takes the request.
        let base = if n % 2 == 0 {
            app.address.clone()
        } else {
            replica_address.clone()
        };
        let answer = app
            .http
            .put(format!(
                "{base}/v2/service_instances/{id}?accepts_incomplete=true"
            ))
            .basic_auth(crate::helpers::USERNAME, Some(PASSWORD))
            .header("X-Broker-API-Version", "2.17")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        ids.push(id);
    }
    for id in &ids {
        let (last, _) = app.wait_for_instance(id, "").await;
        assert_eq!(last["state"], "succeeded", "{last}");
    }
    receiver
        .wait_until(ARRIVAL, "every event", |r| r.len() >= 6)
        .await;
    // Let a late duplicate show up if there were one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    let events = distinct_checked(&received, SECRET);
    assert_eq!(received.len(), events.len(), "each event delivered once");
    for id in &ids {
        let of: Vec<&str> = events
            .iter()
            .filter(|e| e.json["instance_id"] == id.as_str())
            .map(Received::kind)
            .collect();
        assert_eq!(of, ["provision.started", "provision.succeeded"]);
    }
    replica_run.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_delivering_replica_dies_the_other_takes_the_dispatcher_over() {
    let pg = testkit::TestPostgres::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let receiver = Receiver::start();
    let hook = receiver.url();
    let db = url.clone();
    let mut app = spawn_app_with(|s| {
        s.database.url = db;
        s.worker.identity = Some("replica-a".into());
        s.webhooks = webhooks(&hook, 100);
    })
    .await;
    let mut second = app.broker_settings();
    second.database.url = url.clone();
    second.worker.identity = Some("replica-b".into());
    second.webhooks = webhooks(&hook, 100);
    let replica = broker::startup::Application::build(second).await.unwrap();
    let replica_address = format!("http://127.0.0.1:{}", replica.port());
    let replica_run = tokio::spawn(replica.run_until_stopped());
    let first = new_id();
    provision(&app, &first, "trace-before").await;
    receiver
        .wait_until(ARRIVAL, "the first instance's events", |r| r.len() >= 2)
        .await;
    let holder = dispatcher_owner(&url).expect("a broker holds the dispatcher lease");
    // The holder dies without handing its lease back (its tasks are aborted, as in a crash).
    let survivor = if holder == "broker-replica-a" {
        app.stop_broker().await;
        app.address = replica_address;
        "broker-replica-b"
    } else {
        assert_eq!(holder, "broker-replica-b");
        replica_run.abort();
        "broker-replica-a"
    };
    let later = new_id();
    provision(&app, &later, "trace-after").await;
    receiver
        .wait_until(ARRIVAL, "the second instance's events", |r| r.len() >= 4)
        .await;
    // Let a late duplicate show up if there were one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    let events = distinct_checked(&received, SECRET);
    assert_eq!(received.len(), events.len(), "each event delivered once");
    let instances: Vec<&str> = events
        .iter()
        .map(|e| e.json["instance_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(instances, [first.as_str(), &first, &later, &later]);
    assert_eq!(
        kinds(&events),
        [
            "provision.started",
            "provision.succeeded",
            "provision.started",
            "provision.succeeded"
        ]
    );
    assert_eq!(dispatcher_owner(&url).as_deref(), Some(survivor));
    replica_run.abort();
}
