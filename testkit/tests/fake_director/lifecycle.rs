//! The fake Director's deployments over their life: re-deploys, fewer instances, deletes, the
//! Director down and back, two fakes side by side, and the fake dropped.

use super::support::{self, basic, manifest, postgres, redis, Fixture};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn a_redeploy_with_a_changed_setting_restarts_the_server_with_it() {
    let f = Fixture::start(basic()).await;
    let id = f
        .deploy(
            &manifest("osb-pg", "postgresql", 1, &[("max_connections", "40")]),
            "a",
        )
        .await;
    f.wait_task(id, "done").await;
    let ip = f.first_ip("osb-pg").await;
    let started = |db: tokio_postgres::Client| async move {
        let row = db
            .query_one(
                "SELECT pg_postmaster_start_time()::text, current_setting('max_connections')",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, String>(0), row.get::<_, String>(1))
    };
    let (before, max) = started(postgres(&ip, "osb-pg").await.unwrap()).await;
    assert_eq!(max, "40");

    let changed = manifest("osb-pg", "postgresql", 1, &[("max_connections", "60")]);
    let id = f.deploy(&changed, "b").await;
    f.wait_task(id, "done").await;
    assert_eq!(f.first_ip("osb-pg").await, ip, "the instance keeps its VM");
    let (after, max) = started(postgres(&ip, "osb-pg").await.unwrap()).await;
    assert_eq!(max, "60");
    assert_ne!(after, before, "restarted");
    let restarted: Vec<Value> = f.events(id).await;
    assert!(restarted.iter().any(|e| e["state"] == "in_progress"
        && e["data"]["status"]
            .as_str()
            .is_some_and(|s| s.contains("restarting"))));

    let id = f.deploy(&changed, "c").await;
    f.wait_task(id, "done").await;
    let (again, _) = started(postgres(&ip, "osb-pg").await.unwrap()).await;
    assert_eq!(again, after, "the same manifest is a no-op");
}

#[tokio::test]
async fn delete_stops_the_servers_and_removes_their_data_and_unknown_is_70000() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 1, &[]), "ctx").await;
    f.wait_task(id, "done").await;
    let ip = f.first_ip("osb-kv").await;
    assert_eq!(std::fs::read_dir(f.fake.vm_root()).unwrap().count(), 1);

    let id = f.delete("osb-kv").await;
    let task = f.wait_task(id, "done").await;
    assert_eq!(task["description"], "delete deployment osb-kv");
    assert!(redis(&ip, &["PING"]).await.is_err(), "server stopped");
    assert_eq!(
        std::fs::read_dir(f.fake.vm_root()).unwrap().count(),
        0,
        "data removed"
    );
    for (method, path) in [
        (Method::GET, "/deployments/osb-kv"),
        (Method::GET, "/deployments/osb-kv/instances"),
        (Method::DELETE, "/deployments/osb-kv"),
    ] {
        let resp = f.request(method, path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], 70000);
        assert_eq!(body["description"], "Deployment 'osb-kv' doesn't exist");
    }
    assert_eq!(f.get_json("/deployments").await, serde_json::json!([]));
}

#[tokio::test]
async fn the_director_goes_down_and_comes_back_on_the_same_port_with_its_state() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 1, &[]), "ctx").await;
    f.wait_task(id, "done").await;
    let ip = f.first_ip("osb-kv").await;
    f.fake.go_down().await;
    let fresh = support::client(&f.fake);
    let down = fresh.get(format!("{}/info", f.fake.url())).send().await;
    assert!(down.is_err(), "nobody listens: {down:?}");
    // The VMs run on while the Director is away.
    let replies = redis(&ip, &["AUTH admin p4ss-osb-kv", "PING"])
        .await
        .unwrap();
    assert_eq!(replies[1], "+PONG");
    f.fake.come_back().await.unwrap();
    assert_eq!(f.get_json(&format!("/tasks/{id}")).await["state"], "done");
    assert_eq!(f.first_ip("osb-kv").await, ip);
}

// Also on a multi-threaded runtime (the fake works on either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_fake_stops_every_server_it_started() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 1, &[]), "ctx").await;
    f.wait_task(id, "done").await;
    let ip = f.first_ip("osb-kv").await;
    let root = f.fake.vm_root();
    drop(f);
    assert!(redis(&ip, &["PING"]).await.is_err(), "server stopped");
    assert!(!root.exists(), "its directory is gone");
}

#[tokio::test]
async fn fewer_instances_delete_the_vms_no_longer_needed() {
    let f = Fixture::start(basic()).await;
    let id = f.deploy(&manifest("osb-kv", "redis", 2, &[]), "a").await;
    f.wait_task(id, "done").await;
    let instances = f.get_json("/deployments/osb-kv/instances").await;
    let second = instances[1]["ips"][0].as_str().unwrap().to_string();
    let id = f.deploy(&manifest("osb-kv", "redis", 1, &[]), "b").await;
    f.wait_task(id, "done").await;
    let events = f.events(id).await;
    assert!(events
        .iter()
        .any(|e| e["stage"] == "Deleting unneeded instances"));
    let instances = f.get_json("/deployments/osb-kv/instances").await;
    assert_eq!(instances.as_array().unwrap().len(), 1);
    assert!(
        redis(&second, &["PING"]).await.is_err(),
        "its server stopped"
    );
    assert_eq!(std::fs::read_dir(f.fake.vm_root()).unwrap().count(), 1);
    let listed = f.get_json("/deployments").await;
    assert_eq!(listed[0]["releases"][0]["name"], "redis");
    assert_eq!(listed[0]["locked"], false);
}

#[tokio::test]
async fn two_fakes_give_their_vms_different_ips_for_the_same_port() {
    let (a, b) = (Fixture::start(basic()).await, Fixture::start(basic()).await);
    let text = manifest("osb-kv", "redis", 1, &[]);
    let (ta, tb) = (a.deploy(&text, "a").await, b.deploy(&text, "b").await);
    a.wait_task(ta, "done").await;
    b.wait_task(tb, "done").await;
    let (ip_a, ip_b) = (a.first_ip("osb-kv").await, b.first_ip("osb-kv").await);
    assert_ne!(ip_a, ip_b);
    for ip in [ip_a, ip_b] {
        let replies = redis(&ip, &["AUTH admin p4ss-osb-kv", "PING"])
            .await
            .unwrap();
        assert_eq!(replies[1], "+PONG");
    }
}
