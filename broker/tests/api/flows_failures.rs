//! Event flows when things fail: error flows see the failed operation of each kind (once,
//! with the failure's description), and flows that fail, panic or outrun their timeout change
//! no outcome while the flows after them still run.

use crate::flows::{send, Recorder, Seen};
use crate::helpers::{
    bind_body, new_id, provision_body, spawn_services, TestApp, PLAN_SMALL, SERVICE_ID,
};
use broker::flows::{FlowKind, FlowRegistry, FlowRequest, FlowResponse, InitError};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// Waits until the error flow ran for `kind` on `instance`, then checks it ran once and that
/// no completion flow ran for that operation.
async fn failed_once(rec: &Recorder, kind: FlowKind, instance: &str) -> Seen {
    rec.wait_until(&format!("{kind:?} error flow"), |_| {
        !rec.of("error", kind, instance).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errors = rec.of("error", kind, instance);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let operation = &errors[0].request.operation;
    assert!(operation.is_some(), "{errors:#?}");
    let completed = rec.of("completion", kind, instance);
    assert!(
        completed.iter().all(|s| &s.request.operation != operation),
        "{completed:#?}"
    );
    errors[0].clone()
}

#[tokio::test]
async fn error_flows_see_the_failed_operation_of_each_kind_once() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let settings = app.broker_settings();
    app.start_broker_with_flows(settings.clone(), rec.everywhere())
        .await;

    // A provision cancelled by a deprovision failed.
    let cancelled = new_id();
    let answer = app
        .provision(&cancelled, &provision_body(json!({})), true)
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(app.deprovision(&cancelled).await.status, 202);
    let seen = failed_once(&rec, FlowKind::Provision, &cancelled).await;
    assert_eq!(
        seen.description.as_deref(),
        Some("cancelled by deprovision")
    );
    assert_eq!(seen.request.operation, Some(answer.operation()));

    let id = app.provisioned().await;
    let binding = new_id();
    let answer = app.bind_incomplete(&id, &binding, &bind_body()).await;
    if answer.status == 202 {
        app.wait_for_binding(&id, &binding, &answer.operation())
            .await;
    }

    // From here every operation has 3 s, and a bind 1 ms to answer synchronously.
    app.stop_broker().await;
    let mut short = settings;
    short.worker.max_operation_secs = 3;
    short.worker.sync_timeout_ms = 1;
    app.start_broker_with_flows(short, rec.everywhere()).await;

    // A bind that outran the synchronous window without accepts_incomplete is undone.
    let undone = new_id();
    let answer = app.bind(&id, &undone, &bind_body()).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let seen = failed_once(&rec, FlowKind::Bind, &id).await;
    assert_eq!(seen.request.binding_id.as_deref(), Some(undone.as_str()));
    assert_eq!(seen.description.as_deref(), Some("cancelled by unbind"));

    out_of_time(&mut app, &rec, &id, &binding).await;
    app.stop_all().await;
}

/// With the deployer down an update and a deprovision of `id` run out of time; with the SPI
/// down the unbind of `binding` does.
async fn out_of_time(app: &mut TestApp, rec: &Recorder, id: &str, binding: &str) {
    app.stop_deployer().await;
    let update = json!({"service_id": SERVICE_ID, "parameters": {"max_connections": 30}});
    let who = ("user-1", "req-update");
    let base = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let answer = send(app, Method::PATCH, &base, Some(update), who).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let seen = failed_once(rec, FlowKind::Update, id).await;
    let description = seen.description.unwrap();
    assert!(
        description.contains("maximum polling duration of 3 s"),
        "{description}"
    );
    assert_eq!(seen.request.request_id, "req-update");

    app.stop_spi().await;
    let path = format!(
        "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"
    );
    let answer = send(app, Method::DELETE, &path, None, ("user-2", "req-unbind")).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let seen = failed_once(rec, FlowKind::Unbind, id).await;
    assert_eq!(seen.request.binding_id.as_deref(), Some(binding));

    assert_eq!(app.deprovision(id).await.status, 202);
    let seen = failed_once(rec, FlowKind::Deprovision, id).await;
    let description = seen.description.unwrap();
    assert!(
        description.contains("maximum polling duration of 3 s"),
        "{description}"
    );
}

async fn init_panics(_: FlowRequest) -> Result<(), InitError> {
    panic!("init flow bug")
}

async fn completion_panics(_: FlowRequest, _: FlowResponse) -> anyhow::Result<()> {
    panic!("completion flow bug")
}

/// Flows that misbehave in every way, each registered before one that records.
fn misbehaving(rec: &Recorder) -> FlowRegistry {
    let mut flows = FlowRegistry::new().with_timeout(Duration::from_millis(300));
    for kind in [FlowKind::Provision, FlowKind::Deprovision] {
        flows = flows
            .on_init(kind, "fails", |_| async {
                Err(anyhow::anyhow!("audit store down").into())
            })
            .on_init(kind, "panics", init_panics)
            .on_init(kind, "sleeps", |_| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .on_completion(kind, "fails", |_, _| async {
                anyhow::bail!("audit store down")
            })
            .on_completion(kind, "panics", completion_panics)
            .on_completion(
                kind,
                "panics-at-once",
                |_, _| -> std::future::Ready<anyhow::Result<()>> {
                    panic!("completion flow bug before its future")
                },
            )
            .on_completion(kind, "sleeps", |_, _| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            });
        flows = rec.init(flows, kind, "recorded");
        flows = rec.completion(flows, kind, "recorded");
    }
    flows
}

/// Waits until the recording completion flow of `kind` on `instance` ran after the
/// misbehaving ones, and checks it did well before the sleeping flow's 30 s were over (that
/// flow was abandoned after the registry's timeout).
async fn completed_soon(rec: &Recorder, kind: FlowKind, instance: &str) {
    let ended = std::time::Instant::now();
    rec.wait_until(&format!("{kind:?} completion"), |_| {
        !rec.of("completion", kind, instance).is_empty()
    })
    .await;
    assert!(
        ended.elapsed() < Duration::from_secs(10),
        "{kind:?}: the sleeping completion flow was not abandoned ({:?})",
        ended.elapsed()
    );
}

#[tokio::test]
async fn flows_that_fail_panic_or_outrun_their_timeout_change_no_outcome() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let settings = app.broker_settings();
    app.start_broker_with_flows(settings, misbehaving(&rec))
        .await;

    let id = new_id();
    let started = std::time::Instant::now();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    // The sleeping initialization flow was abandoned after its 300 ms.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    completed_soon(&rec, FlowKind::Provision, &id).await;
    assert_eq!(rec.of("init", FlowKind::Provision, &id).len(), 1);

    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    app.wait_for_instance(&id, &answer.operation()).await;
    completed_soon(&rec, FlowKind::Deprovision, &id).await;
    let last = app
        .get(&format!("/v2/service_instances/{id}/last_operation"))
        .await;
    assert_eq!(last.body["state"], "succeeded", "{last:?}");
    assert_eq!(crate::flows::flows_rows(&app), 0);
    // The misbehaving flows made no operation run its flows twice.
    assert_eq!(rec.of("completion", FlowKind::Provision, &id).len(), 1);
    assert_eq!(rec.of("completion", FlowKind::Deprovision, &id).len(), 1);
    app.stop_all().await;
}
