//! PostgreSQL as the state database: two brokers on one database share the work without
//! running an operation twice, and the database going down answers 503 until it is back, with
//! nothing lost.

use crate::helpers::{
    bind_body, new_id, provision_body, spawn_app_with, Answer, TestApp, PASSWORD, PLAN_MEDIUM,
    PLAN_SMALL, SERVICE_ID, USERNAME,
};
use common::deployer::DeploymentState;
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use testkit::TestPostgres;

const SHORT_LEASE_MS: u64 = 1_000;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A second broker on the stack's database, stopped when dropped (as a crash would: its
/// server and journal tasks end with the aborted task).
pub struct Replica {
    pub address: String,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// A broker with the stack's settings on `database_url`.
    async fn start(app: &TestApp, database_url: &str) -> Self {
        let mut settings = app.broker_settings();
        settings.database.url = database_url.to_string();
        Self::with_settings(settings).await
    }

    /// A broker with `settings`.
    pub async fn with_settings(settings: broker::config::Settings) -> Self {
        let broker = broker::startup::Application::build(settings).await.unwrap();
        Self {
            address: format!("http://127.0.0.1:{}", broker.port()),
            join: tokio::spawn(broker.run_until_stopped()),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.join.abort();
    }
}

/// One OSB request to the broker at `address`.
pub async fn send(
    http: &reqwest::Client,
    address: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = http
        .request(method, format!("{address}{path}"))
        .basic_auth(USERNAME, Some(PASSWORD))
        .header("X-Broker-API-Version", "2.17");
    if let Some(body) = body {
        request = request.json(body);
    }
    Answer::from(request.send().await.unwrap()).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Provision,
    Update,
    Bind,
    Deprovision,
}

impl Kind {
    /// The answers the spec allows for this request while other requests race it.
    fn allowed(self) -> &'static [u16] {
        match self {
            Self::Provision => &[200, 201, 202, 409, 422],
            Self::Update => &[200, 202, 404, 422],
            Self::Bind => &[200, 201, 202, 404, 409, 422],
            Self::Deprovision => &[200, 202, 410, 422],
        }
    }
}

async fn request(
    http: &reqwest::Client,
    address: &str,
    kind: Kind,
    instance: &str,
    binding: &str,
) -> Answer {
    let base = format!("/v2/service_instances/{instance}");
    match kind {
        Kind::Provision => {
            let body = provision_body(json!({}));
            let path = format!("{base}?accepts_incomplete=true");
            send(http, address, reqwest::Method::PUT, &path, Some(&body)).await
        }
        Kind::Update => {
            // The plan stays, so binds and deprovisions naming it stay valid.
            let body = json!({
                "service_id": SERVICE_ID,
                "plan_id": PLAN_SMALL,
                "parameters": {"max_connections": 50},
            });
            let path = format!("{base}?accepts_incomplete=true");
            send(http, address, reqwest::Method::PATCH, &path, Some(&body)).await
        }
        Kind::Bind => {
            let path = format!("{base}/service_bindings/{binding}?accepts_incomplete=true");
            send(
                http,
                address,
                reqwest::Method::PUT,
                &path,
                Some(&bind_body()),
            )
            .await
        }
        Kind::Deprovision => {
            let path = format!(
                "{base}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"
            );
            send(http, address, reqwest::Method::DELETE, &path, None).await
        }
    }
}

/// Waits until no operation is in progress in the shared database.
async fn settle(db: &tokio_postgres::Client) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let row = db
            .query_one(
                "SELECT count(*) FROM operations WHERE state = 'in progress'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "operations still in progress");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The deployer's tasks from its own state files: id → (deployment, action).
fn deployer_tasks(app: &TestApp) -> BTreeMap<String, (String, String)> {
    let dir = app
        .env
        .deployer_data
        .path()
        .join(deployer::startup::STATE_DIR)
        .join("tasks");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let record: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let task = &record["task"];
            let field = |k: &str| task[k].as_str().unwrap().to_string();
            (field("id"), (field("deployment"), field("action")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_brokers_on_one_postgres_run_each_of_200_conflicting_requests_at_most_once() {
    let pg = TestPostgres::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let app = spawn_app_with(|s| s.database.url = url.clone()).await;
    let replica = Replica::start(&app, &url).await;
    let addresses = [app.address.clone(), replica.address.clone()];

    let instances: Vec<(String, String)> = (0..4).map(|_| (new_id(), new_id())).collect();
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let _connection = tokio::spawn(connection);
    // Three waves, each settled before the next: the first led by provisions, so the others
    // meet an instance at every stage of its creation; the second updates and binds the
    // instances the first left (re-creating deleted ones); the third races deprovisions
    // against everything else. Requests per instance and kind:
    let waves: [&[(Kind, usize)]; 3] = [
        &[
            (Kind::Provision, 10),
            (Kind::Update, 3),
            (Kind::Bind, 3),
            (Kind::Deprovision, 4),
        ],
        &[(Kind::Provision, 3), (Kind::Update, 6), (Kind::Bind, 6)],
        &[
            (Kind::Provision, 3),
            (Kind::Update, 3),
            (Kind::Bind, 3),
            (Kind::Deprovision, 6),
        ],
    ];
    let mut statuses: BTreeMap<(Kind, u16), usize> = BTreeMap::new();
    let mut sent = 0;
    for (wave, counts) in waves.iter().enumerate() {
        let mut plan: Vec<(Kind, usize)> = Vec::new();
        for i in 0..instances.len() {
            for &(kind, count) in counts.iter() {
                plan.extend(std::iter::repeat_n((kind, i), count));
            }
        }
        plan[..].shuffle(&mut rand::rng());
        if wave == 0 {
            plan.sort_by_key(|(kind, _)| *kind != Kind::Provision);
            plan[10..].shuffle(&mut rand::rng());
        }
        sent += plan.len();
        let requests = plan.iter().enumerate().map(|(n, &(kind, i))| {
            let http = app.http.clone();
            let address = addresses[n % 2].clone();
            let (instance, binding) = instances[i].clone();
            tokio::spawn(async move {
                let answer = request(&http, &address, kind, &instance, &binding).await;
                (kind, i, answer)
            })
        });
        for answer in futures_util::future::join_all(requests).await {
            let (kind, i, answer) = answer.unwrap();
            *statuses.entry((kind, answer.status)).or_default() += 1;
            if !kind.allowed().contains(&answer.status) {
                // What the journal recorded for that instance tells why (the broker's log is
                // not captured here).
                let history = operations_of(&db, &instances[i].0).await;
                panic!("{kind:?} answered {answer:?}; the instance's operations: {history:#?}");
            }
            if answer.status == 422 {
                assert_eq!(answer.body["error"], "ConcurrencyError", "{answer:?}");
            }
            if answer.status >= 400 && answer.status != 410 {
                assert!(answer.body["description"].is_string(), "{answer:?}");
            }
        }
        settle(&db).await;
    }
    assert_eq!(sent, 200);
    eprintln!("answers (kind, status) → count: {statuses:?}");
    assert!(
        statuses.keys().any(|(_, s)| *s == 422),
        "the race produced no ConcurrencyError: {statuses:?}"
    );

    // No operation ran twice: every deployer task is the one task an operation recorded, or
    // the call of an operation cancelled (by a deprovision) at its deploy step before it could
    // record the answer; each such operation accounts for one task at most.
    let tasks = deployer_tasks(&app);
    let rows = db
        .query(
            "SELECT instance_id, kind, state, description, step, payload FROM operations",
            &[],
        )
        .await
        .unwrap();
    let mut recorded = BTreeSet::new();
    let mut cancelled_at_deploy: Vec<String> = Vec::new();
    for row in &rows {
        let payload: Value = serde_json::from_str(row.get::<_, &str>(5)).unwrap();
        match payload["task_id"].as_str() {
            Some(task) => assert!(recorded.insert(task.to_string()), "task {task} twice"),
            None => {
                let (kind, state, description, step) = (
                    row.get::<_, &str>(1),
                    row.get::<_, &str>(2),
                    row.get::<_, &str>(3),
                    row.get::<_, &str>(4),
                );
                if matches!(kind, "provision" | "update")
                    && state == "failed"
                    && description.starts_with("cancelled")
                    && step == "deploy"
                {
                    let instance: &str = row.get(0);
                    cancelled_at_deploy.push(spi_postgres::spec::deployment_name(instance));
                }
            }
        }
    }
    for task in &recorded {
        assert!(
            tasks.contains_key(task),
            "recorded task {task} unknown to the deployer"
        );
    }
    for (id, (deployment, action)) in &tasks {
        if recorded.contains(id) {
            continue;
        }
        assert_eq!(action, "apply", "unrecorded task {id}");
        let Some(at) = cancelled_at_deploy.iter().position(|d| d == deployment) else {
            panic!("deployer task {id} ({action} {deployment}) that no operation accounts for");
        };
        cancelled_at_deploy.swap_remove(at);
    }
    eprintln!(
        "deployer tasks: {} ({} recorded by operations)",
        tasks.len(),
        recorded.len()
    );

    // Each instance ended in one state, and the deployer holds exactly the live ones.
    let deployments: BTreeMap<String, DeploymentState> = app
        .deployments()
        .await
        .into_iter()
        .map(|d| (d.name.into(), d.state))
        .collect();
    let mut live = BTreeSet::new();
    for (instance, _) in &instances {
        let name = spi_postgres::spec::deployment_name(instance);
        let row = db
            .query_opt(
                "SELECT state, plan_id, deployment_name FROM service_instances WHERE id = $1",
                &[instance],
            )
            .await
            .unwrap();
        let fetched = send(
            &app.http,
            &addresses[1],
            reqwest::Method::GET,
            &format!("/v2/service_instances/{instance}"),
            None,
        )
        .await;
        match row.as_ref().map(|r| r.get::<_, &str>(0)) {
            Some("ready") => {
                let row = row.as_ref().unwrap();
                assert_eq!(fetched.status, 200, "{fetched:?}");
                assert_eq!(fetched.body["plan_id"], row.get::<_, &str>(1));
                assert_eq!(row.get::<_, Option<&str>>(2), Some(name.as_str()));
                assert_eq!(deployments.get(&name), Some(&DeploymentState::Running));
                live.insert(name);
            }
            Some("deleted") | None => {
                assert_eq!(fetched.status, 404, "{fetched:?}");
            }
            other => {
                let history: Vec<String> = rows
                    .iter()
                    .filter(|r| r.get::<_, &str>(0) == instance)
                    .map(|r| {
                        format!(
                            "{} {} at {}: {}",
                            r.get::<_, &str>(1),
                            r.get::<_, &str>(2),
                            r.get::<_, &str>(4),
                            r.get::<_, &str>(3)
                        )
                    })
                    .collect();
                panic!("instance {instance} ended {other:?}; its operations: {history:#?}")
            }
        }
    }
    let held: BTreeSet<String> = deployments.keys().cloned().collect();
    assert_eq!(held, live, "the deployer holds exactly the live instances");

    drop(replica);
    app.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_down_answers_503_and_in_flight_operations_finish_when_it_is_back() {
    let mut pg = TestPostgres::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let app = spawn_app_with(|s| {
        s.database.url = url.clone();
        s.worker.lease_ms = SHORT_LEASE_MS;
    })
    .await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let operation = answer.operation();

    pg.stop().await.unwrap();
    let binding = new_id();
    let requests = [
        (reqwest::Method::PUT, format!("/v2/service_instances/{}?accepts_incomplete=true", new_id()), Some(provision_body(json!({})))),
        (reqwest::Method::GET, format!("/v2/service_instances/{id}"), None),
        (reqwest::Method::GET, format!("/v2/service_instances/{id}/last_operation?operation={operation}"), None),
        (reqwest::Method::PATCH, format!("/v2/service_instances/{id}?accepts_incomplete=true"), Some(json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM}))),
        (reqwest::Method::PUT, format!("/v2/service_instances/{id}/service_bindings/{binding}"), Some(bind_body())),
        (reqwest::Method::GET, format!("/v2/service_instances/{id}/service_bindings/{binding}"), None),
        (reqwest::Method::GET, format!("/v2/service_instances/{id}/service_bindings/{binding}/last_operation"), None),
        (reqwest::Method::DELETE, format!("/v2/service_instances/{id}/service_bindings/{binding}?service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"), None),
        (reqwest::Method::DELETE, format!("/v2/service_instances/{id}?accepts_incomplete=true&service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"), None),
    ];
    for (method, path, body) in &requests {
        let answer = send(&app.http, &app.address, method.clone(), path, body.as_ref()).await;
        assert_eq!(answer.status, 503, "{method} {path}: {answer:?}");
        let description = answer.body["description"].as_str().unwrap_or_default();
        assert!(description.contains("database"), "{answer:?}");
    }
    // The catalog needs no database.
    assert_eq!(app.get("/v2/catalog").await.status, 200);

    pg.resume().await.unwrap();
    let (last, seen) = app.wait_for_instance(&id, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let bound = app.bind(&id, &binding, &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    let gone = app.deprovision(&id).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = app.wait_for_instance(&id, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

/// The operations of `instance`, oldest first: kind, state, binding and description.
async fn operations_of(db: &tokio_postgres::Client, instance: &str) -> Vec<String> {
    db.query(
        "SELECT kind, state, binding_id, description FROM operations \
         WHERE instance_id = $1 ORDER BY created_at_ms",
        &[&instance],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let binding: Option<String> = r.get(2);
        format!(
            "{} {} (binding {binding:?}): {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(3)
        )
    })
    .collect()
}
