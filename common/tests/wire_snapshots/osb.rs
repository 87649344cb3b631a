//! Snapshots of the OSB v2.17 bodies (`common::osb`).

use super::support::check;
use common::osb::*;
use serde_json::{json, Value};

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().expect("a JSON object")
}

fn maintenance_info() -> MaintenanceInfo {
    MaintenanceInfo {
        version: "15.1.0".into(),
        description: Some("PostgreSQL 15.1".into()),
    }
}

fn schema() -> InputParametersSchema {
    InputParametersSchema {
        parameters: Some(json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {"work_mem_mb": {"type": "integer"}}
        })),
    }
}

fn schemas() -> Schemas {
    Schemas {
        service_instance: Some(ServiceInstanceSchema {
            create: Some(schema()),
            update: Some(schema()),
        }),
        service_binding: Some(ServiceBindingSchema {
            create: Some(schema()),
        }),
    }
}

fn plan() -> Plan {
    Plan {
        id: "plan-small".into(),
        name: "small".into(),
        description: "A small server".into(),
        metadata: Some(json!({"displayName": "Small", "bullets": ["1 GB"]})),
        free: Some(false),
        bindable: Some(true),
        binding_rotatable: Some(true),
        plan_updateable: Some(true),
        schemas: Some(schemas()),
        maximum_polling_duration: Some(600),
        maintenance_info: Some(maintenance_info()),
    }
}

fn dashboard_client() -> DashboardClient {
    DashboardClient {
        id: "dashboard".into(),
        secret: "dashboard-secret".into(),
        redirect_uri: Some("https://dashboard.example/callback".into()),
    }
}

/// A fully populated offering (also used by the SPI catalog fragment).
pub fn service() -> Service {
    Service {
        id: "svc-postgres".into(),
        name: "postgres".into(),
        description: "PostgreSQL servers".into(),
        bindable: true,
        plans: vec![plan()],
        tags: vec!["sql".into()],
        requires: vec!["volume_mount".into()],
        instances_retrievable: Some(true),
        bindings_retrievable: Some(true),
        allow_context_updates: Some(false),
        metadata: Some(json!({"displayName": "PostgreSQL"})),
        dashboard_client: Some(dashboard_client()),
        plan_updateable: Some(true),
    }
}

/// A fully populated binding endpoint (also used by the SPI create-binding answer).
pub fn endpoint() -> Endpoint {
    Endpoint {
        host: "10.0.0.5".into(),
        ports: vec!["5432".into(), "6000-6010".into()],
        protocol: Some("tcp".into()),
    }
}

fn instance_metadata() -> InstanceMetadata {
    InstanceMetadata {
        labels: Some(object(json!({"team": "payments"}))),
        attributes: Some(object(json!({"region": "eu"}))),
    }
}

#[test]
fn the_catalog_keeps_its_wire_form() {
    check(
        "osb/catalog",
        &Catalog {
            services: vec![service()],
        },
    );
}

#[test]
fn a_service_offering_keeps_its_wire_form() {
    check("osb/service", &service());
}

#[test]
fn a_dashboard_client_keeps_its_wire_form() {
    check("osb/dashboard_client", &dashboard_client());
}

#[test]
fn a_plan_keeps_its_wire_form() {
    check("osb/plan", &plan());
}

#[test]
fn plan_schemas_keep_their_wire_form() {
    check("osb/schemas", &schemas());
    check(
        "osb/service_instance_schema",
        &schemas().service_instance.unwrap(),
    );
    check(
        "osb/service_binding_schema",
        &schemas().service_binding.unwrap(),
    );
    check("osb/input_parameters_schema", &schema());
}

#[test]
fn maintenance_info_keeps_its_wire_form() {
    check("osb/maintenance_info", &maintenance_info());
}

#[test]
fn a_provision_request_keeps_its_wire_form() {
    check(
        "osb/provision_request",
        &ProvisionRequest {
            service_id: Some("svc-postgres".into()),
            plan_id: Some("plan-small".into()),
            context: Some(object(
                json!({"platform": "cloudfoundry", "space_guid": "s"}),
            )),
            organization_guid: Some("org".into()),
            space_guid: Some("space".into()),
            parameters: Some(object(json!({"work_mem_mb": 16}))),
            maintenance_info: Some(maintenance_info()),
        },
    );
}

#[test]
fn a_provision_response_keeps_its_wire_form() {
    check(
        "osb/provision_response",
        &ProvisionResponse {
            dashboard_url: Some("https://dashboard.example/i-1".into()),
            operation: Some("op-1".into()),
            metadata: Some(instance_metadata()),
        },
    );
}

#[test]
fn instance_metadata_keeps_its_wire_form() {
    check("osb/instance_metadata", &instance_metadata());
}

#[test]
fn a_fetched_instance_keeps_its_wire_form() {
    check(
        "osb/fetch_instance_response",
        &FetchInstanceResponse {
            service_id: Some("svc-postgres".into()),
            plan_id: Some("plan-small".into()),
            dashboard_url: Some("https://dashboard.example/i-1".into()),
            parameters: Some(object(json!({"work_mem_mb": 16}))),
            maintenance_info: Some(maintenance_info()),
            metadata: Some(instance_metadata()),
        },
    );
}

fn previous_values() -> PreviousValues {
    PreviousValues {
        plan_id: Some("plan-small".into()),
        service_id: Some("svc-postgres".into()),
        organization_id: Some("org".into()),
        space_id: Some("space".into()),
        maintenance_info: Some(maintenance_info()),
    }
}

#[test]
fn an_update_request_keeps_its_wire_form() {
    check(
        "osb/update_request",
        &UpdateRequest {
            service_id: Some("svc-postgres".into()),
            plan_id: Some("plan-large".into()),
            context: Some(object(json!({"platform": "kubernetes", "namespace": "n"}))),
            parameters: Some(object(json!({"work_mem_mb": 32}))),
            maintenance_info: Some(maintenance_info()),
            previous_values: Some(previous_values()),
        },
    );
}

#[test]
fn previous_values_keep_their_wire_form() {
    check("osb/previous_values", &previous_values());
}

#[test]
fn an_update_response_keeps_its_wire_form() {
    check(
        "osb/update_response",
        &UpdateResponse {
            dashboard_url: Some("https://dashboard.example/i-1".into()),
            operation: Some("op-2".into()),
            metadata: Some(instance_metadata()),
        },
    );
}

#[test]
fn an_async_operation_answer_keeps_its_wire_form() {
    check(
        "osb/async_operation_response",
        &AsyncOperationResponse {
            operation: Some("op-3".into()),
        },
    );
}

#[test]
fn operation_states_keep_their_spelling() {
    let states = vec![
        OperationState::InProgress,
        OperationState::Succeeded,
        OperationState::Failed,
    ];
    for state in &states {
        // A new state fails to compile here until it is added to the snapshot.
        match state {
            OperationState::InProgress | OperationState::Succeeded | OperationState::Failed => {}
        }
    }
    check("osb/operation_state", &states);
}

#[test]
fn a_last_operation_answer_keeps_its_wire_form() {
    check(
        "osb/last_operation_response",
        &LastOperationResponse {
            state: OperationState::Failed,
            description: Some("the server did not start".into()),
            instance_usable: Some(true),
            update_repeatable: Some(false),
        },
    );
}

#[test]
fn a_bind_request_keeps_its_wire_form() {
    check(
        "osb/bind_request",
        &BindRequest {
            service_id: Some("svc-postgres".into()),
            plan_id: Some("plan-small".into()),
            context: Some(object(json!({"platform": "cloudfoundry"}))),
            app_guid: Some("app-1".into()),
            bind_resource: Some(object(json!({"app_guid": "app-1"}))),
            parameters: Some(object(json!({"role": "reader"}))),
            predecessor_binding_id: Some("b-0".into()),
        },
    );
}

fn binding_metadata() -> BindingMetadata {
    BindingMetadata {
        expires_at: Some("2030-01-01T00:00:00.0Z".into()),
        renew_before: Some("2029-12-01T00:00:00.0Z".into()),
    }
}

#[test]
fn a_binding_keeps_its_wire_form() {
    check(
        "osb/binding_response",
        &BindingResponse {
            metadata: Some(binding_metadata()),
            credentials: Some(object(json!({"uri": "postgresql://u:p@h:5432/d"}))),
            syslog_drain_url: Some("syslog://logs.example:514".into()),
            route_service_url: Some("https://route.example".into()),
            volume_mounts: Some(vec![json!({"driver": "nfs"})]),
            endpoints: Some(vec![endpoint()]),
            parameters: Some(object(json!({"role": "reader"}))),
        },
    );
}

#[test]
fn an_async_bind_answer_keeps_its_wire_form() {
    check(
        "osb/async_bind_response",
        &AsyncBindResponse {
            operation: Some("op-4".into()),
        },
    );
}

#[test]
fn binding_metadata_keeps_its_wire_form() {
    check("osb/binding_metadata", &binding_metadata());
}

#[test]
fn a_binding_endpoint_keeps_its_wire_form() {
    check("osb/endpoint", &endpoint());
}

#[test]
fn the_error_body_keeps_its_wire_form() {
    check(
        "osb/error_body",
        &ErrorBody {
            error: Some(codes::CONCURRENCY_ERROR.into()),
            description: Some("another operation is in progress".into()),
            instance_usable: Some(true),
            update_repeatable: Some(true),
        },
    );
}
