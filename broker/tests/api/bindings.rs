//! Bindings beyond the happy path: asynchronous binds, the synchronous window, and an
//! unreachable SPI.

use crate::helpers::{
    bind_body, new_id, provision_body, query_with, spawn_app, spawn_app_with, SERVICE_ID,
};
use broker::config::SpiSettings;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_bind_that_outlasts_the_synchronous_window_answers_202_and_finishes_in_the_background() {
    let app = spawn_app_with(|s| s.worker.sync_timeout_ms = 0).await;
    let id = new_id();
    let first = app.provision(&id, &provision_body(json!({})), true).await;
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");

    let binding = new_id();
    let answer = crate::helpers::Answer::from(
        app.request(
            Method::PUT,
            &format!(
                "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true"
            ),
        )
        .json(&bind_body())
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert!(answer.body.get("credentials").is_none(), "{answer:?}");
    let operation = answer.operation();
    let (last, _) = app.wait_for_binding(&id, &binding, &operation).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}"
        ))
        .await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    query_with(fetched.body["credentials"]["uri"].as_str().unwrap())
        .await
        .expect("the credentials of an async binding work");

    // Without accepts_incomplete the client cannot be told to poll: 422 AsyncRequired, and
    // the binding the request began is undone (a platform forgets a request answered 4xx).
    let sync_binding = new_id();
    let answer = app.bind(&id, &sync_binding, &bind_body()).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(answer.body["error"], "AsyncRequired", "{answer:?}");
    let (last, _) = app.wait_for_binding(&id, &sync_binding, "").await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{sync_binding}"
        ))
        .await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    app.stop_all().await;
}

#[tokio::test]
async fn a_bind_with_parameters_the_spi_refuses_is_400_and_leaves_no_binding() {
    let app = spawn_app().await;
    let id = new_id();
    let first = app.provision(&id, &provision_body(json!({})), true).await;
    let (last, _) = app.wait_for_instance(&id, &first.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let binding = new_id();
    let mut body = bind_body();
    body["parameters"] = json!({"no_such_parameter": true});
    let answer = app.bind(&id, &binding, &body).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body["description"].is_string());
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{binding}/last_operation"
        ))
        .await;
    assert_eq!(fetched.status, 404, "{fetched:?}");
    // A plan that is not the instance's.
    let mut body = bind_body();
    body["plan_id"] = json!(crate::helpers::PLAN_MEDIUM);
    assert_eq!(app.bind(&id, &binding, &body).await.status, 400);
    app.stop_all().await;
}

#[tokio::test]
async fn an_unreachable_spi_is_503_and_nothing_is_created() {
    let mut app = spawn_app().await;
    app.stop_spi().await;
    let id = new_id();
    let answer = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body["description"]
        .as_str()
        .unwrap()
        .contains("spi-postgres"));
    app.assert_no_instance(&id).await;
    app.stop_all().await;
}

#[tokio::test]
async fn an_spi_that_is_down_at_start_is_left_out_of_the_catalog() {
    let app = spawn_app_with(|s| {
        s.spis.push(SpiSettings {
            name: "spi-keyvalue".into(),
            url: "https://127.0.0.1:1".into(),
        })
    })
    .await;
    let catalog = app.get("/v2/catalog").await;
    assert_eq!(catalog.status, 200);
    let ids: Vec<_> = catalog.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [SERVICE_ID]);
    app.stop_all().await;
}
