//! Event flows on a real stack: each registry sees each operation kind once, in registration
//! order, with the request's view (identity, tracing id, request id, no secrets); an
//! initialization flow's refusal of a provision or a bind stores nothing (no row, no operation,
//! no flows row), and neither does a quota's refusal of a request the flows let through; a
//! last_operation 404 reaches the error flow.

use crate::helpers::{
    bind_body, new_id, provision_body, spawn_services, Answer, TestApp, PLAN_MEDIUM, PLAN_SMALL,
    SERVICE_ID,
};
use crate::process::{instance_rows, journal_rows};
use base64::Engine as _;
use broker::config::QuotaSettings;
use broker::flows::{FlowKind, FlowRefusal, FlowRegistry, FlowRequest};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one flow saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `init`, `completion` or `error`.
    pub registry: &'static str,
    /// The flow's name.
    pub flow: String,
    pub request: FlowRequest,
    /// Completion: the state; error: the status and description.
    pub state: Option<String>,
    pub status: Option<u16>,
    pub description: Option<String>,
}

/// Flows that record what they see, shared by every broker of a test.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    /// What the flows of `registry` saw for `kind` on `instance`.
    pub fn of(&self, registry: &str, kind: FlowKind, instance: &str) -> Vec<Seen> {
        self.all()
            .into_iter()
            .filter(|s| s.registry == registry && s.request.kind == kind)
            .filter(|s| s.request.instance_id == instance)
            .collect()
    }

    /// Waits (up to 60 s) until `done` holds for what was seen.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&self.all()) {
            assert!(Instant::now() < deadline, "{what}: {:#?}", self.all());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An initialization flow named `name` that records and passes.
    pub fn init(&self, registry: FlowRegistry, kind: FlowKind, name: &str) -> FlowRegistry {
        let (me, flow) = (self.clone(), name.to_string());
        registry.on_init(kind, name, move |request| {
            let (me, flow) = (me.clone(), flow.clone());
            async move {
                me.push(Seen {
                    registry: "init",
                    flow,
                    request,
                    state: None,
                    status: None,
                    description: None,
                });
                Ok(())
            }
        })
    }

    /// A completion flow named `name` that records.
    pub fn completion(&self, registry: FlowRegistry, kind: FlowKind, name: &str) -> FlowRegistry {
        let (me, flow) = (self.clone(), name.to_string());
        registry.on_completion(kind, name, move |request, response| {
            let (me, flow) = (me.clone(), flow.clone());
            async move {
                me.push(Seen {
                    registry: "completion",
                    flow,
                    request,
                    state: Some(response.state.as_str().to_string()),
                    status: None,
                    description: response.description,
                });
                Ok(())
            }
        })
    }

    /// An error flow named `name` that records.
    pub fn error(&self, registry: FlowRegistry, kind: FlowKind, name: &str) -> FlowRegistry {
        let (me, flow) = (self.clone(), name.to_string());
        registry.on_error(kind, name, move |request, error| {
            let (me, flow) = (me.clone(), flow.clone());
            async move {
                me.push(Seen {
                    registry: "error",
                    flow,
                    request,
                    state: None,
                    status: error.status,
                    description: Some(error.description),
                });
                Ok(())
            }
        })
    }

    /// For every kind: an initialization flow `init`, completion flows `first` and `second`,
    /// and an error flow `error`.
    pub fn everywhere(&self) -> FlowRegistry {
        let mut registry = FlowRegistry::new();
        for kind in FlowKind::ALL {
            registry = self.init(registry, kind, "init");
            registry = self.completion(registry, kind, "first");
            registry = self.completion(registry, kind, "second");
            registry = self.error(registry, kind, "error");
        }
        registry
    }
}

/// A Cloud Foundry originating identity for user `user`.
pub fn identity(user: &str) -> String {
    let value = json!({"user_id": user, "user_name": "ada"}).to_string();
    format!(
        "cloudfoundry {}",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

/// Sends `method path` with `body`, an originating identity for `user` and request id
/// `request_id`.
pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    (user, request_id): (&str, &str),
) -> Answer {
    let mut request = app
        .request(method, path)
        .header("X-Broker-API-Originating-Identity", identity(user))
        .header("X-Broker-API-Request-Identity", request_id);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// Waits until the completion flows `first` and `second` ran for `kind` on `instance`, gives
/// a stray second run time to show, and checks they ran once each, in that order.
async fn completed_once(rec: &Recorder, kind: FlowKind, instance: &str) -> Seen {
    rec.wait_until(&format!("{kind:?} completion flows"), |_| {
        rec.of("completion", kind, instance).len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = rec.of("completion", kind, instance);
    let names: Vec<&str> = seen.iter().map(|s| s.flow.as_str()).collect();
    assert_eq!(names, ["first", "second"], "{seen:#?}");
    assert_eq!(seen[0].state.as_deref(), Some("succeeded"), "{seen:#?}");
    assert_eq!(rec.of("init", kind, instance).len(), 1, "{:#?}", rec.all());
    assert!(
        rec.of("error", kind, instance).is_empty(),
        "{:#?}",
        rec.all()
    );
    seen[0].clone()
}

/// Provisions `id` as `user-1` with a tracing id; checks what the provision flows saw.
async fn provision_seen(app: &TestApp, rec: &Recorder, id: &str) {
    let base = format!("/v2/service_instances/{id}");
    let body = provision_body(json!({"tracing_id": "trace-1", "max_connections": 20}));
    let path = format!("{base}?accepts_incomplete=true");
    let answer = send(
        app,
        Method::PUT,
        &path,
        Some(body),
        ("user-1", "req-provision"),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();
    let (last, _) = app.wait_for_instance(id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let seen = completed_once(rec, FlowKind::Provision, id).await;
    let request = &seen.request;
    assert_eq!(request.operation.as_deref(), Some(operation.as_str()));
    assert_eq!(request.request_id, "req-provision");
    assert_eq!(request.tracing_id.as_deref(), Some("trace-1"));
    assert_eq!(request.service_id.as_deref(), Some(SERVICE_ID));
    assert_eq!(request.plan_id.as_deref(), Some(PLAN_SMALL));
    assert_eq!(request.context.as_ref().unwrap()["instance_name"], "my-db");
    let identity = request.originating_identity.as_ref().unwrap();
    assert_eq!(
        (identity.platform.as_str(), identity.user.as_str()),
        ("cloudfoundry", "user-1")
    );
    // The tracing id is the broker's: not stored, not passed to the SPI (which refuses
    // unknown parameters).
    let fetched = app.get(&base).await;
    let stored = &fetched.body["parameters"];
    assert_eq!(stored, &json!({"max_connections": 20}), "{fetched:?}");

    let update = json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM,
        "parameters": {"tracing_id": 7}});
    let who = ("user-2", "req-update");
    let answer = send(app, Method::PATCH, &path, Some(update), who).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let seen = completed_once(rec, FlowKind::Update, id).await;
    assert_eq!(seen.request.plan_id.as_deref(), Some(PLAN_MEDIUM));
    assert_eq!(seen.request.tracing_id.as_deref(), Some("7"));
    assert_eq!(seen.request.originating_identity.unwrap().user, "user-2");
}

/// Binds to `id` (now on the medium plan) and unbinds; checks what the flows saw; the binding
/// password.
async fn binding_seen(app: &TestApp, rec: &Recorder, id: &str) -> String {
    let binding = new_id();
    let base = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let bind = json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM,
        "bind_resource": {"app_guid": "app-1"}, "parameters": {"tracing_id": "trace-b"}});
    let path = format!("{base}?accepts_incomplete=true");
    let answer = send(app, Method::PUT, &path, Some(bind), ("user-3", "req-bind")).await;
    assert!(matches!(answer.status, 201 | 202), "{answer:?}");
    if answer.status == 202 {
        let (last, _) = app
            .wait_for_binding(id, &binding, &answer.operation())
            .await;
        assert_eq!(last["state"], "succeeded", "{last}");
    }
    let bound = app.get(&base).await;
    let password = bound.body["credentials"]["password"].as_str().unwrap();
    let seen = completed_once(rec, FlowKind::Bind, id).await;
    assert_eq!(seen.request.binding_id.as_deref(), Some(binding.as_str()));
    assert_eq!(seen.request.tracing_id.as_deref(), Some("trace-b"));

    let path = format!("{base}?service_id={SERVICE_ID}&plan_id={PLAN_MEDIUM}");
    let answer = send(app, Method::DELETE, &path, None, ("user-4", "req-unbind")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = completed_once(rec, FlowKind::Unbind, id).await;
    assert_eq!(seen.request.request_id, "req-unbind");
    password.to_string()
}

#[tokio::test]
async fn every_operation_of_a_lifecycle_runs_its_flows_once_in_order_with_the_request_view() {
    let rec = Recorder::default();
    let mut app = spawn_services(false).await;
    let settings = app.broker_settings();
    app.start_broker_with_flows(settings, rec.everywhere())
        .await;
    let id = new_id();
    provision_seen(&app, &rec, &id).await;
    let password = binding_seen(&app, &rec, &id).await;
    let path = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_MEDIUM}"
    );
    let who = ("user-5", "req-deprovision");
    let answer = send(&app, Method::DELETE, &path, None, who).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let seen = completed_once(&rec, FlowKind::Deprovision, &id).await;
    assert_eq!(seen.request.originating_identity.unwrap().user, "user-5");

    // last_operation: each answer passed an init and the completion flows; a 404 the error
    // flow.
    let polled = rec.of("completion", FlowKind::LastOperation, &id);
    assert!(polled.len() >= 2, "{polled:#?}");
    let succeeded = polled
        .iter()
        .filter(|s| s.state.as_deref() == Some("succeeded"));
    assert!(succeeded.count() >= 2, "{polled:#?}");
    let inits = rec.of("init", FlowKind::LastOperation, &id).len();
    assert_eq!(
        inits * 2,
        polled.len(),
        "one init per answer, two completion flows each"
    );
    let unknown = new_id();
    let path = format!("/v2/service_instances/{unknown}/last_operation");
    let answer = send(&app, Method::GET, &path, None, ("user-6", "req-last")).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    let errors = rec.of("error", FlowKind::LastOperation, &unknown);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].status, Some(404));
    assert_eq!(errors[0].request.request_id, "req-last");

    // No flow ever saw a secret or a parameter other than the tracing id.
    let everything = format!("{:?}", rec.all());
    assert!(
        !everything.contains(&password),
        "binding password reached a flow"
    );
    assert!(
        !everything.contains("max_connections"),
        "parameters reached a flow"
    );
    app.stop_all().await;
}

#[tokio::test]
async fn an_initialization_flow_refusal_is_answered_and_stores_nothing() {
    let rec = Recorder::default();
    let mut flows = FlowRegistry::new();
    flows = rec.init(flows, FlowKind::Provision, "before");
    flows = flows
        .on_init(FlowKind::Provision, "closed-plan", |request| async move {
            if request.plan_id.as_deref() == Some(PLAN_MEDIUM) {
                let refusal = FlowRefusal::new(403, "plan medium takes no new instances");
                return Err(refusal.with_error("PlanClosed").into());
            }
            Ok(())
        })
        .on_init(FlowKind::LastOperation, "no-polling", |_| async move {
            Err(FlowRefusal::new(429, "poll less often").into())
        });
    flows = rec.init(flows, FlowKind::Provision, "after");
    flows = rec.completion(flows, FlowKind::Provision, "done");
    flows = rec.error(flows, FlowKind::Provision, "failed");
    let mut app = spawn_services(false).await;
    let settings = app.broker_settings();
    app.start_broker_with_flows(settings, flows).await;

    let id = new_id();
    let mut body = provision_body(json!({}));
    body["plan_id"] = json!(PLAN_MEDIUM);
    let answer = app.provision(&id, &body, true).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.body["error"], "PlanClosed");
    assert_eq!(
        answer.body["description"],
        "plan medium takes no new instances"
    );
    // Flows run in order: the one before the refusal ran, the one after it did not.
    let names: Vec<String> = rec.all().into_iter().map(|s| s.flow).collect();
    assert_eq!(names, ["before"], "{:#?}", rec.all());

    // Nothing stored, nothing started, no flow owed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(instance_rows(&app.database_path()).is_empty());
    assert!(journal_rows(&app.database_path()).is_empty());
    assert_eq!(flows_rows(&app), 0);
    assert!(app.deployments().await.is_empty());
    let last = app
        .get(&format!("/v2/service_instances/{id}/last_operation"))
        .await;
    assert_eq!(last.status, 429, "{last:?}");
    assert_eq!(last.body["description"], "poll less often");
    assert_eq!(rec.all().len(), 1, "{:#?}", rec.all());

    // A request the init flows let through but a quota refuses leaves no flows row either.
    let quotas = QuotaSettings {
        global: Some(0),
        ..Default::default()
    };
    app.catalog.as_ref().unwrap().set_quotas(quotas);
    let answer = app
        .provision(&new_id(), &provision_body(json!({})), true)
        .await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let names: Vec<String> = rec.all().into_iter().map(|s| s.flow).collect();
    assert_eq!(names, ["before", "before", "after"], "{:#?}", rec.all());
    assert!(instance_rows(&app.database_path()).is_empty());
    assert!(journal_rows(&app.database_path()).is_empty());
    assert_eq!(flows_rows(&app), 0, "a quota refusal left a flows row");
    app.stop_all().await;
}

#[tokio::test]
async fn a_bind_an_initialization_flow_refused_leaves_no_binding_operation_or_flows_row() {
    let rec = Recorder::default();
    let flows = FlowRegistry::new().on_init(FlowKind::Bind, "no-binds", |request| async move {
        let refusal = FlowRefusal::new(422, format!("{} takes no bindings", request.instance_id));
        Err(refusal.with_error("BindingsClosed").into())
    });
    // A bind completion flow: a flows row would be written for a bind that got through.
    let flows = rec.completion(flows, FlowKind::Bind, "done");
    let mut app = spawn_services(false).await;
    let settings = app.broker_settings();
    app.start_broker_with_flows(settings, flows).await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    app.wait_for_instance(&id, &answer.operation()).await;

    let binding = new_id();
    let answer = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["error"], "BindingsClosed");
    assert_eq!(
        answer.body["description"],
        format!("{id} takes no bindings")
    );
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let fetched = app.get(&path).await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    let kinds: Vec<String> = journal_rows(&app.database_path())
        .into_iter()
        .map(|op| op.kind)
        .collect();
    assert_eq!(kinds, ["provision"]);
    assert_eq!(flows_rows(&app), 0);
    assert!(rec.all().is_empty(), "{:#?}", rec.all());
    app.stop_all().await;
}

/// How many `operation_flows` rows the broker's SQLite file holds.
pub fn flows_rows(app: &TestApp) -> i64 {
    use broker::store::schema::operation_flows;
    use diesel::prelude::*;
    let url = app.database_path().display().to_string();
    let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
    operation_flows::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}
