//! Interoperability: every OSB endpoint understands every request the spec's `openapi.yaml`
//! accepts. Request bodies and query strings are generated from the fixture's schemas
//! (`spec/openapi.yaml`) in several shapes — only what is required; every optional field
//! empty; every optional object with its members empty; every optional field `null`;
//! unknown extra fields — and each answer is checked against the documented status. What the
//! spec says MUST be non-empty is sent empty (or left out) one field at a time: a 400 naming
//! the field, and nothing changes. `docs/conformance.md` ("Interoperability") lists the decisions.

mod spec;

use crate::helpers::{new_id, Answer, TestApp, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_error_body, fetch_instance, send, shared};
use reqwest::Method;
use serde_json::{json, Value};
use spec::{body, operation, required_members, Shape, SHAPES};

const INSTANCE: &str = "/v2/service_instances/{instance_id}";
const INSTANCE_LAST_OPERATION: &str = "/v2/service_instances/{instance_id}/last_operation";
const BINDING: &str = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";
const BINDING_LAST_OPERATION: &str =
    "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation";

/// Optional members of an update that MUST be non-empty when present: `plan_id` ("If
/// present, MUST be a non-empty string").
const STRICT_UPDATE: &[&str] = &["plan_id"];
/// Optional members of a bind that MUST be non-empty when present: `app_guid` ("If present,
/// MUST be a non-empty string"), `bind_resource.app_guid` (an application's GUID) and
/// `predecessor_binding_id` (the id of an existing binding).
const STRICT_BIND: &[&str] = &[
    "app_guid",
    "bind_resource.app_guid",
    "predecessor_binding_id",
];

fn provision_required() -> Value {
    json!({
        "service_id": SERVICE_ID,
        "plan_id": PLAN_SMALL,
        "organization_guid": "org-interop",
        "space_guid": "space-interop",
    })
}

fn bind_required() -> Value {
    json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL})
}

/// Asserts a 400 whose description names `field`.
fn assert_400_naming(answer: &Answer, field: &str, case: &str) {
    assert_eq!(answer.status, 400, "{case}: {answer:?}");
    assert_error_body(answer);
    let description = answer.body["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(field),
        "{case}: the description names {field}: {answer:?}"
    );
}

/// `body` with the dotted `path` set to `value` (`None`: removed).
fn with(body: &Value, path: &str, value: Option<Value>) -> Value {
    let mut body = body.clone();
    let mut target = &mut body;
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    for part in parts {
        target = target
            .as_object_mut()
            .unwrap()
            .entry(part)
            .or_insert_with(|| json!({}));
    }
    let object = target.as_object_mut().unwrap();
    match value {
        Some(v) => object.insert(last.to_string(), v),
        None => object.remove(last),
    };
    body
}

/// For each required member: the body without it, with it `null` and with it empty; for each
/// strict optional one: with it empty. Each is a 400 naming the member.
async fn refuses_missing_and_empty(
    app: &TestApp,
    method: Method,
    url: &str,
    base: &Value,
    required: &[String],
    strict: &[&str],
) {
    for field in required {
        let answer = send(app, method.clone(), url, Some(&with(base, field, None))).await;
        assert_400_naming(&answer, field, &format!("{method} {url} without {field}"));
        let null = with(base, field, Some(Value::Null));
        let answer = send(app, method.clone(), url, Some(&null)).await;
        assert_400_naming(&answer, field, &format!("{method} {url} with {field} null"));
    }
    for field in required
        .iter()
        .map(String::as_str)
        .chain(strict.iter().copied())
    {
        let answer = send(
            app,
            method.clone(),
            url,
            Some(&with(base, field, Some(json!("")))),
        )
        .await;
        assert_400_naming(
            &answer,
            field,
            &format!("{method} {url} with {field} empty"),
        );
    }
}

#[tokio::test]
async fn the_catalog_answers_200_to_every_query_shape() {
    let s = shared();
    let get = operation("/v2/catalog", "get");
    for shape in SHAPES {
        let answer = s
            .app
            .get(&format!("/v2/catalog{}", get.query_string(shape, &[])))
            .await;
        assert_eq!(answer.status, 200, "{shape:?}: {answer:?}");
        assert!(answer.body["services"].is_array(), "{answer:?}");
    }
}

#[tokio::test]
async fn every_instance_endpoint_answers_the_documented_status_for_every_request_shape() {
    let s = shared();
    let app = &s.app;
    let id = new_id();
    let path = format!("/v2/service_instances/{id}");
    let put = format!("{path}?accepts_incomplete=true");

    // Provision: what is required missing or empty is a 400 naming it; nothing is created.
    let schema = operation(INSTANCE, "put").body_schema().unwrap();
    let base = body(&schema, Shape::Absent, &provision_required(), &[]);
    refuses_missing_and_empty(
        app,
        Method::PUT,
        &put,
        &base,
        &required_members(&schema),
        &[],
    )
    .await;
    assert_eq!(app.get(&path).await.status, 404);
    // Every shape: the first creates (202, then succeeded), the others are identical
    // repeats (200): empty, null and unknown optional fields change nothing.
    for (i, shape) in SHAPES.into_iter().enumerate() {
        let sent = body(&schema, shape, &provision_required(), &[]);
        let answer = send(app, Method::PUT, &put, Some(&sent)).await;
        if i == 0 {
            assert_eq!(answer.status, 202, "{shape:?} {sent}: {answer:?}");
            let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
            assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
        } else {
            assert_eq!(answer.status, 200, "{shape:?} {sent}: {answer:?}");
        }
        assert!(answer.body["dashboard_url"].is_string(), "{answer:?}");
    }

    // Fetch and last_operation: every query shape is 200.
    let fetch = operation(INSTANCE, "get");
    let last_operation = operation(INSTANCE_LAST_OPERATION, "get");
    for shape in SHAPES {
        let answer = app
            .get(&format!("{path}{}", fetch.query_string(shape, &[])))
            .await;
        assert_eq!(answer.status, 200, "GET {shape:?}: {answer:?}");
        assert_eq!(answer.body["plan_id"], PLAN_SMALL);
        let answer = app
            .get(&format!(
                "{path}/last_operation{}",
                last_operation.query_string(shape, &[])
            ))
            .await;
        assert_eq!(answer.status, 200, "last_operation {shape:?}: {answer:?}");
        assert_eq!(answer.body["state"], "succeeded", "{answer:?}");
    }

    // Update: missing or empty required and strict fields are 400s; every shape is a 200
    // `{}` that changes nothing.
    let schema = operation(INSTANCE, "patch").body_schema().unwrap();
    let required = json!({"service_id": SERVICE_ID});
    let base = body(&schema, Shape::Absent, &required, STRICT_UPDATE);
    refuses_missing_and_empty(
        app,
        Method::PATCH,
        &put,
        &base,
        &required_members(&schema),
        STRICT_UPDATE,
    )
    .await;
    for shape in SHAPES {
        let sent = body(&schema, shape, &required, STRICT_UPDATE);
        let answer = send(app, Method::PATCH, &put, Some(&sent)).await;
        assert_eq!(answer.status, 200, "{shape:?} {sent}: {answer:?}");
        assert_eq!(answer.body, json!({}), "{answer:?}");
    }
    let fetched = fetch_instance(app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_SMALL);
    assert_eq!(fetched["parameters"], json!({}));

    // Deprovision: the required query values missing or empty are 400s; without
    // accepts_incomplete=true (absent, empty) 422 AsyncRequired; then 202, and 410 once gone.
    let delete = operation(INSTANCE, "delete");
    let ids = [("service_id", SERVICE_ID), ("plan_id", PLAN_SMALL)];
    for (name, _) in ids {
        for value in [None, Some("")] {
            let query: Vec<String> = ids
                .iter()
                .filter_map(|(n, v)| match (*n == name, value) {
                    (false, _) => Some(format!("{n}={v}")),
                    (true, Some(empty)) => Some(format!("{n}={empty}")),
                    (true, None) => None,
                })
                .collect();
            let answer = send(
                app,
                Method::DELETE,
                &format!("{path}?accepts_incomplete=true&{}", query.join("&")),
                None,
            )
            .await;
            assert_400_naming(&answer, name, &format!("DELETE with {name} {value:?}"));
        }
    }
    for shape in SHAPES {
        let answer = send(
            app,
            Method::DELETE,
            &format!("{path}{}", delete.query_string(shape, &ids)),
            None,
        )
        .await;
        assert_eq!(answer.status, 422, "{shape:?}: {answer:?}");
        assert_eq!(answer.body["error"], "AsyncRequired", "{answer:?}");
    }
    assert_eq!(fetch_instance(app, &id).await["plan_id"], PLAN_SMALL);
    let url = format!(
        "{path}{}&accepts_incomplete=true",
        delete.query_string(Shape::Unknown, &ids)
    );
    let answer = send(app, Method::DELETE, &url, None).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    let answer = send(app, Method::DELETE, &url, None).await;
    assert_eq!(answer.status, 410, "{answer:?}");
}

#[tokio::test]
async fn every_binding_endpoint_answers_the_documented_status_for_every_request_shape() {
    let s = shared();
    let app = &s.app;
    let binding = new_id();
    let path = format!(
        "/v2/service_instances/{}/service_bindings/{binding}",
        s.instance
    );
    let put = format!("{path}?accepts_incomplete=true");

    // Bind: what is required missing or empty, and the strict optional fields empty, are
    // 400s naming the field; nothing is created.
    let schema = operation(BINDING, "put").body_schema().unwrap();
    let base = body(&schema, Shape::Absent, &bind_required(), STRICT_BIND);
    refuses_missing_and_empty(
        app,
        Method::PUT,
        &put,
        &base,
        &required_members(&schema),
        STRICT_BIND,
    )
    .await;
    assert_eq!(app.get(&path).await.status, 404);
    // Every shape: the first creates (201), the others are identical repeats (200 with
    // the same credentials).
    let mut uri = Value::Null;
    for (i, shape) in SHAPES.into_iter().enumerate() {
        let sent = body(&schema, shape, &bind_required(), STRICT_BIND);
        let answer = send(app, Method::PUT, &put, Some(&sent)).await;
        let expected = if i == 0 { 201 } else { 200 };
        assert_eq!(answer.status, expected, "{shape:?} {sent}: {answer:?}");
        if i == 0 {
            uri = answer.body["credentials"]["uri"].clone();
            assert!(uri.is_string(), "{answer:?}");
        }
        assert_eq!(answer.body["credentials"]["uri"], uri, "{shape:?}");
    }

    // Fetch and last_operation: every query shape is 200.
    let fetch = operation(BINDING, "get");
    let last_operation = operation(BINDING_LAST_OPERATION, "get");
    for shape in SHAPES {
        let answer = app
            .get(&format!("{path}{}", fetch.query_string(shape, &[])))
            .await;
        assert_eq!(answer.status, 200, "GET {shape:?}: {answer:?}");
        assert_eq!(answer.body["credentials"]["uri"], uri);
        let answer = app
            .get(&format!(
                "{path}/last_operation{}",
                last_operation.query_string(shape, &[])
            ))
            .await;
        assert_eq!(answer.status, 200, "last_operation {shape:?}: {answer:?}");
        assert_eq!(answer.body["state"], "succeeded", "{answer:?}");
    }

    // Unbind: the required query values missing are 400s; the first shape deletes (200
    // `{}`, synchronously: an empty accepts_incomplete is no promise), the rest are 410.
    let delete = operation(BINDING, "delete");
    let ids = [("service_id", SERVICE_ID), ("plan_id", PLAN_SMALL)];
    for (name, value) in ids {
        let answer = send(app, Method::DELETE, &format!("{path}?{name}={value}"), None).await;
        let other = if name == "service_id" {
            "plan_id"
        } else {
            "service_id"
        };
        assert_400_naming(&answer, other, &format!("DELETE with only {name}"));
    }
    assert_eq!(app.get(&path).await.status, 200, "a 400 changes nothing");
    for (i, shape) in [Shape::Empty, Shape::Absent, Shape::Nulls, Shape::Unknown]
        .into_iter()
        .enumerate()
    {
        let answer = send(
            app,
            Method::DELETE,
            &format!("{path}{}", delete.query_string(shape, &ids)),
            None,
        )
        .await;
        let expected = if i == 0 { 200 } else { 410 };
        assert_eq!(answer.status, expected, "{shape:?}: {answer:?}");
        assert_eq!(answer.body, json!({}), "{answer:?}");
    }
}

#[tokio::test]
async fn a_provision_with_an_empty_maintenance_info_succeeds_and_so_does_an_update_with_one_in_previous_values(
) {
    let s = shared();
    let app = &s.app;
    let id = new_id();
    let mut provision = provision_required();
    provision["maintenance_info"] = json!({});
    let answer = app.provision(&id, &provision, true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    assert_eq!(
        fetch_instance(app, &id).await["maintenance_info"]["version"],
        "15.0.0",
        "the plan's version"
    );

    let update = json!({
        "service_id": SERVICE_ID,
        "plan_id": PLAN_SMALL,
        "parameters": {"work_mem_mb": 8},
        "maintenance_info": {},
        "previous_values": {"plan_id": PLAN_SMALL, "maintenance_info": {}},
    });
    let answer = crate::support::update(app, &id, &update, true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
    assert_eq!(
        fetch_instance(app, &id).await["parameters"],
        json!({"work_mem_mb": 8})
    );
    let gone = app.deprovision(&id).await;
    app.wait_for_instance(&id, &gone.operation()).await;
}
