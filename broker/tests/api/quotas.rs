//! Instance quotas over HTTP: each level (global, service, plan, organization, space) refuses
//! a provision with a 422 naming the limit, its value and the count, and stores nothing; a plan
//! change into a full plan is refused the same way; a refusal leaves no event flows owed; a
//! changed settings file applies without a restart; and 50 concurrent provisions on two
//! brokers sharing one PostgreSQL database end with exactly the limit created.

use crate::flows::{flows_rows, Recorder};
use crate::helpers::{
    keyvalue_provision_body, new_id, spawn_services, Answer, TestApp, KEYVALUE_PLAN,
    KEYVALUE_SERVICE_ID,
};
use crate::process::config_toml;
use crate::replicas::{send, Replica};
use broker::config::{QuotaSettings, Settings};
use broker::flows::FlowKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::TestPostgres;

const KV_PLAN_MEDIUM: &str = spi_keyvalue::offering::PLAN_MEDIUM_ID;

/// A key-value provision body placed in `org` / `space` (Cloud Foundry style, with a context).
fn placed(org: &str, space: &str) -> Value {
    let mut body = keyvalue_provision_body();
    body["organization_guid"] = json!(org);
    body["space_guid"] = json!(space);
    body["context"] = json!({
        "platform": "cloudfoundry", "organization_guid": org, "space_guid": space
    });
    body
}

fn entries(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The stack with spi-keyvalue and a broker on `settings_tweak`ed settings.
async fn keyvalue_stack(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    tweak(&mut settings);
    app.start_broker(settings).await;
    app
}

/// Puts `quotas` in force on the running broker, as a settings reload does.
fn set_quotas(app: &TestApp, quotas: QuotaSettings) {
    app.catalog.as_ref().unwrap().set_quotas(quotas);
}

/// Asserts a quota refusal with `description`, and that the instance left no trace: not
/// fetchable, no last operation, no new deployment.
async fn assert_refused(app: &TestApp, id: &str, answer: &Answer, description: &str) {
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["description"], description, "{answer:?}");
    assert!(answer.body.get("error").is_none(), "{answer:?}");
    let fetched = app.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    let last = app
        .get(&format!("/v2/service_instances/{id}/last_operation"))
        .await;
    assert_eq!(last.status, 404, "{last:?}");
}

/// Quota settings with one level (or several) full for an instance in org-1 / space-1 of the
/// key-value small plan, and the refusal each leads to when one such instance exists.
fn levels() -> Vec<(QuotaSettings, &'static str)> {
    vec![
        (
            QuotaSettings {
                global: Some(1),
                ..Default::default()
            },
            "global quota exceeded: the broker allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                services: entries(&[("keyvalue", 1)]),
                ..Default::default()
            },
            "service quota exceeded: service keyvalue allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                plans: entries(&[(KEYVALUE_PLAN, 1)]),
                ..Default::default()
            },
            "plan quota exceeded: plan small of service keyvalue allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                organizations: entries(&[("org-1", 1)]),
                ..Default::default()
            },
            "organization quota exceeded: organization org-1 allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                per_organization: Some(1),
                ..Default::default()
            },
            "organization quota exceeded: organization org-1 allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                spaces: entries(&[("space-1", 1)]),
                ..Default::default()
            },
            "space quota exceeded: space space-1 allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                per_space: Some(1),
                ..Default::default()
            },
            "space quota exceeded: space space-1 allows 1 instance, 1 exists",
        ),
        // Every level full: the first in the order global, service, plan, … is named.
        (
            QuotaSettings {
                global: Some(1),
                services: entries(&[(KEYVALUE_SERVICE_ID, 1)]),
                plans: entries(&[("keyvalue/small", 1)]),
                per_organization: Some(1),
                per_space: Some(1),
                ..Default::default()
            },
            "global quota exceeded: the broker allows 1 instance, 1 exists",
        ),
        (
            QuotaSettings {
                global: Some(5),
                services: entries(&[("keyvalue", 1)]),
                plans: entries(&[("keyvalue/small", 1)]),
                ..Default::default()
            },
            "service quota exceeded: service keyvalue allows 1 instance, 1 exists",
        ),
    ]
}

/// An asynchronous update of instance `id`.
async fn patch(app: &TestApp, id: &str, body: &Value) -> Answer {
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let response = app.request(reqwest::Method::PATCH, &path).json(body);
    Answer::from(response.send().await.unwrap()).await
}

/// A plan change into a full plan is refused too, and the instance stays as it was.
async fn assert_a_plan_change_into_a_full_plan_is_refused(app: &TestApp, first: &str) {
    set_quotas(
        app,
        QuotaSettings {
            plans: entries(&[("keyvalue/medium", 0)]),
            ..Default::default()
        },
    );
    let change = json!({"service_id": KEYVALUE_SERVICE_ID, "plan_id": KV_PLAN_MEDIUM});
    let refused = patch(app, first, &change).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(
        refused.body["description"],
        "plan quota exceeded: plan medium of service keyvalue allows 0 instances, 0 exist"
    );
    let fetched = app.get(&format!("/v2/service_instances/{first}")).await;
    assert_eq!(fetched.body["plan_id"], KEYVALUE_PLAN, "{fetched:?}");
    let last = app
        .get(&format!("/v2/service_instances/{first}/last_operation"))
        .await;
    assert_eq!(
        last.body["state"], "succeeded",
        "still the provision: {last:?}"
    );
}

/// Quotas of other organizations and spaces leave the instance alone; staying on the plan is
/// no plan change.
async fn assert_other_scopes_leave_the_instance_alone(app: &TestApp, first: &str) {
    set_quotas(
        app,
        QuotaSettings {
            organizations: entries(&[("org-2", 0)]),
            spaces: entries(&[("space-2", 0)]),
            plans: entries(&[("keyvalue/small", 1)]),
            ..Default::default()
        },
    );
    let same_plan = json!({
        "service_id": KEYVALUE_SERVICE_ID,
        "plan_id": KEYVALUE_PLAN,
        "parameters": {"maxmemory-policy": "allkeys-lru"}
    });
    let update = patch(app, first, &same_plan).await;
    assert_eq!(update.status, 202, "{update:?}");
    let (done, _) = app.wait_for_instance(first, &update.operation()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_quota_level_refuses_with_a_422_naming_the_limit_and_stores_nothing() {
    let app = keyvalue_stack(|_| {}).await;
    let first = new_id();
    let answer = app
        .provision(&first, &placed("org-1", "space-1"), true)
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (done, _) = app.wait_for_instance(&first, &answer.operation()).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    for (quotas, description) in levels() {
        set_quotas(&app, quotas.clone());
        let id = new_id();
        let answer = app.provision(&id, &placed("org-1", "space-1"), true).await;
        assert_refused(&app, &id, &answer, description).await;
        // The instance that exists is not refused when its provision is repeated.
        let repeat = app
            .provision(&first, &placed("org-1", "space-1"), true)
            .await;
        assert_eq!(repeat.status, 200, "{quotas:?}: {repeat:?}");
    }
    assert_eq!(
        app.deployments().await.len(),
        1,
        "no deployment for a refusal"
    );

    assert_a_plan_change_into_a_full_plan_is_refused(&app, &first).await;
    assert_other_scopes_leave_the_instance_alone(&app, &first).await;
    let delete = app.delete_keyvalue(&first, None).await;
    assert_eq!(delete.status, 202, "{delete:?}");
    let (done, _) = app.wait_for_instance(&first, &delete.operation()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_leaves_no_flows_row_and_runs_no_end_flows() {
    let rec = Recorder::default();
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.quotas.global = Some(0);
    app.start_broker_with_flows(settings, rec.everywhere())
        .await;
    let id = new_id();
    let answer = app.provision(&id, &placed("org-1", "space-1"), true).await;
    let description = "global quota exceeded: the broker allows 0 instances, 0 exist";
    assert_refused(&app, &id, &answer, description).await;
    // The initialization flow ran before the count; the operation that owed completion and
    // error flows was never stored, so neither is its flows row.
    assert_eq!(rec.of("init", FlowKind::Provision, &id).len(), 1, "{rec:?}");
    assert_eq!(flows_rows(&app), 0, "a flows row outlived the refusal");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for registry in ["completion", "error"] {
        let seen = rec.of(registry, FlowKind::Provision, &id);
        assert!(seen.is_empty(), "{registry}: {seen:#?}");
    }
}

/// Provisions until one is accepted (or the deadline passes); the accepted id and operation.
async fn provision_until_accepted(app: &TestApp, deadline: Duration) -> (String, String) {
    let until = Instant::now() + deadline;
    loop {
        let id = new_id();
        let answer = app.provision(&id, &placed("org-1", "space-1"), true).await;
        if answer.status == 202 {
            return (id, answer.operation());
        }
        assert_eq!(answer.status, 422, "{answer:?}");
        assert!(Instant::now() < until, "still refused: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_changed_in_the_settings_file_applies_without_a_restart() {
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.catalog_refresh_secs = 1;
    let file = app.env.state.path().join("broker-quotas.toml");
    let write = |quotas: &str| {
        std::fs::write(
            &file,
            format!("{}[quotas]\n{quotas}", config_toml(&settings)),
        )
        .unwrap();
    };
    write("global = 0\n");
    let loaded = Settings::load(Some(&file)).unwrap();
    assert_eq!(loaded.quotas.global, Some(0));
    app.start_broker(loaded).await;

    let id = new_id();
    let answer = app.provision(&id, &placed("org-1", "space-1"), true).await;
    assert_refused(
        &app,
        &id,
        &answer,
        "global quota exceeded: the broker allows 0 instances, 0 exist",
    )
    .await;

    // Raised in the file: the next refresh (every second here) puts it in force.
    write("global = 5\n[quotas.plans]\n\"keyvalue/small\" = 1\n");
    let (first, operation) = provision_until_accepted(&app, Duration::from_secs(20)).await;
    let id = new_id();
    let answer = app.provision(&id, &placed("org-1", "space-1"), true).await;
    assert_refused(
        &app,
        &id,
        &answer,
        "plan quota exceeded: plan small of service keyvalue allows 1 instance, 1 exists",
    )
    .await;
    let (done, _) = app.wait_for_instance(&first, &operation).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    // Removed from the file: nothing limits any more.
    write("");
    let (second, operation) = provision_until_accepted(&app, Duration::from_secs(20)).await;
    let (done, _) = app.wait_for_instance(&second, &operation).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    for id in [first, second] {
        let delete = app.delete_keyvalue(&id, None).await;
        assert_eq!(delete.status, 202, "{delete:?}");
        let (done, _) = app.wait_for_instance(&id, &delete.operation()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_provisions_on_two_brokers_create_exactly_the_limit() {
    const LIMIT: i64 = 3;
    const REQUESTS: usize = 50;
    let pg = TestPostgres::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let quotas = QuotaSettings {
        plans: entries(&[("keyvalue/small", LIMIT as u64)]),
        ..Default::default()
    };
    let app = keyvalue_stack(|s| {
        s.database.url = url.clone();
        s.quotas = quotas.clone();
    })
    .await;
    let mut settings = app.broker_settings();
    settings.database.url = url.clone();
    settings.quotas = quotas;
    let other = Replica::with_settings(settings).await;
    let addresses = [app.address.clone(), other.address.clone()];

    let requests = (0..REQUESTS).map(|n| {
        let http = app.http.clone();
        let address = addresses[n % 2].clone();
        tokio::spawn(async move {
            let id = new_id();
            let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
            let body = placed("org-1", "space-1");
            let answer = send(&http, &address, reqwest::Method::PUT, &path, Some(&body)).await;
            (id, answer)
        })
    });
    let mut accepted = Vec::new();
    let mut refused = 0;
    for joined in futures_util::future::join_all(requests).await {
        let (id, answer) = joined.unwrap();
        match answer.status {
            202 => accepted.push((id, answer.operation())),
            422 => {
                let description = answer.body["description"].as_str().unwrap_or_default();
                assert_eq!(
                    description,
                    format!(
                        "plan quota exceeded: plan small of service keyvalue allows {LIMIT} instances, {LIMIT} exist"
                    ),
                    "{answer:?}"
                );
                refused += 1;
            }
            _ => panic!("unexpected answer {answer:?}"),
        }
    }
    assert_eq!(accepted.len() as i64, LIMIT, "accepted: {accepted:?}");
    assert_eq!(refused, REQUESTS - LIMIT as usize);

    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let _connection = tokio::spawn(connection);
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM service_instances WHERE state <> 'deleted'").await,
        LIMIT
    );
    assert_eq!(count("SELECT count(*) FROM operations").await, LIMIT);
    for (id, operation) in &accepted {
        let (done, _) = app.wait_for_instance(id, operation).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    assert_eq!(app.deployments().await.len() as i64, LIMIT);
    for (id, _) in &accepted {
        let delete = app.delete_keyvalue(id, None).await;
        assert_eq!(delete.status, 202, "{delete:?}");
        let (done, _) = app.wait_for_instance(id, &delete.operation()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
}
