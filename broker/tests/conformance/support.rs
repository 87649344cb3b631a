//! The stack shared by the rule tests that do not disturb each other (one broker, deployer,
//! SPI and one ready instance with one binding, started once per test binary on a runtime of
//! its own), and small request helpers. Every PostgreSQL server the shared deployer started is
//! stopped when the test process exits.

use crate::helpers::{bind_body, new_id, provision_body, spawn_app, Answer, TestApp};
use common::osb::codes;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The shared stack and what was made on it before the first test ran.
pub struct Shared {
    /// The stack.
    pub app: TestApp,
    /// A ready small instance, provisioned with `provision_body({})`.
    pub instance: String,
    /// A ready binding of `instance`, made with `bind_body()`.
    pub binding: String,
    /// The binding's connection URI.
    pub uri: String,
    /// Keeps the servers' tasks alive for the whole process.
    _runtime: tokio::runtime::Runtime,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
/// Directories to clean when the process exits (statics are never dropped).
static CLEANUP: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();

extern "C" fn stop_shared_servers() {
    if let Some((deployer_data, dirs)) = CLEANUP.get() {
        deployer::stop_all_servers(deployer_data);
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[expect(
    unsafe_code,
    reason = "atexit is the only hook that runs when the test harness exits, and the shared PostgreSQL servers must not outlive it"
)]
fn stop_servers_at_exit() {
    // SAFETY: registers a plain `extern "C"` function without arguments; it never unwinds
    // (stop_all_servers and remove_dir_all report errors as values).
    unsafe {
        libc::atexit(stop_shared_servers);
    }
}

/// The shared stack, started by the first test that asks for it.
pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        // Started on a thread of its own: the caller is inside a test's runtime, and the
        // servers must live on a runtime that outlives every test.
        std::thread::spawn(start_shared)
            .join()
            .expect("the shared stack starts")
    })
}

fn start_shared() -> Shared {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, instance, binding, uri) = runtime.block_on(async {
        let mut app = spawn_app().await;
        CLEANUP.get_or_init(|| {
            (
                app.env.deployer_data.path().to_path_buf(),
                vec![
                    app.env.deployer_data.path().to_path_buf(),
                    app.env.certs.path().to_path_buf(),
                    app.env.state.path().to_path_buf(),
                ],
            )
        });
        stop_servers_at_exit();
        // Tests run on their own runtimes: a pooled connection would belong to a runtime
        // that may be gone by the next request.
        app.without_connection_reuse();
        let instance = new_id();
        let answer = app
            .provision(&instance, &provision_body(json!({})), true)
            .await;
        assert_eq!(answer.status, 202, "{answer:?}");
        let (last, seen) = app.wait_for_instance(&instance, &answer.operation()).await;
        assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
        let binding = new_id();
        let bound = app.bind(&instance, &binding, &bind_body()).await;
        assert_eq!(bound.status, 201, "{bound:?}");
        let uri = bound.body["credentials"]["uri"]
            .as_str()
            .unwrap()
            .to_string();
        (app, instance, binding, uri)
    });
    Shared {
        app,
        instance,
        binding,
        uri,
        _runtime: runtime,
    }
}

/// Sends `method path` with Basic auth, the version header and an optional JSON body.
pub async fn send(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let mut req = app.request(method, path);
    if let Some(body) = body {
        req = req.json(body);
    }
    Answer::from(req.send().await.unwrap()).await
}

/// `PATCH /v2/service_instances/{id}`.
pub async fn update(app: &TestApp, id: &str, body: &Value, accepts_incomplete: bool) -> Answer {
    let query = if accepts_incomplete {
        "?accepts_incomplete=true"
    } else {
        ""
    };
    send(
        app,
        Method::PATCH,
        &format!("/v2/service_instances/{id}{query}"),
        Some(body),
    )
    .await
}

/// A new ready instance of the small plan with `parameters`.
pub async fn provisioned(app: &TestApp, parameters: Value) -> String {
    let id = new_id();
    let answer = app.provision(&id, &provision_body(parameters), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    id
}

/// Asserts an OSB error body: a JSON object whose `error` and `description`, when present,
/// are non-empty strings.
pub fn assert_error_body(answer: &Answer) {
    let body = answer
        .body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {answer:?}"));
    for field in ["error", "description"] {
        if let Some(v) = body.get(field) {
            assert!(
                v.as_str().is_some_and(|s| !s.is_empty()),
                "{field} must be a non-empty string: {answer:?}"
            );
        }
    }
}

/// Asserts a 422 with the fixed error code `code`.
pub fn assert_422(answer: &Answer, code: &str) {
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["error"], code, "{answer:?}");
    assert_error_body(answer);
}

/// Asserts 422 `ConcurrencyError`.
pub fn assert_concurrency_error(answer: &Answer) {
    assert_422(answer, codes::CONCURRENCY_ERROR);
}

/// The instance as GET shows it (asserting 200).
pub async fn fetch_instance(app: &TestApp, id: &str) -> Value {
    let answer = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// An update body changing to `plan` with `parameters`.
pub fn update_body(plan: &str, parameters: Value) -> Value {
    json!({
        "service_id": crate::helpers::SERVICE_ID,
        "plan_id": plan,
        "parameters": parameters,
    })
}
