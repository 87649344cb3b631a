//! Event flows across brokers: an operation resumed by another broker after the first one
//! died runs its completion flows once; a broker that dies while a flow runs leaves that flow
//! (run again: the documented at-least-once corner) and the flows after it to the next broker,
//! and not the flows before it.

use crate::flows::{flows_rows, Recorder, Seen};
use crate::helpers::{new_id, provision_body, spawn_services};
use crate::process::journal_rows;
use broker::flows::{FlowKind, FlowRegistry};
use serde_json::json;
use std::time::Duration;

/// Short enough for a quick takeover, long enough for renewals under load.
const LEASE_MS: u64 = 1_500;

#[tokio::test]
async fn an_operation_resumed_by_another_broker_runs_its_completion_flows_once() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.worker.lease_ms = LEASE_MS;
    app.start_broker_with_flows(settings.clone(), rec.everywhere())
        .await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    app.wait_until_deploying(&id).await;
    // A crash: the broker's tasks stop mid-step and its lease is left to expire.
    app.stop_broker().await;

    app.start_broker_with_flows(settings, rec.everywhere())
        .await;
    let (last, _) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let resumed = journal_rows(&app.database_path())
        .into_iter()
        .find(|op| op.id == operation)
        .unwrap();
    assert!(resumed.attempts >= 2, "not taken over: {resumed:?}");
    rec.wait_until("provision completion flows", |_| {
        rec.of("completion", FlowKind::Provision, &id).len() >= 2
    })
    .await;
    // Time for a second run to show: several polls and a lease.
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    let names: Vec<String> = rec
        .of("completion", FlowKind::Provision, &id)
        .into_iter()
        .map(|s| s.flow)
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(rec.of("init", FlowKind::Provision, &id).len(), 1);
    assert!(rec.of("error", FlowKind::Provision, &id).is_empty());
    assert_eq!(flows_rows(&app), 0);
    app.stop_all().await;
}

/// Completion flows of provisions `first`, `second`, `hang` and `third`; `hang` records that
/// it started and, when `hang`, then never finishes.
fn four_flows(rec: &Recorder, hang: bool) -> FlowRegistry {
    let mut flows = FlowRegistry::new().with_timeout(Duration::from_secs(120));
    flows = rec.completion(flows, FlowKind::Provision, "first");
    flows = rec.completion(flows, FlowKind::Provision, "second");
    let me = rec.clone();
    flows = flows.on_completion(FlowKind::Provision, "hang", move |request, _| {
        let me = me.clone();
        async move {
            me.push(Seen {
                registry: "completion",
                flow: "hang".into(),
                request,
                state: None,
                status: None,
                description: None,
            });
            if hang {
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            Ok(())
        }
    });
    rec.completion(flows, FlowKind::Provision, "third")
}

#[tokio::test]
async fn a_broker_dying_while_a_flow_runs_leaves_that_flow_and_the_later_ones_to_the_next() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.worker.lease_ms = LEASE_MS;
    app.start_broker_with_flows(settings.clone(), four_flows(&rec, true))
        .await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    app.wait_for_instance(&id, &answer.operation()).await;
    rec.wait_until("the hanging flow", |_| {
        rec.of("completion", FlowKind::Provision, &id).len() >= 3
    })
    .await;
    app.stop_broker().await;
    assert_eq!(
        flows_rows(&app),
        1,
        "the row stays while its flows are unfinished"
    );

    app.start_broker_with_flows(settings, four_flows(&rec, false))
        .await;
    rec.wait_until("the flow after the hanging one", |_| {
        rec.of("completion", FlowKind::Provision, &id)
            .iter()
            .any(|s| s.flow == "third")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    let names: Vec<String> = rec
        .of("completion", FlowKind::Provision, &id)
        .into_iter()
        .map(|s| s.flow)
        .collect();
    // `first` and `second` ran on the dead broker and were recorded as run: not again; `hang`
    // was running when it died: run again (the at-least-once corner); `third` once.
    assert_eq!(names, ["first", "second", "hang", "hang", "third"]);
    assert_eq!(flows_rows(&app), 0);
    app.stop_all().await;
}

/// Runs a broker with `flows` on `settings` beside the test's one; stopped (as by a crash)
/// when dropped.
struct Replica(tokio::task::JoinHandle<anyhow::Result<()>>, String);

impl Replica {
    async fn start(settings: broker::config::Settings, flows: FlowRegistry) -> Self {
        let app = broker::startup::Application::builder(settings)
            .flows(flows)
            .build()
            .await
            .unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        Self(tokio::spawn(app.run_until_stopped()), address)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test]
async fn two_brokers_on_one_postgresql_database_run_each_operations_flows_once() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let pg = testkit::TestPostgres::start().await.unwrap();
    let mut settings = app.broker_settings();
    let url = pg.create_database().await.unwrap();
    settings.database.url = url.clone();
    app.start_broker_with_flows(settings.clone(), rec.everywhere())
        .await;
    let replica = Replica::start(settings, rec.everywhere()).await;
    let ours = app.address.clone();

    // Provisions and deprovisions sent to either broker; both poll for due flows.
    let mut operations = Vec::new();
    for round in 0..4 {
        app.address = if round % 2 == 0 {
            ours.clone()
        } else {
            replica.1.clone()
        };
        let id = new_id();
        let answer = app.provision(&id, &provision_body(json!({})), true).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        operations.push(answer.operation());
        app.wait_for_instance(&id, &answer.operation()).await;
        app.address = if round % 2 == 0 {
            replica.1.clone()
        } else {
            ours.clone()
        };
        let answer = app.deprovision(&id).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        operations.push(answer.operation());
        app.wait_for_instance(&id, &answer.operation()).await;
    }
    let ran = |op: &str, flow: &str| {
        rec.all()
            .iter()
            .filter(|s| s.registry == "completion" && s.flow == flow)
            .filter(|s| s.request.kind != FlowKind::LastOperation)
            .filter(|s| s.request.operation.as_deref() == Some(op))
            .count()
    };
    rec.wait_until("every operation's completion flows", |_| {
        operations.iter().all(|op| ran(op, "second") >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    for op in &operations {
        assert_eq!(
            (ran(op, "first"), ran(op, "second")),
            (1, 1),
            "operation {op}"
        );
    }
    drop(replica);
    app.stop_all().await;
}
