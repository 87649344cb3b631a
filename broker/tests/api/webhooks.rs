//! Callbacks: a real HTTP receiver gets every event of a lifecycle in order, signed and without
//! a secret; it is down for a while and still gets them; a broker SIGKILLed between the state
//! change and the delivery delivers after its restart (same event id); a graceful stop finishes
//! the delivery in flight instead of leaving it to be sent again; an endpoint that keeps failing ends with dead letters;
//! each endpoint gets the kinds it wants, and a stuck one delays no other.

use crate::helpers::{
    bind_body, free_address, new_id, provision_body, spawn_app_with, spawn_services, PASSWORD,
};
use crate::webhook_receiver::{distinct_checked, kinds, Mode, Received, Receiver};
use crate::webhook_support::{
    assert_no_secret, deprovision, provision, strings, update_to_medium, wait_for_metric, webhooks,
    ARRIVAL, ENDPOINT, SECRET,
};
use broker::config::Settings;
use serde_json::{json, Value};
use std::time::Duration;

/// Every lifecycle event names the instance, offering and plan (medium from the update on),
/// the request, a time and a description; exactly the bind and unbind events name the binding.
fn assert_common_fields(events: &[Received], id: &str, binding: &str) {
    let mut plan = crate::helpers::PLAN_SMALL;
    for event in events {
        if event.kind() == "update.started" {
            plan = crate::helpers::PLAN_MEDIUM;
        }
        let body = &event.json;
        assert_eq!(body["instance_id"], id);
        assert_eq!(body["service_id"], crate::helpers::SERVICE_ID);
        assert_eq!(body["plan_id"], plan, "{body}");
        assert!(
            body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
        assert!(
            body["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{body}"
        );
        assert!(body["description"].is_string(), "{body}");
        let binding_event = event.kind().starts_with("bind") || event.kind().starts_with("unbind");
        assert_eq!(body["binding_id"] == binding, binding_event, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lifecycle_s_events_arrive_in_order_signed_and_without_secrets() {
    let receiver = Receiver::start();
    let url = receiver.url();
    let app = spawn_app_with(|s| s.webhooks = webhooks(&url, 100)).await;
    let id = new_id();
    provision(&app, &id, "trace-lifecycle-1").await;
    let binding = new_id();
    let mut bind = bind_body();
    bind["parameters"] = json!({"tracing_id": "trace-bind-2"});
    let bound = app.bind(&id, &binding, &bind).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    assert_eq!(app.unbind(&id, &binding).await.status, 200);
    update_to_medium(&app, &id, "trace-update-3").await;
    deprovision(&app, &id).await;

    let expected = [
        "provision.started",
        "provision.succeeded",
        "bind.started",
        "bind.succeeded",
        "unbind.started",
        "unbind.succeeded",
        "update.started",
        "update.succeeded",
        "deprovision.started",
        "deprovision.succeeded",
    ];
    let received = receiver
        .wait_until(ARRIVAL, "the lifecycle's events", |r| {
            r.len() >= expected.len()
        })
        .await;
    let events = distinct_checked(&received, SECRET);
    assert_eq!(kinds(&events), expected);
    assert_eq!(
        received.len(),
        expected.len(),
        "no duplicate in the normal case"
    );
    assert_common_fields(&events, &id, &binding);
    let provision = &events[0].json;
    assert_eq!(provision["state"], "in progress");
    assert_eq!(provision["tracing_id"], "trace-lifecycle-1");
    assert_eq!(
        provision["originating_identity"],
        json!({"platform": "cloudfoundry", "value": {"user_id": "user-42"}})
    );
    assert_eq!(events[1].json["state"], "succeeded");
    assert_eq!(events[1].json["tracing_id"], "trace-lifecycle-1");
    assert_eq!(events[3].json["tracing_id"], "trace-bind-2");
    assert_eq!(events[6].json["tracing_id"], "trace-update-3");
    assert_eq!(events[7].json["state"], "succeeded");
    assert_eq!(
        events[8].json["tracing_id"],
        Value::Null,
        "a DELETE has no parameters"
    );

    let mut secrets = vec![
        SECRET.to_string(),
        PASSWORD.to_string(),
        app.env.encryption_key.clone(),
    ];
    strings(&bound.body["credentials"], &mut secrets);
    assert!(
        secrets.len() > 4,
        "the binding has credentials: {:?}",
        bound.body
    );
    assert_no_secret(&received, &secrets);
    assert!(
        received.iter().all(|r| !r.body.contains("work_mem_mb")),
        "no parameter is sent"
    );

    wait_for_metric(&app, "delivered", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_down_for_a_while_still_gets_every_event_in_order() {
    let mut receiver = Receiver::start();
    let url = receiver.url();
    receiver.stop().await;
    let app = spawn_app_with(|s| s.webhooks = webhooks(&url, 1_000)).await;
    let (first, second) = (new_id(), new_id());
    provision(&app, &first, "trace-a").await;
    provision(&app, &second, "trace-b").await;
    deprovision(&app, &first).await;
    // Let a few attempts fail against the closed port.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty());
    receiver.resume();
    let received = receiver
        .wait_until(ARRIVAL, "the events sent while it was down", |r| {
            r.len() >= 6
        })
        .await;
    let events = distinct_checked(&received, SECRET);
    let of = |id: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.json["instance_id"] == id)
            .map(|e| e.kind().to_string())
            .collect()
    };
    assert_eq!(
        of(&first),
        [
            "provision.started",
            "provision.succeeded",
            "deprovision.started",
            "deprovision.succeeded"
        ]
    );
    assert_eq!(of(&second), ["provision.started", "provision.succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_keeps_failing_ends_with_dead_letters_an_operator_can_redeliver() {
    let receiver = Receiver::start();
    receiver.set_mode(Mode::Fail);
    let url = receiver.url();
    let mut settings: Option<Settings> = None;
    let app = spawn_app_with(|s| {
        s.webhooks = webhooks(&url, 3);
        settings = Some(s.clone());
    })
    .await;
    let id = new_id();
    provision(&app, &id, "trace-dead").await;
    let received = receiver
        .wait_until(ARRIVAL, "three attempts of each event", |r| r.len() >= 6)
        .await;
    let distinct = distinct_checked(&received, SECRET);
    assert_eq!(
        kinds(&distinct),
        ["provision.started", "provision.succeeded"]
    );
    for event in &distinct {
        let copies = received
            .iter()
            .filter(|r| r.event_id == event.event_id)
            .count();
        assert_eq!(copies, 3, "max_attempts, each with the same id");
    }
    // The second event went only after the first was dead (in order per instance).
    assert!(received[..3]
        .iter()
        .all(|r| r.event_id == distinct[0].event_id));
    wait_for_metric(&app, "dead", 2).await;
    let settings = settings.unwrap();
    let (code, out) = app.broker_command_output(&settings, &["webhooks"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("endpoint {ENDPOINT}: 2 dead")),
        "{out}"
    );
    assert!(
        out.contains(&distinct[0].event_id) && out.contains("answered 500"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    // The operator fixes the receiver and redelivers: both arrive once more, same ids.
    receiver.set_mode(Mode::Accept);
    let (code, out) = app
        .broker_command_output(&settings, &["webhooks", "--redeliver-dead"])
        .await;
    assert!(out.contains("2 dead letters made pending again"), "{out}");
    assert_eq!(code, Some(0), "{out}");
    let received = receiver
        .wait_until(ARRIVAL, "the redelivered events", |r| r.len() >= 8)
        .await;
    let again: Vec<&str> = received[6..].iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(
        again,
        [distinct[0].event_id.as_str(), distinct[1].event_id.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_is_a_failed_attempt_not_a_delivery() {
    let receiver = Receiver::start();
    receiver.set_mode(Mode::Redirect);
    let url = receiver.url();
    let app = spawn_app_with(|s| s.webhooks = webhooks(&url, 2)).await;
    provision(&app, &new_id(), "trace-redirect").await;
    wait_for_metric(&app, "dead", 2).await;
    assert_eq!(receiver.received().len(), 4, "two attempts of each event");
    assert_eq!(receiver.moved(), 0, "the redirect is not followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_killed_before_the_delivery_was_acknowledged_delivers_after_its_restart() {
    let receiver = Receiver::start();
    receiver.set_mode(Mode::Hold);
    let mut app = spawn_services(false).await;
    let secret_file = app.env.state.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.worker.identity = Some("webhooks-kill".into());
    settings.webhooks = webhooks(&receiver.url(), 1_000);
    settings.webhooks.endpoints[0].secret = None;
    settings.webhooks.endpoints[0].secret_file = Some(secret_file);
    app.start_broker_process(&settings).await;
    let id = new_id();
    let answer = app
        .provision(
            &id,
            &provision_body(json!({"tracing_id": "trace-kill"})),
            true,
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    // The started event is on its way; the receiver holds it unanswered. Kill the broker.
    let held = receiver
        .wait_until(ARRIVAL, "the held event", |r| !r.is_empty())
        .await;
    app.kill_broker_process().await;
    receiver.set_mode(Mode::Accept);
    app.start_broker_process(&settings).await;
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let received = receiver
        .wait_until(ARRIVAL, "both events after the restart", |r| {
            r.iter().any(|e| e.kind() == "provision.succeeded")
        })
        .await;
    let events = distinct_checked(&received, SECRET);
    assert_eq!(kinds(&events), ["provision.started", "provision.succeeded"]);
    assert_eq!(events[0].event_id, held[0].event_id);
    let copies = received
        .iter()
        .filter(|r| r.event_id == held[0].event_id)
        .count();
    assert!(
        copies >= 2,
        "the unacknowledged event is delivered again with its id"
    );
    let log = std::fs::read_to_string(app.log_path()).unwrap();
    assert!(
        log.contains("webhook event delivered"),
        "the dispatcher logs deliveries"
    );
    assert!(!log.contains(SECRET), "the webhook secret is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_stop_finishes_the_delivery_in_flight_so_it_is_not_sent_again() {
    let receiver = Receiver::start();
    receiver.set_mode(Mode::Hold);
    let mut app = spawn_services(false).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.webhooks = webhooks(&receiver.url(), 1_000);
    app.start_broker_process(&settings).await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let held = receiver
        .wait_until(ARRIVAL, "the held event", |r| !r.is_empty())
        .await;
    // SIGTERM while the receiver holds the event; it answers a moment later, during the stop.
    let answer_later = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        receiver.set_mode(Mode::Accept);
    };
    let (status, ()) = tokio::join!(app.terminate_broker_process(), answer_later);
    assert!(status.success(), "{status:?}");
    app.start_broker_process(&settings).await;
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    receiver
        .wait_until(ARRIVAL, "the provision's end", |r| {
            r.iter().any(|e| e.kind() == "provision.succeeded")
        })
        .await;
    // Let a late duplicate show up if there were one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    let events = distinct_checked(&received, SECRET);
    assert_eq!(kinds(&events), ["provision.started", "provision.succeeded"]);
    assert_eq!(events[0].event_id, held[0].event_id);
    assert_eq!(
        received.len(),
        2,
        "the attempt in flight at the stop finished and was recorded, so no one sends it again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_endpoint_gets_the_kinds_it_wants_and_a_stuck_one_delays_no_other() {
    let stuck = Receiver::start();
    stuck.set_mode(Mode::Hold);
    let provisions = Receiver::start();
    let (stuck_url, provisions_url) = (stuck.url(), provisions.url());
    let app = spawn_app_with(|s| {
        s.webhooks = webhooks(&stuck_url, 100);
        let mut second = s.webhooks.endpoints[0].clone();
        second.name = "provisions".into();
        second.url = provisions_url;
        second.events = vec!["provision.*".into()];
        s.webhooks.endpoints.push(second);
    })
    .await;
    let id = new_id();
    provision(&app, &id, "trace-filter").await;
    deprovision(&app, &id).await;
    let received = provisions
        .wait_until(ARRIVAL, "the provision events", |r| r.len() >= 2)
        .await;
    // Give a deprovision event time to show up if the filter let it through.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = distinct_checked(&provisions.received(), SECRET);
    assert_eq!(kinds(&events), ["provision.started", "provision.succeeded"]);
    assert_eq!(received.len(), 2);
    // The stuck endpoint holds its first event unanswered all along.
    let held = stuck.received();
    assert_eq!(kinds(&held), ["provision.started"], "{held:?}");
    assert_eq!(
        held[0].event_id, events[0].event_id,
        "one event id for every endpoint"
    );
}
