//! The fake BOSH Director against a plain HTTPS client (its CA, no redirects followed): the
//! Director API the deployer's `bosh` backend relies on, and the real servers behind it.

#[path = "fake_director/lifecycle.rs"]
mod lifecycle;
#[path = "fake_director/support.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use support::{basic, manifest, postgres, redis, Fixture};
use testkit::bosh::{AuthKind, FakeOptions, TaskEnd};

#[tokio::test]
async fn info_is_open_and_names_basic_or_uaa_auth() {
    let f = Fixture::start(basic()).await;
    let resp = f
        .http
        .get(format!("{}/info", f.fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["user_authentication"]["type"], "basic");
    assert!(info["name"].is_string() && info["uuid"].is_string() && info["version"].is_string());

    let f = Fixture::start(FakeOptions {
        auth: AuthKind::Uaa,
        ..basic()
    })
    .await;
    let info: Value = f
        .http
        .get(format!("{}/info", f.fake.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["user_authentication"]["type"], "uaa");
    assert_eq!(
        info["user_authentication"]["options"]["url"],
        f.fake.uaa_url()
    );
}

#[tokio::test]
async fn other_routes_answer_401_with_www_authenticate_without_valid_basic_credentials() {
    let f = Fixture::start(basic()).await;
    let url = format!("{}/deployments", f.fake.url());
    let (user, password) = f.fake.credentials();
    for request in [
        f.http.get(&url),
        f.http.get(&url).basic_auth(&user, Some("wrong")),
        f.http
            .get(&url)
            .basic_auth("someone", Some(password.expose())),
        f.http.get(&url).bearer_auth(password.expose()),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"BOSH Director\""
        );
    }
    assert_eq!(f.get_json("/deployments").await, serde_json::json!([]));
}

#[tokio::test]
async fn uaa_tokens_are_issued_to_the_client_and_expire_after_their_ttl() {
    let f = Fixture::start(FakeOptions {
        auth: AuthKind::Uaa,
        ..basic()
    })
    .await;
    let token_url = format!("{}/uaa/oauth/token", f.fake.url());
    let (client, secret) = f.fake.credentials();
    let refused = f
        .http
        .post(&token_url)
        .basic_auth(&client, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // Basic credentials are no way in when the Director uses a UAA.
    let basic = f
        .http
        .get(format!("{}/deployments", f.fake.url()))
        .basic_auth(&client, Some(secret.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    f.fake.set_token_ttl(Duration::from_secs(2));
    let resp = f
        .http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.as_str()),
            ("client_secret", secret.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 2);
    let token = body["access_token"].as_str().unwrap();
    let with_token = || {
        f.http
            .get(format!("{}/deployments", f.fake.url()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(with_token().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let expired = with_token().await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(expired.headers().contains_key("www-authenticate"));
    // The fixture's own token (default TTL) still works, until the tokens are revoked.
    f.get_json("/deployments").await;
    f.fake.revoke_tokens();
    let revoked = f.request(Method::GET, "/deployments").send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    // Each request is kept with the status it was answered with.
    let statuses: Vec<_> = f
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == "/deployments")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [Some(401), Some(200), Some(401), Some(200), Some(401)]
    );
}

#[tokio::test]
async fn a_deploy_is_a_task_that_queues_processes_and_runs_a_real_postgresql() {
    let f = Fixture::start(basic()).await;
    let text = manifest("osb-pg", "postgresql", 1, &[("max_connections", "42")]);
    f.fake.hold_tasks();
    let first = f.deploy(&text, "ctx-first").await;
    f.wait_state(first, "processing").await;
    // A second task on the deployment waits for the first one's lock.
    let second = f.deploy(&text, "ctx-second").await;
    assert_eq!(
        f.get_json(&format!("/tasks/{second}")).await["state"],
        "queued"
    );
    let output = f
        .request(Method::GET, &format!("/tasks/{second}/output?type=event"))
        .send()
        .await
        .unwrap();
    assert_eq!(output.status(), StatusCode::NO_CONTENT);
    let running = f
        .get_json("/tasks?state=queued,processing,cancelling&deployment=osb-pg")
        .await;
    assert_eq!(running.as_array().unwrap().len(), 2);
    let listed = f.get_json("/deployments").await;
    assert_eq!(
        (&listed[0]["name"], &listed[0]["locked"]),
        (&"osb-pg".into(), &true.into())
    );
    f.fake.release_tasks();

    let task = f.wait_task(first, "done").await;
    assert_eq!(task["deployment"], "osb-pg");
    assert_eq!(task["context_id"], "ctx-first");
    assert_eq!(task["description"], "create deployment");
    assert!(task["started_at"].is_u64() && task["timestamp"].is_u64());
    f.wait_task(second, "done").await;
    let by_context = f.get_json("/tasks?context_id=ctx-second").await;
    assert_eq!(by_context[0]["id"], second);

    check_deploy_events(&f, first, second).await;
    check_real_postgresql(&f, &text).await;
}

/// The first task's events are a deploy's; the second task (same manifest) did nothing.
async fn check_deploy_events(f: &Fixture, first: u64, second: u64) {
    let stages: Vec<Value> = f.events(first).await;
    let names: Vec<&str> = stages.iter().filter_map(|e| e["stage"].as_str()).collect();
    for stage in [
        "Preparing deployment",
        "Creating missing vms",
        "Updating instance",
    ] {
        assert!(names.contains(&stage), "{stage} in {names:?}");
    }
    let last = stages.last().unwrap();
    assert_eq!(
        (
            &last["stage"],
            &last["state"],
            &last["index"],
            &last["total"]
        ),
        (
            &Value::from("Updating instance"),
            &Value::from("finished"),
            &Value::from(1),
            &Value::from(1)
        )
    );
    assert!(last["task"].as_str().unwrap().starts_with("postgresql/"));
    // The same manifest again changed nothing.
    let noop: Vec<Value> = f.events(second).await;
    assert!(
        noop.iter().all(|e| e["stage"] == "Preparing deployment"),
        "{noop:?}"
    );
}

/// The instance listed, its PostgreSQL answering the admin with the manifest's setting, and
/// the manifests and context ids recorded.
async fn check_real_postgresql(f: &Fixture, text: &str) {
    let instances = f.get_json("/deployments/osb-pg/instances").await;
    let instance = &instances[0];
    assert_eq!(instances.as_array().unwrap().len(), 1);
    assert_eq!(
        (&instance["job"], &instance["index"]),
        (&Value::from("postgresql"), &Value::from(0))
    );
    assert_eq!(instance["az"], "z1");
    assert_eq!(instance["expects_vm"], true);
    let ip = instance["ips"][0].as_str().unwrap();
    assert!(ip.starts_with("127.") && ip != "127.0.0.1", "{ip}");
    let db = postgres(ip, "osb-pg").await.expect("admin connects");
    let one: i32 = db.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let max: String = db
        .query_one("SHOW max_connections", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max, "42");
    let manifest = f.get_json("/deployments/osb-pg").await;
    assert_eq!(manifest["manifest"], text);
    assert_eq!(f.fake.manifests(), [text, text]);
    let contexts: Vec<String> = f
        .fake
        .requests()
        .iter()
        .filter_map(|r| r.header("x-bosh-context-id").map(str::to_string))
        .collect();
    assert_eq!(contexts, ["ctx-first", "ctx-second"]);
}

#[tokio::test]
async fn event_output_is_served_by_byte_ranges() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 1, &[]), "ctx").await;
    f.wait_task(id, "done").await;
    let path = format!("/tasks/{id}/output?type=event");
    let full = f.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    let text = full.text().await.unwrap();
    let first_line = text.lines().next().unwrap().len() + 1;
    let rest = f
        .request(Method::GET, &path)
        .header("Range", format!("bytes={first_line}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        rest.headers()["content-range"],
        format!("bytes {first_line}-{}/{}", text.len() - 1, text.len()).as_str()
    );
    assert_eq!(rest.text().await.unwrap(), text[first_line..]);
    let past = f
        .request(Method::GET, &path)
        .header("Range", format!("bytes={}-", text.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        for field in [
            "time", "stage", "tags", "total", "task", "index", "state", "progress",
        ] {
            assert!(event.get(field).is_some(), "{field} in {line}");
        }
    }
}

// Also on a multi-threaded runtime (the fake works on either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_deployment_answers_auth_and_ping_as_the_admin_only() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 2, &[]), "ctx").await;
    f.wait_task(id, "done").await;
    let instances = f.get_json("/deployments/osb-kv/instances").await;
    let ips: Vec<&str> = instances
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ips"][0].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2);
    assert_ne!(ips[0], ips[1], "each VM has an IP of its own");
    assert_eq!(instances[1]["az"], "z2");
    for ip in ips {
        let replies = redis(ip, &["AUTH admin p4ss-osb-kv", "PING", "ACL SAVE"])
            .await
            .unwrap();
        assert_eq!(replies, ["+OK", "+PONG", "+OK"]);
        let anonymous = redis(ip, &["PING"]).await.unwrap();
        assert!(anonymous[0].starts_with("-NOAUTH"), "{anonymous:?}");
    }
}

#[tokio::test]
async fn knobs_end_tasks_in_error_cancelled_or_timeout() {
    let f = Fixture::start(basic()).await;
    let text = manifest("osb-kv", "redis", 1, &[]);
    f.fake
        .fail_next_task(TaskEnd::Error("the disk is full".into()));
    let id = f.deploy(&text, "ctx").await;
    let task = f.wait_task(id, "error").await;
    assert_eq!(task["result"], "the disk is full");
    let events = f.events(id).await;
    assert_eq!(
        events.last().unwrap()["error"]["message"],
        "the disk is full"
    );
    assert!(events.iter().any(|e| e["state"] == "failed"));

    f.fake.fail_deployment("osb-kv", Some(TaskEnd::Cancelled));
    let id = f.deploy(&text, "ctx").await;
    f.wait_task(id, "cancelled").await;
    f.fake.fail_deployment("osb-kv", Some(TaskEnd::Timeout));
    let id = f.deploy(&text, "ctx").await;
    f.wait_task(id, "timeout").await;
    f.fake.fail_deployment("osb-kv", None);
    let id = f.deploy(&text, "ctx").await;
    f.wait_task(id, "done").await;
    let ip = f.first_ip("osb-kv").await;
    let replies = redis(&ip, &["AUTH admin p4ss-osb-kv", "PING"])
        .await
        .unwrap();
    assert_eq!(replies[1], "+PONG");
}

#[tokio::test]
async fn an_unanswered_request_still_makes_its_task_and_the_next_one_is_answered() {
    let f = Fixture::start(basic()).await;
    let text = manifest("osb-kv", "redis", 1, &[]);
    f.fake.leave_next_unanswered();
    let lost = f
        .request(Method::POST, "/deployments")
        .header("Content-Type", "text/yaml")
        .header("X-Bosh-Context-Id", "lost")
        .body(text.clone())
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(lost.is_err_and(|e| e.is_timeout()), "answered");
    let task = f.fake.tasks()[0].clone();
    assert_eq!(task.context_id.as_deref(), Some("lost"));
    f.wait_task(task.id, "done").await;
    let post = f
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.status, None, "never answered");

    let id = f.deploy(&text, "answered").await;
    assert_eq!(id, task.id + 1);
    f.wait_task(id, "done").await;
}

#[tokio::test]
async fn a_job_whose_server_is_refused_ends_the_task_in_error_with_a_failed_event() {
    let f = Fixture::start(basic()).await;
    let text = manifest("osb-pg", "postgresql", 1, &[("port", "1")]);
    let id = f.deploy(&text, "ctx").await;
    let task = f.wait_task(id, "error").await;
    assert!(task["result"].as_str().unwrap().contains("port"), "{task}");
    let events = f.events(id).await;
    let failed = events.iter().find(|e| e["state"] == "failed").unwrap();
    assert_eq!(failed["stage"], "Updating instance");
    assert!(events.last().unwrap()["error"]["code"].is_u64());
}

#[tokio::test]
async fn bad_requests_get_the_directors_answers() {
    let f = Fixture::start(basic()).await;
    let wrong_type = f
        .request(Method::POST, "/deployments")
        .header("Content-Type", "application/json")
        .body(manifest("osb-x", "redis", 1, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::NOT_FOUND);
    let nameless = f
        .request(Method::POST, "/deployments")
        .header("Content-Type", "text/yaml")
        .body("releases: []\n")
        .send()
        .await
        .unwrap();
    assert_eq!(nameless.status(), StatusCode::BAD_REQUEST);
    let body: Value = nameless.json().await.unwrap();
    assert_eq!(body["code"], 40001);
    let unknown = f.request(Method::GET, "/tasks/999").send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], 10000);
    assert!(f.fake.tasks().is_empty(), "no task was made");
}
