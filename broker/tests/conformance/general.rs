//! §8 "General, headers, auth": rules 1, 4, 6-12.

use crate::helpers::{
    bind_body, new_id, provision_body, spawn_app_with, Answer, PASSWORD, PLAN_MEDIUM, PLAN_SMALL,
    SERVICE_ID, USERNAME,
};
use crate::support::{
    assert_422, assert_error_body, fetch_instance, provisioned, send, shared, update, update_body,
};
use common::osb::codes;
use reqwest::Method;
use serde_json::json;

/// Every OSB endpoint of the shared instance and binding, with a method it supports.
pub fn endpoints(instance: &str, binding: &str) -> Vec<(Method, String)> {
    let i = format!("/v2/service_instances/{instance}");
    let b = format!("{i}/service_bindings/{binding}");
    let q = format!("service_id={SERVICE_ID}&plan_id={PLAN_SMALL}");
    vec![
        (Method::GET, "/v2/catalog".into()),
        (Method::PUT, format!("{i}?accepts_incomplete=true")),
        (Method::GET, i.clone()),
        (Method::PATCH, format!("{i}?accepts_incomplete=true")),
        (Method::DELETE, format!("{i}?accepts_incomplete=true&{q}")),
        (Method::GET, format!("{i}/last_operation")),
        (Method::PUT, b.clone()),
        (Method::GET, b.clone()),
        (Method::DELETE, format!("{b}?{q}")),
        (Method::GET, format!("{b}/last_operation")),
    ]
}

#[tokio::test]
async fn rule_001_every_endpoint_answers_401_without_or_with_wrong_credentials() {
    let s = shared();
    let app = &s.app;
    let before = fetch_instance(app, &s.instance).await;
    let identity = format!(
        "cloudfoundry {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            r#"{"user_id":"u"}"#
        )
    );
    for (method, path) in endpoints(&s.instance, &s.binding) {
        for auth in [None, Some("wrong-password"), Some("")] {
            // Neither a missing version header nor a malformed identity changes the 401.
            for (version, identity) in [
                (Some("2.17"), Some(identity.as_str())),
                (None, Some("garbage !!")),
                (Some("banana"), None),
            ] {
                let mut req = app
                    .http
                    .request(method.clone(), format!("{}{path}", app.address))
                    .json(&provision_body(json!({})));
                if let Some(password) = auth {
                    req = req.basic_auth(USERNAME, Some(password));
                }
                if let Some(v) = version {
                    req = req.header("X-Broker-API-Version", v);
                }
                if let Some(id) = identity {
                    req = req.header("X-Broker-API-Originating-Identity", id);
                }
                let answer = Answer::from(req.send().await.unwrap()).await;
                assert_eq!(answer.status, 401, "{method} {path} {auth:?}: {answer:?}");
                assert_error_body(&answer);
            }
        }
    }
    // Bearer tokens are another scheme: also 401.
    let answer = Answer::from(
        app.http
            .get(format!("{}/v2/catalog", app.address))
            .bearer_auth(PASSWORD)
            .header("X-Broker-API-Version", "2.17")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(fetch_instance(app, &s.instance).await, before);
}

#[tokio::test]
async fn rule_004_a_missing_malformed_or_unsupported_version_header_is_412_naming_2_17() {
    let s = shared();
    let app = &s.app;
    for (method, path) in endpoints(&s.instance, &s.binding) {
        for version in [
            None,
            Some("3.0"),
            Some("1.13"),
            Some("2"),
            Some("two.seventeen"),
        ] {
            let mut req = app
                .http
                .request(method.clone(), format!("{}{path}", app.address))
                .basic_auth(USERNAME, Some(PASSWORD))
                .json(&provision_body(json!({})));
            if let Some(v) = version {
                req = req.header("X-Broker-API-Version", v);
            }
            let answer = Answer::from(req.send().await.unwrap()).await;
            assert_eq!(
                answer.status, 412,
                "{method} {path} {version:?}: {answer:?}"
            );
            assert!(
                answer.body["description"]
                    .as_str()
                    .unwrap()
                    .contains("2.17"),
                "{answer:?}"
            );
        }
    }
    // Any 2.x minor is served: platforms send 2.13 (Kubernetes) and 2.15 (Cloud Foundry).
    for version in ["2.13", "2.15", "2.17"] {
        let answer = Answer::from(
            app.http
                .get(format!("{}/v2/catalog", app.address))
                .basic_auth(USERNAME, Some(PASSWORD))
                .header("X-Broker-API-Version", version)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 200, "{version}: {answer:?}");
    }
}

#[tokio::test]
async fn rule_006_the_request_identity_is_echoed_on_every_answer_success_or_error() {
    let s = shared();
    let app = &s.app;
    // Unknown ids: these requests are sent with valid credentials and must touch nothing.
    for (method, path) in endpoints(&new_id(), &new_id()) {
        let id = format!("req-{}", new_id());
        let answer = Answer::from(
            app.request(method.clone(), &path)
                .header("X-Broker-API-Request-Identity", &id)
                .json(&json!({"service_id": ""}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            answer.request_id.as_deref(),
            Some(id.as_str()),
            "{method} {path}"
        );
    }
    // Also on 401 and 412, and a generated one when the platform sends none.
    let answer = Answer::from(
        app.http
            .get(format!("{}/v2/catalog", app.address))
            .header("X-Broker-API-Request-Identity", "req-401")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.request_id.as_deref(), Some("req-401"));
    let answer = app.get("/v2/catalog").await;
    assert!(answer.request_id.is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn rule_007_vendor_extension_fields_are_ignored_and_never_cause_rejection() {
    let s = shared();
    let app = &s.app;
    let mut body = provision_body(json!({}));
    body["x-acme-tenant"] = json!({"tier": "gold"});
    body["context"]["x-acme-region"] = json!("eu");
    body["maintenance_info"] = json!({"version": "15.0.0", "x-acme": 1});
    let repeat = app.provision(&s.instance, &body, true).await;
    assert_eq!(repeat.status, 200, "{repeat:?}");

    let mut bind = bind_body();
    bind["x-acme-audit"] = json!(true);
    bind["bind_resource"]["x-acme-pod"] = json!("p-1");
    let again = app.bind(&s.instance, &s.binding, &bind).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["credentials"]["uri"], s.uri.as_str());

    // Unknown query parameters too.
    let answer = app
        .get(&format!(
            "/v2/service_instances/{}/last_operation?x-acme=1&foo=bar",
            s.instance
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = app.get("/v2/catalog?x-acme=1").await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn rule_008_where_the_spec_names_a_status_code_exactly_that_code_is_answered() {
    let s = shared();
    let app = &s.app;
    let unknown = new_id();
    let q = format!("service_id={SERVICE_ID}&plan_id={PLAN_SMALL}");
    let cases: Vec<(Method, String, Option<serde_json::Value>, u16)> = vec![
        // Deprovision and unbind of what does not exist: 410.
        (
            Method::DELETE,
            format!("/v2/service_instances/{unknown}?accepts_incomplete=true&{q}"),
            None,
            410,
        ),
        (
            Method::DELETE,
            format!(
                "/v2/service_instances/{}/service_bindings/{unknown}?{q}",
                s.instance
            ),
            None,
            410,
        ),
        // last_operation and fetches of what does not exist: 404.
        (
            Method::GET,
            format!("/v2/service_instances/{unknown}/last_operation"),
            None,
            404,
        ),
        (
            Method::GET,
            format!("/v2/service_instances/{unknown}"),
            None,
            404,
        ),
        (
            Method::GET,
            format!(
                "/v2/service_instances/{}/service_bindings/{unknown}",
                s.instance
            ),
            None,
            404,
        ),
        (
            Method::GET,
            format!(
                "/v2/service_instances/{}/service_bindings/{unknown}/last_operation",
                s.instance
            ),
            None,
            404,
        ),
        // Same id, other attributes: 409.
        (
            Method::PUT,
            format!(
                "/v2/service_instances/{}?accepts_incomplete=true",
                s.instance
            ),
            Some(provision_body(json!({"max_connections": 77}))),
            409,
        ),
        // Async-only without accepts_incomplete: 422.
        (
            Method::PUT,
            format!("/v2/service_instances/{unknown}"),
            Some(provision_body(json!({}))),
            422,
        ),
        // Malformed: 400.
        (
            Method::PUT,
            format!("/v2/service_instances/{unknown}?accepts_incomplete=true"),
            Some(json!({"plan_id": PLAN_SMALL})),
            400,
        ),
    ];
    for (method, path, body, status) in cases {
        let answer = send(app, method.clone(), &path, body.as_ref()).await;
        assert_eq!(answer.status, status, "{method} {path}: {answer:?}");
    }
}

#[tokio::test]
async fn rule_009_error_bodies_have_non_empty_error_and_description_strings() {
    let s = shared();
    let app = &s.app;
    let unknown = new_id();
    let answers = vec![
        app.provision(&unknown, &provision_body(json!({})), false)
            .await,
        app.provision(&unknown, &json!({"service_id": ""}), true)
            .await,
        app.provision(
            &s.instance,
            &provision_body(json!({"max_connections": 99})),
            true,
        )
        .await,
        app.get(&format!("/v2/service_instances/{unknown}")).await,
        app.deprovision(&unknown).await,
        update(
            app,
            &s.instance,
            &json!({"service_id": SERVICE_ID, "parameters": {"nope": 1}}),
            true,
        )
        .await,
        app.bind(&unknown, &unknown, &bind_body()).await,
        app.get("/v2/nowhere").await,
    ];
    for answer in answers {
        assert!((400..500).contains(&answer.status), "{answer:?}");
        assert_error_body(&answer);
        if answer.status != 410 {
            assert!(answer.body["description"].is_string(), "{answer:?}");
        }
    }
}

/// A stack whose broker can be restarted with other settings, with one ready instance.
#[tokio::test]
async fn rule_010_instance_usable_and_update_repeatable_appear_only_for_failed_updates_and_deprovisions(
) {
    let mut app = spawn_app_with(|_| {}).await;
    let id = provisioned(&app, json!({})).await;
    let (last, _) = app.wait_for_instance(&id, "").await;
    assert!(last.get("instance_usable").is_none(), "{last}");
    assert!(last.get("update_repeatable").is_none(), "{last}");

    // The same broker with no time for any operation: the update and the deprovision fail.
    app.stop_broker().await;
    let mut settings = app.broker_settings();
    settings.worker.max_operation_secs = 0;
    app.start_broker(settings).await;

    let answer = update(&app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(last["instance_usable"], true, "{last}");
    assert_eq!(last["update_repeatable"], true, "{last}");
    // A failed update leaves the instance as it was.
    let fetched = fetch_instance(&app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_SMALL);

    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(last["instance_usable"], false, "{last}");
    assert!(last.get("update_repeatable").is_none(), "{last}");

    // Orphan mitigation with a broker that has time again: the DELETE cleans up.
    app.stop_broker().await;
    let settings = app.broker_settings();
    app.start_broker(settings).await;
    let answer = app.deprovision(&id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}

#[tokio::test]
async fn rule_011_the_fixed_error_codes_are_used_verbatim() {
    let s = shared();
    let app = &s.app;
    let unknown = new_id();
    let answer = app
        .provision(&unknown, &provision_body(json!({})), false)
        .await;
    assert_422(&answer, codes::ASYNC_REQUIRED);
    let mut body = provision_body(json!({}));
    body["maintenance_info"] = json!({"version": "14.0.0"});
    let answer = app.provision(&unknown, &body, true).await;
    assert_422(&answer, codes::MAINTENANCE_INFO_CONFLICT);
    let answer = update(
        app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "maintenance_info": {"version": "99.0.0"}}),
        true,
    )
    .await;
    assert_422(&answer, codes::MAINTENANCE_INFO_CONFLICT);
    // ConcurrencyError: see rules 33, 57, 75, 95 and 102, which need an operation running.
}

#[tokio::test]
async fn rule_012_a_4xx_leaves_the_broker_state_unchanged() {
    let s = shared();
    let app = &s.app;
    let instance = format!("/v2/service_instances/{}", s.instance);
    let binding = format!("{instance}/service_bindings/{}", s.binding);
    let before = fetch_instance(app, &s.instance).await;
    let last_before = app.get(&format!("{instance}/last_operation")).await.body;
    let binding_before = app.get(&binding).await.body;

    let refused = vec![
        app.provision(
            &s.instance,
            &provision_body(json!({"max_connections": 99})),
            true,
        )
        .await,
        update(
            app,
            &s.instance,
            &update_body(PLAN_SMALL, json!({"max_connections": 5})),
            true,
        )
        .await,
        update(
            app,
            &s.instance,
            &update_body(PLAN_MEDIUM, json!({})),
            false,
        )
        .await,
        update(
            app,
            &s.instance,
            &json!({"service_id": SERVICE_ID, "maintenance_info": {"version": "1.0.0"}}),
            true,
        )
        .await,
        send(
            app,
            Method::DELETE,
            &format!("{instance}?accepts_incomplete=true"),
            None,
        )
        .await,
        send(
            app,
            Method::DELETE,
            &format!("{instance}?service_id={SERVICE_ID}&plan_id={PLAN_SMALL}"),
            None,
        )
        .await,
        app.bind(
            &s.instance,
            &s.binding,
            &json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL, "parameters": {"x": 1}}),
        )
        .await,
        send(app, Method::DELETE, &binding, None).await,
    ];
    for answer in &refused {
        assert!((400..500).contains(&answer.status), "{answer:?}");
    }
    assert_eq!(fetch_instance(app, &s.instance).await, before);
    assert_eq!(
        app.get(&format!("{instance}/last_operation")).await.body,
        last_before
    );
    assert_eq!(app.get(&binding).await.body, binding_before);
    crate::helpers::query_with(&s.uri)
        .await
        .expect("the binding still works");
}

/// An async provision of the small plan sent with `X-Broker-API-Originating-Identity: identity`
/// and, if given, `X-Broker-API-Request-Identity: request_id`.
async fn provision_as(
    app: &crate::helpers::TestApp,
    id: &str,
    identity: &str,
    request_id: Option<&str>,
) -> Answer {
    let mut req = app
        .request(
            Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        )
        .header("X-Broker-API-Originating-Identity", identity);
    if let Some(request_id) = request_id {
        req = req.header("X-Broker-API-Request-Identity", request_id);
    }
    Answer::from(req.json(&provision_body(json!({}))).send().await.unwrap()).await
}

#[tokio::test]
async fn originating_identity_of_both_profiles_is_accepted_and_recorded_with_the_operation() {
    let s = shared();
    let app = &s.app;
    let encode =
        |json: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, json);
    let store = broker::store::Store::connect(&app.broker_settings().database.url)
        .await
        .unwrap();
    for identity in [
        format!(
            "cloudfoundry {}",
            encode(r#"{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}"#)
        ),
        format!(
            "kubernetes {}",
            encode(
                r#"{"username":"duke","uid":"c2dde242","groups":["admin","dev"],"extra":{"mydata":["data1"]}}"#
            )
        ),
    ] {
        let id = new_id();
        let request_id = format!("req-{}", new_id());
        let answer = provision_as(app, &id, &identity, Some(&request_id)).await;
        assert_eq!(answer.status, 202, "{identity}: {answer:?}");
        let op = store
            .operation(&answer.operation())
            .await
            .unwrap()
            .expect("the operation is in the journal");
        assert_eq!(op.originating_identity.as_deref(), Some(identity.as_str()));
        assert_eq!(op.request_id.as_deref(), Some(request_id.as_str()));
        // The deprovision halts the provision; the instance leaves nothing behind.
        let answer = app.deprovision(&id).await;
        assert_eq!(answer.status, 202, "{answer:?}");
        let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
        assert_eq!(last["state"], "succeeded", "{last}");
    }
}

#[tokio::test]
async fn a_malformed_originating_identity_is_400_and_changes_nothing() {
    let s = shared();
    let app = &s.app;
    let before = fetch_instance(app, &s.instance).await;
    let encode =
        |json: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, json);
    for identity in [
        "cloudfoundry".to_string(),
        "cloudfoundry not-base64!".to_string(),
        format!("cloudfoundry {}", encode("[1,2]")),
        format!("cloudfoundry {}", encode(r#"{"name":"x"}"#)),
        format!("kubernetes {}", encode(r#"{"username":"duke"}"#)),
    ] {
        let id = new_id();
        let answer = provision_as(app, &id, &identity, None).await;
        assert_eq!(answer.status, 400, "{identity}: {answer:?}");
        assert!(
            answer.body["description"]
                .as_str()
                .unwrap()
                .contains("X-Broker-API-Originating-Identity"),
            "{answer:?}"
        );
        assert_eq!(
            app.get(&format!("/v2/service_instances/{id}/last_operation"))
                .await
                .status,
            404
        );
    }
    assert_eq!(fetch_instance(app, &s.instance).await, before);
}

/// Log lines written while the tests run, from every thread of the process: one global
/// subscriber, installed by the first test that asks (each test runs in a process of its own
/// under nextest; under `cargo test` the tests share it and find their lines by request id).
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn install() -> Self {
        static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Self::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the tests install the only subscriber of their process");
            logs
        })
        .clone()
    }

    /// The lines logged by `target` that carry `needle`.
    fn lines(&self, target: &str, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(target) && l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// The lines the HTTP edge of internal service `service` (`spi-postgres`, `deployer`)
    /// logged for the requests it served under request id `request_id`, exactly that id.
    fn served_by(&self, service: &str, request_id: &str) -> Vec<String> {
        self.lines(
            "service_edge::request",
            &format!("request.id={request_id} "),
        )
        .into_iter()
        .filter(|l| l.contains(&format!("service={service} ")))
        .collect()
    }
}

#[tokio::test]
async fn request_and_originating_identity_reach_the_spi_and_the_deployer_and_their_logs() {
    let logs = CapturedLogs::install();
    let app = &shared().app;
    let identity = format!(
        "cloudfoundry {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            r#"{"user_id":"4f8a7c2e-identity-probe"}"#
        )
    );
    let request_id = format!("req-{}", new_id());
    let id = new_id();
    let answer = provision_as(app, &id, &identity, Some(&request_id)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // The SPI validated the request and produced the spec; the deployer deployed it: each
    // served those calls under the platform's request id, and knew who asked.
    for service in ["spi-postgres", "deployer"] {
        let served = logs.served_by(service, &request_id);
        assert!(
            !served.is_empty(),
            "{service} logged nothing under request id {request_id}"
        );
        assert!(
            served.iter().all(|l| l.contains(&identity)),
            "{service} did not receive the originating identity: {served:#?}"
        );
    }
    let answer = app.deprovision(&id).await;
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

#[tokio::test]
async fn a_request_id_of_the_longest_accepted_length_crosses_broker_spi_and_deployer_unchanged() {
    let logs = CapturedLogs::install();
    let app = &shared().app;
    let store = broker::store::Store::connect(&app.broker_settings().database.url)
        .await
        .unwrap();
    let prefix = format!("req-{}-", new_id());
    let request_id = format!(
        "{prefix}{}",
        "x".repeat(common::ids::MAX_ID_LEN - prefix.len())
    );
    assert_eq!(request_id.len(), 256);
    let identity = format!(
        "cloudfoundry {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            r#"{"user_id":"long-request-id-probe"}"#
        )
    );
    let id = new_id();
    let answer = provision_as(app, &id, &identity, Some(&request_id)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    // The broker answered and recorded the operation under the id as sent...
    assert_eq!(answer.request_id.as_deref(), Some(request_id.as_str()));
    let op = store
        .operation(&answer.operation())
        .await
        .unwrap()
        .expect("the operation is in the journal");
    assert_eq!(op.request_id.as_deref(), Some(request_id.as_str()));
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // ...and the SPI and the deployer served its calls under the same id, not a fresh one.
    for service in ["spi-postgres", "deployer"] {
        assert!(
            !logs.served_by(service, &request_id).is_empty(),
            "{service} logged nothing under the {}-character request id",
            request_id.len()
        );
    }
    let answer = app.deprovision(&id).await;
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}
