//! README's walkthroughs run in order: a PostgreSQL instance bound as `my-app`, unbound and
//! deprovisioned, then a key-value (Redis) instance bound with the same binding id `my-app`.
//! The id of a binding that is gone may be used again, on another instance of another
//! offering.

use crate::helpers::{
    bind_body, keyvalue_bind_body, keyvalue_provision_body, provision_body, spawn_services,
};
use serde_json::json;

#[tokio::test]
async fn a_binding_id_used_on_a_deprovisioned_postgresql_instance_binds_a_redis_instance_next() {
    let mut app = spawn_services(true).await;
    let settings = app.broker_settings();
    app.start_broker(settings).await;

    let database = "my-db";
    let answer = app
        .provision(database, &provision_body(json!({})), true)
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(database, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let bound = app.bind(database, "my-app", &bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    assert_eq!(app.unbind(database, "my-app").await.status, 200);
    let gone = app.deprovision(database).await;
    let (last, _) = app.wait_for_instance(database, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let cache = "my-cache";
    let answer = app.provision(cache, &keyvalue_provision_body(), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(cache, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let bound = app.bind(cache, "my-app", &keyvalue_bind_body()).await;
    assert_eq!(bound.status, 201, "{bound:?}");
    assert!(
        bound.body["credentials"]["uri"]
            .as_str()
            .is_some_and(|uri| uri.starts_with("redis")),
        "{bound:?}"
    );
    let fetched = app
        .get("/v2/service_instances/my-cache/service_bindings/my-app")
        .await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(fetched.body["credentials"], bound.body["credentials"]);

    let unbound = app.delete_keyvalue(cache, Some("my-app")).await;
    assert_eq!(unbound.status, 200, "{unbound:?}");
    let gone = app.delete_keyvalue(cache, None).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    app.wait_for_instance(cache, &gone.operation()).await;
    app.stop_all().await;
}
