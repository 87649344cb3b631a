//! Who an instance or binding belongs to: a repeated PUT naming another application, bind
//! resource, organization or space is a 409 and changes nothing; the id of a binding that is
//! gone may be used again, on any instance.

use crate::helpers::{bind_body, new_id, provision_body, query_with, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_error_body, fetch_instance, provisioned, shared};
use serde_json::json;

fn binding_path(instance: &str, binding: &str) -> String {
    format!("/v2/service_instances/{instance}/service_bindings/{binding}")
}

#[tokio::test]
async fn a_bind_repeated_for_another_app_guid_is_409_and_the_binding_is_untouched() {
    let s = shared();
    let app = &s.app;
    let binding = new_id();
    let mut body = json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL, "app_guid": "app-a"});
    let created = app.bind(&s.instance, &binding, &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    let uri = created.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();

    body["app_guid"] = json!("app-b");
    let other = app.bind(&s.instance, &binding, &body).await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_error_body(&other);
    assert!(
        other.body["description"]
            .as_str()
            .unwrap()
            .contains("app_guid"),
        "{other:?}"
    );
    assert!(other.body.get("credentials").is_none(), "{other:?}");
    // Leaving the application out is not the same application either.
    let without = app
        .bind(
            &s.instance,
            &binding,
            &json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL}),
        )
        .await;
    assert_eq!(without.status, 409, "{without:?}");

    body["app_guid"] = json!("app-a");
    let same = app.bind(&s.instance, &binding, &body).await;
    assert_eq!(same.status, 200, "{same:?}");
    assert_eq!(same.body["credentials"]["uri"], uri.as_str());
    query_with(&uri).await.expect("the binding still works");
    assert_eq!(app.unbind(&s.instance, &binding).await.status, 200);
}

#[tokio::test]
async fn a_bind_repeated_for_another_bind_resource_app_guid_is_409_and_the_binding_is_untouched() {
    let s = shared();
    let app = &s.app;
    let binding = new_id();
    let created = app.bind(&s.instance, &binding, &bind_body()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let uri = created.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string();

    let mut other = bind_body();
    other["bind_resource"]["app_guid"] = json!("app-2");
    let answer = app.bind(&s.instance, &binding, &other).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    assert_error_body(&answer);
    assert!(
        answer.body["description"]
            .as_str()
            .unwrap()
            .contains("bind_resource.app_guid"),
        "{answer:?}"
    );
    // A vendor extension member of bind_resource is not part of who it is for.
    let mut extended = bind_body();
    extended["bind_resource"]["x-acme-pod"] = json!("p-9");
    let same = app.bind(&s.instance, &binding, &extended).await;
    assert_eq!(same.status, 200, "{same:?}");
    assert_eq!(same.body["credentials"]["uri"], uri.as_str());
    let fetched = app.get(&binding_path(&s.instance, &binding)).await;
    assert_eq!(fetched.body["credentials"]["uri"], uri.as_str());
    assert_eq!(app.unbind(&s.instance, &binding).await.status, 200);
}

#[tokio::test]
async fn a_provision_repeated_for_another_organization_or_space_is_409_and_changes_nothing() {
    let s = shared();
    let app = &s.app;
    let before = fetch_instance(app, &s.instance).await;
    for (field, value) in [("organization_guid", "org-2"), ("space_guid", "space-2")] {
        let mut body = provision_body(json!({}));
        body[field] = json!(value);
        body["context"][field] = json!(value);
        let answer = app.provision(&s.instance, &body, true).await;
        assert_eq!(answer.status, 409, "{field}: {answer:?}");
        assert_error_body(&answer);
    }
    // Context members that do not say where the instance lives may change (CF resends a
    // renamed instance_name).
    let mut renamed = provision_body(json!({}));
    renamed["context"]["instance_name"] = json!("renamed");
    assert_eq!(app.provision(&s.instance, &renamed, true).await.status, 200);
    assert_eq!(fetch_instance(app, &s.instance).await, before);
}

#[tokio::test]
async fn a_binding_id_is_free_again_once_its_binding_and_instance_are_gone() {
    let s = shared();
    let app = &s.app;
    let first = provisioned(app, json!({})).await;
    let binding = new_id();
    assert_eq!(app.bind(&first, &binding, &bind_body()).await.status, 201);

    // While it lives, the id belongs to its instance: 409 naming it, elsewhere.
    let taken = app.bind(&s.instance, &binding, &bind_body()).await;
    assert_eq!(taken.status, 409, "{taken:?}");
    assert!(
        taken.body["description"].as_str().unwrap().contains(&first),
        "{taken:?}"
    );
    assert_eq!(
        app.get(&binding_path(&first, &binding)).await.status,
        200,
        "the 409 changed nothing"
    );

    // The README's walkthroughs: unbind, deprovision, then the same binding id on another
    // instance is a new binding.
    assert_eq!(app.unbind(&first, &binding).await.status, 200);
    let gone = app.deprovision(&first).await;
    assert_eq!(gone.status, 202, "{gone:?}");
    let (last, _) = app.wait_for_instance(&first, &gone.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let again = app.bind(&s.instance, &binding, &bind_body()).await;
    assert_eq!(again.status, 201, "{again:?}");
    let uri = again.body["credentials"]["uri"].as_str().unwrap();
    query_with(uri).await.expect("the new binding works");
    assert_eq!(app.get(&binding_path(&first, &binding)).await.status, 404);
    assert_eq!(app.unbind(&first, &binding).await.status, 410);
    let polled = app
        .get(&format!(
            "{}/last_operation",
            binding_path(&s.instance, &binding)
        ))
        .await;
    assert_eq!(polled.body["state"], "succeeded", "{polled:?}");
    assert_eq!(app.unbind(&s.instance, &binding).await.status, 200);
}
