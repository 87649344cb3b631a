//! HTTP conventions beyond the OSB spec: `Allow` on every 405 (RFC 9110), query values
//! checked before anything is looked up, and a `dashboard_url` under the broker's own
//! external URL.

use crate::helpers::{new_id, provision_body, spawn_app_with, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_error_body, fetch_instance, send, shared};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_405_lists_the_methods_of_its_path_in_allow_and_each_listed_method_is_served() {
    let s = shared();
    let app = &s.app;
    let instance = format!("/v2/service_instances/{}", s.instance);
    let binding = format!("{instance}/service_bindings/{}", s.binding);
    let cases = [
        ("/v2/catalog".to_string(), "GET"),
        (instance.clone(), "GET, PUT, PATCH, DELETE"),
        (format!("{instance}/last_operation"), "GET"),
        (binding.clone(), "GET, PUT, DELETE"),
        (format!("{binding}/last_operation"), "GET"),
    ];
    for (path, allow) in cases {
        for method in [Method::POST, Method::OPTIONS, Method::TRACE] {
            let response = app.request(method.clone(), &path).send().await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            let header = response
                .headers()
                .get(reqwest::header::ALLOW)
                .unwrap_or_else(|| panic!("{method} {path}: an Allow header"))
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(header, allow, "{method} {path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "MethodNotAllowed", "{body}");
        }
        // Each method Allow lists is served: sent without a body or with a bad query it
        // may be refused, but never as 405.
        for method in allow.split(", ") {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let probe = format!("{path}?accepts_incomplete=not-a-boolean");
            let response = app.request(method.clone(), &probe).send().await.unwrap();
            assert_ne!(response.status(), 405, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn query_values_are_checked_before_any_lookup_so_the_answer_does_not_depend_on_existence() {
    let s = shared();
    let app = &s.app;
    let unknown = new_id();
    let ids = format!("service_id={SERVICE_ID}&plan_id={PLAN_SMALL}");
    let before = fetch_instance(app, &s.instance).await;
    for instance in [s.instance.as_str(), unknown.as_str()] {
        let path = format!("/v2/service_instances/{instance}");
        let binding = format!("{path}/service_bindings/{}", s.binding);
        let cases = [
            (
                Method::PUT,
                format!("{path}?accepts_incomplete=maybe"),
                Some(provision_body(json!({}))),
            ),
            (
                Method::PATCH,
                format!("{path}?accepts_incomplete=maybe"),
                Some(json!({"service_id": SERVICE_ID, "parameters": {"work_mem_mb": 9}})),
            ),
            (
                Method::DELETE,
                format!("{path}?accepts_incomplete=maybe&{ids}"),
                None,
            ),
            (
                Method::PUT,
                format!("{binding}?accepts_incomplete=maybe"),
                Some(crate::helpers::bind_body()),
            ),
            (
                Method::DELETE,
                format!("{binding}?accepts_incomplete=1&{ids}"),
                None,
            ),
        ];
        let empty_ids = [
            format!("{path}?accepts_incomplete=true&service_id=&plan_id={PLAN_SMALL}"),
            format!("{binding}?accepts_incomplete=true&service_id=&plan_id={PLAN_SMALL}"),
        ];
        let cases = cases
            .into_iter()
            .map(|(method, url, body)| (method, url, body, "accepts_incomplete"))
            .chain(
                empty_ids
                    .into_iter()
                    .map(|url| (Method::DELETE, url, None, "service_id")),
            );
        for (method, url, body, field) in cases {
            let answer = send(app, method.clone(), &url, body.as_ref()).await;
            assert_eq!(answer.status, 400, "{method} {url}: {answer:?}");
            assert_error_body(&answer);
            assert!(
                answer.body["description"].as_str().unwrap().contains(field),
                "{answer:?}"
            );
        }
    }
    assert_eq!(fetch_instance(app, &s.instance).await, before);
    let binding = app
        .get(&format!(
            "/v2/service_instances/{}/service_bindings/{}",
            s.instance, s.binding
        ))
        .await;
    assert_eq!(binding.status, 200, "the binding is untouched: {binding:?}");
    assert_eq!(
        app.get(&format!("/v2/service_instances/{unknown}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn by_default_the_dashboard_url_is_on_the_address_the_broker_listens_on() {
    let s = shared();
    let fetched = fetch_instance(&s.app, &s.instance).await;
    assert_eq!(
        fetched["dashboard_url"],
        format!("{}/dashboard/instances/{}", s.app.address, s.instance)
    );
}

#[tokio::test]
async fn the_dashboard_url_follows_the_configured_external_url() {
    let app = spawn_app_with(|settings| {
        settings.external_url = Some("https://osb.example.test:9443/broker/".into());
    })
    .await;
    let id = new_id();
    let expected = format!("https://osb.example.test:9443/broker/dashboard/instances/{id}");
    let path = format!("/v2/service_instances/{id}");
    let answer = send(
        &app,
        Method::PUT,
        &format!("{path}?accepts_incomplete=true"),
        Some(&provision_body(json!({}))),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(
        answer.body["dashboard_url"],
        expected.as_str(),
        "{answer:?}"
    );
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let fetched = app.get(&path).await;
    assert_eq!(
        fetched.body["dashboard_url"],
        expected.as_str(),
        "{fetched:?}"
    );
    let repeat = app.provision(&id, &provision_body(json!({})), true).await;
    assert_eq!(
        repeat.body["dashboard_url"],
        expected.as_str(),
        "{repeat:?}"
    );
    app.stop_all().await;
}
