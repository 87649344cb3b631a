//! §8 "Update": rules 59-66.

use crate::helpers::{PLAN_MEDIUM, PLAN_SMALL, SERVICE_ID};
use crate::support::{assert_422, fetch_instance, provisioned, shared, update, update_body};
use common::osb::codes;
use serde_json::json;

#[tokio::test]
async fn rule_059_an_update_without_service_id_is_400() {
    let s = shared();
    for body in [
        json!({"plan_id": PLAN_MEDIUM}),
        json!({"service_id": "", "plan_id": PLAN_MEDIUM}),
    ] {
        let answer = update(&s.app, &s.instance, &body, true).await;
        assert_eq!(answer.status, 400, "{answer:?}");
    }
}

#[tokio::test]
async fn rule_060_and_061_an_update_without_plan_or_parameters_keeps_them() {
    let s = shared();
    let id = provisioned(&s.app, json!({"max_connections": 40})).await;
    // Parameters only: the plan stays.
    let answer = update(
        &s.app,
        &id,
        &json!({"service_id": SERVICE_ID, "parameters": {"work_mem_mb": 8}}),
        true,
    )
    .await;
    let (last, _) = s.app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = fetch_instance(&s.app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_SMALL);
    assert_eq!(
        fetched["parameters"],
        json!({"max_connections": 40, "work_mem_mb": 8})
    );
    // Plan only: the parameters stay.
    let answer = update(
        &s.app,
        &id,
        &json!({"service_id": SERVICE_ID, "plan_id": PLAN_MEDIUM}),
        true,
    )
    .await;
    let (last, _) = s.app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let fetched = fetch_instance(&s.app, &id).await;
    assert_eq!(fetched["plan_id"], PLAN_MEDIUM);
    assert_eq!(
        fetched["parameters"],
        json!({"max_connections": 40, "work_mem_mb": 8})
    );
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_060_a_patch_without_plan_id_does_not_change_the_plan() {
    let s = shared();
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID}),
        true,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        fetch_instance(&s.app, &s.instance).await["plan_id"],
        PLAN_SMALL
    );
}

#[tokio::test]
async fn rule_061_a_patch_without_parameters_does_not_change_them() {
    let s = shared();
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "plan_id": PLAN_SMALL}),
        true,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        fetch_instance(&s.app, &s.instance).await["parameters"],
        json!({})
    );
}

#[tokio::test]
async fn rule_062_an_update_applied_synchronously_is_200_with_a_json_object() {
    let s = shared();
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "parameters": {}, "previous_values": {"plan_id": PLAN_SMALL}}),
        false,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, json!({}));
}

#[tokio::test]
async fn rule_063_an_unsupported_plan_change_is_422_naming_what_is_allowed() {
    let s = shared();
    let id = provisioned(&s.app, json!({})).await;
    let up = update(&s.app, &id, &update_body(PLAN_MEDIUM, json!({})), true).await;
    s.app.wait_for_instance(&id, &up.operation()).await;
    let down = update(&s.app, &id, &update_body(PLAN_SMALL, json!({})), true).await;
    assert_eq!(down.status, 422, "{down:?}");
    let description = down.body["description"].as_str().unwrap();
    assert!(
        description.contains("medium") && description.contains("small"),
        "{description}"
    );
    assert_eq!(fetch_instance(&s.app, &id).await["plan_id"], PLAN_MEDIUM);
    let gone = s.app.deprovision(&id).await;
    s.app.wait_for_instance(&id, &gone.operation()).await;
}

#[tokio::test]
async fn rule_064_a_mismatched_maintenance_version_on_update_is_422_maintenance_info_conflict() {
    let s = shared();
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "maintenance_info": {"version": "16.0.0"}}),
        true,
    )
    .await;
    assert_422(&answer, codes::MAINTENANCE_INFO_CONFLICT);
    // The plan's own version is not a conflict (and nothing to do).
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID, "maintenance_info": {"version": "15.0.0"}}),
        true,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn rule_065_after_a_refused_update_plan_and_parameters_are_unchanged() {
    let s = shared();
    let before = fetch_instance(&s.app, &s.instance).await;
    for (body, accepts) in [
        (
            update_body(PLAN_MEDIUM, json!({"max_connections": 1})),
            true,
        ),
        (update_body(PLAN_MEDIUM, json!({"unknown": 1})), true),
        (update_body("no-such-plan", json!({})), true),
        (update_body(PLAN_MEDIUM, json!({"work_mem_mb": 2})), false),
    ] {
        let answer = update(&s.app, &s.instance, &body, accepts).await;
        assert!((400..500).contains(&answer.status), "{answer:?}");
        assert_eq!(fetch_instance(&s.app, &s.instance).await, before);
    }
}

#[tokio::test]
async fn rule_066_the_dashboard_url_never_changes_so_update_answers_leave_it_out() {
    let s = shared();
    let before = fetch_instance(&s.app, &s.instance).await;
    let answer = update(
        &s.app,
        &s.instance,
        &json!({"service_id": SERVICE_ID}),
        true,
    )
    .await;
    assert!(answer.body.get("dashboard_url").is_none(), "{answer:?}");
    assert_eq!(
        fetch_instance(&s.app, &s.instance).await["dashboard_url"],
        before["dashboard_url"]
    );
}
