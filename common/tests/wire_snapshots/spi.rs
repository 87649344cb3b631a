//! Snapshots of the broker↔SPI contract (`common::spi`) and its error envelope.

use super::deployer::{admin, endpoint, spec};
use super::osb::{endpoint as osb_endpoint, service};
use super::support::check;
use common::envelope::ErrorEnvelope;
use common::osb::JsonObject;
use common::spi::*;
use serde_json::json;

fn parameters() -> JsonObject {
    json!({"work_mem_mb": 16}).as_object().cloned().unwrap()
}

fn spi_info() -> SpiInfo {
    SpiInfo {
        name: "spi-postgres".into(),
        version: "0.1.0".into(),
    }
}

#[test]
fn the_spi_identity_keeps_its_wire_form() {
    check("spi/spi_info", &spi_info());
}

#[test]
fn a_catalog_fragment_keeps_its_wire_form() {
    check(
        "spi/catalog_fragment",
        &CatalogFragment {
            contract_version: CONTRACT_VERSION,
            spi: spi_info(),
            services: vec![service()],
        },
    );
}

#[test]
fn instance_operations_keep_their_spelling() {
    let operations = vec![InstanceOperation::Provision, InstanceOperation::Update];
    for operation in &operations {
        // A new operation fails to compile here until it is added to the snapshot.
        match operation {
            InstanceOperation::Provision | InstanceOperation::Update => {}
        }
    }
    check("spi/instance_operation", &operations);
}

#[test]
fn a_validate_instance_request_keeps_its_wire_form() {
    check(
        "spi/validate_instance_request",
        &ValidateInstanceRequest {
            operation: InstanceOperation::Update,
            instance_id: "i-1".into(),
            service_id: "svc-postgres".into(),
            plan_id: "plan-large".into(),
            previous_plan_id: Some("plan-small".into()),
            parameters: Some(parameters()),
            previous_parameters: Some(json!({"work_mem_mb": 8}).as_object().cloned().unwrap()),
        },
    );
}

#[test]
fn a_validate_instance_answer_keeps_its_wire_form() {
    check(
        "spi/validate_instance_response",
        &ValidateInstanceResponse {
            dashboard_url: Some("https://dashboard.example/i-1".into()),
        },
    );
}

#[test]
fn a_deployment_spec_request_keeps_its_wire_form() {
    check(
        "spi/deployment_spec_request",
        &DeploymentSpecRequest {
            instance_id: "i-1".into(),
            service_id: "svc-postgres".into(),
            plan_id: "plan-small".into(),
            parameters: parameters(),
            previous: Some(spec()),
        },
    );
}

#[test]
fn a_deployment_spec_answer_keeps_its_wire_form() {
    check(
        "spi/deployment_spec_response",
        &DeploymentSpecResponse {
            spec: spec(),
            description: "creating PostgreSQL 15 cluster".into(),
        },
    );
}

#[test]
fn a_validate_binding_request_keeps_its_wire_form() {
    check(
        "spi/validate_binding_request",
        &ValidateBindingRequest {
            instance_id: "i-1".into(),
            binding_id: "b-1".into(),
            service_id: "svc-postgres".into(),
            plan_id: "plan-small".into(),
            parameters: Some(parameters()),
        },
    );
}

#[test]
fn a_create_binding_request_keeps_its_wire_form() {
    check(
        "spi/create_binding_request",
        &CreateBindingRequest {
            instance_id: "i-1".into(),
            binding_id: "b-1".into(),
            service_id: "svc-postgres".into(),
            plan_id: "plan-small".into(),
            parameters: Some(parameters()),
            endpoints: vec![endpoint()],
            admin: admin(),
        },
    );
}

#[test]
fn a_create_binding_answer_keeps_its_wire_form() {
    check(
        "spi/create_binding_response",
        &CreateBindingResponse {
            credentials: json!({"uri": "postgresql://u:p@10.0.0.5:5432/d", "port": 5432})
                .as_object()
                .cloned()
                .unwrap(),
            endpoints: vec![osb_endpoint()],
        },
    );
}

#[test]
fn a_delete_binding_request_keeps_its_wire_form() {
    check(
        "spi/delete_binding_request",
        &DeleteBindingRequest {
            instance_id: "i-1".into(),
            binding_id: "b-1".into(),
            endpoints: vec![endpoint()],
            admin: admin(),
        },
    );
}

#[test]
fn the_empty_answer_keeps_its_wire_form() {
    check("spi/empty", &Empty {});
}

#[test]
fn the_error_envelope_keeps_its_wire_form() {
    check(
        "spi/error_envelope",
        &ErrorEnvelope {
            error: "BadRequest".into(),
            description: "work_mem_mb must be at most 64".into(),
            request_id: Some("req-1".into()),
        },
    );
}
