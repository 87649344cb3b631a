//! What every request meets first: Basic auth, the version header, the request id, JSON
//! answers, unknown routes and methods.

use crate::helpers::{spawn_app, PASSWORD, USERNAME};
use reqwest::Method;

/// Every OSB endpoint, with a method it supports.
fn endpoints() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/v2/catalog"),
        (
            Method::PUT,
            "/v2/service_instances/i1?accepts_incomplete=true",
        ),
        (Method::GET, "/v2/service_instances/i1"),
        (
            Method::PATCH,
            "/v2/service_instances/i1?accepts_incomplete=true",
        ),
        (
            Method::DELETE,
            "/v2/service_instances/i1?service_id=s&plan_id=p&accepts_incomplete=true",
        ),
        (Method::GET, "/v2/service_instances/i1/last_operation"),
        (Method::PUT, "/v2/service_instances/i1/service_bindings/b1"),
        (Method::GET, "/v2/service_instances/i1/service_bindings/b1"),
        (
            Method::DELETE,
            "/v2/service_instances/i1/service_bindings/b1?service_id=s&plan_id=p",
        ),
        (
            Method::GET,
            "/v2/service_instances/i1/service_bindings/b1/last_operation",
        ),
    ]
}

async fn assert_401(resp: reqwest::Response, what: &str) {
    let answer = crate::helpers::Answer::from(resp).await;
    assert_eq!(answer.status, 401, "{what}: {answer:?}");
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some("Basic realm=\"osb\""),
        "{what}"
    );
    assert!(answer.body["description"].is_string(), "{what}: {answer:?}");
}

#[tokio::test]
async fn every_endpoint_answers_401_without_credentials() {
    let app = spawn_app().await;
    for (method, path) in endpoints() {
        let resp = app
            .http
            .request(method.clone(), format!("{}{path}", app.address))
            .header("X-Broker-API-Version", "2.17")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_401(resp, &format!("{method} {path}")).await;
    }
    app.stop_all().await;
}

#[tokio::test]
async fn every_endpoint_answers_401_with_a_wrong_password() {
    let app = spawn_app().await;
    for (method, path) in endpoints() {
        let resp = app
            .http
            .request(method.clone(), format!("{}{path}", app.address))
            .basic_auth(USERNAME, Some("not-the-password"))
            .header("X-Broker-API-Version", "2.17")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_401(resp, &format!("{method} {path}")).await;
    }
    // A missing version header does not reveal anything before authentication.
    let resp = app
        .http
        .get(format!("{}/v2/catalog", app.address))
        .send()
        .await
        .unwrap();
    assert_401(resp, "no auth, no version").await;
    app.stop_all().await;
}

#[tokio::test]
async fn a_missing_or_unsupported_version_header_is_412_naming_2_17() {
    let app = spawn_app().await;
    for version in [None, Some("3.0"), Some("banana")] {
        let mut req = app
            .http
            .get(format!("{}/v2/catalog", app.address))
            .basic_auth(USERNAME, Some(PASSWORD));
        if let Some(v) = version {
            req = req.header("X-Broker-API-Version", v);
        }
        let answer = crate::helpers::Answer::from(req.send().await.unwrap()).await;
        assert_eq!(answer.status, 412, "{version:?}: {answer:?}");
        assert!(
            answer.body["description"]
                .as_str()
                .unwrap()
                .contains("2.17"),
            "{answer:?}"
        );
    }
    // Older 2.x minors are what real platforms send.
    let resp = app
        .http
        .get(format!("{}/v2/catalog", app.address))
        .basic_auth(USERNAME, Some(PASSWORD))
        .header("X-Broker-API-Version", "2.13")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.stop_all().await;
}

#[tokio::test]
async fn the_catalog_lists_the_postgresql_offering_as_json_and_echoes_the_request_id() {
    let app = spawn_app().await;
    let resp = app
        .request(Method::GET, "/v2/catalog")
        .header("X-Broker-API-Request-Identity", "req-catalog-1")
        .send()
        .await
        .unwrap();
    let answer = crate::helpers::Answer::from(resp).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.request_id.as_deref(), Some("req-catalog-1"));
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let services = answer.body["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["id"], crate::helpers::SERVICE_ID);
    assert!(!services[0]["plans"].as_array().unwrap().is_empty());

    // Without one, a request id is generated and still echoed.
    let answer = app.get("/v2/catalog").await;
    assert!(answer.request_id.is_some_and(|id| !id.is_empty()));
    app.stop_all().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_osb_bodies() {
    let app = spawn_app().await;
    let answer = app.get("/v2/nothing-here").await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.body["description"].is_string());
    let answer = crate::helpers::Answer::from(
        app.request(Method::POST, "/v2/catalog")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert!(answer.body["description"].is_string());
    app.stop_all().await;
}

#[tokio::test]
async fn healthz_answers_without_credentials_while_the_database_answers() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.stop_all().await;
}
