//! The broker↔SPI contract, version 1, under `/spi/v1`, and its typed client.
//!
//! | call | answer |
//! |---|---|
//! | `GET /spi/v1/catalog` | 200 [`CatalogFragment`] |
//! | `POST /spi/v1/instances/validate` body [`ValidateInstanceRequest`] | 200 [`ValidateInstanceResponse`]; 400 envelope naming the parameter/rule, or the plan pair |
//! | `POST /spi/v1/instances/deployment-spec` body [`DeploymentSpecRequest`] | 200 [`DeploymentSpecResponse`] |
//! | `POST /spi/v1/bindings/validate` body [`ValidateBindingRequest`] | 200 `{}`; 400 envelope |
//! | `POST /spi/v1/bindings` body [`CreateBindingRequest`] | 200 [`CreateBindingResponse`] (idempotent per binding id: fresh password each time) |
//! | `POST /spi/v1/bindings/delete` body [`DeleteBindingRequest`] | 200 `{}` (idempotent: an unknown binding is already gone) |
//!
//! Refusals meant for the user are 400 (or 422) with [`crate::envelope::ErrorEnvelope`], whose
//! `description` the broker passes through verbatim. Anything else is an internal error.

use crate::client::{CallContext, ClientError, InternalClient};
use crate::deployer::{AdminCredentials, DeploymentEndpoint, DeploymentSpec};
use crate::ids::{BindingId, InstanceId, PlanId, ServiceId};
use crate::osb::{Endpoint, JsonObject, Service};
use serde::{Deserialize, Serialize};

/// Path prefix of this contract version.
pub const PREFIX: &str = "/spi/v1";
/// The contract version this build speaks; the broker refuses an SPI reporting another.
pub const CONTRACT_VERSION: u32 = 1;

/// Who the SPI is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpiInfo {
    /// SPI name, e.g. `spi-postgres`.
    pub name: String,
    /// SPI build version.
    pub version: String,
}

/// `GET /spi/v1/catalog`: the offerings this SPI owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogFragment {
    /// Contract version spoken ([`CONTRACT_VERSION`]).
    pub contract_version: u32,
    /// Identity of the SPI.
    pub spi: SpiInfo,
    /// OSB service offerings, complete with plans, schemas and maintenance_info.
    pub services: Vec<Service>,
}

/// Which instance operation is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceOperation {
    /// A new instance.
    Provision,
    /// A change to an existing instance.
    Update,
}

/// `POST /spi/v1/instances/validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateInstanceRequest {
    /// Provision or update.
    pub operation: InstanceOperation,
    /// Instance id.
    pub instance_id: InstanceId,
    /// Offering id.
    pub service_id: ServiceId,
    /// Target plan id.
    pub plan_id: PlanId,
    /// Current plan (update only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_plan_id: Option<PlanId>,
    /// Parameters of the request (update: only those sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Current parameters (update only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_parameters: Option<JsonObject>,
}

/// Answer of a successful validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidateInstanceResponse {
    /// Dashboard of the instance, returned in the first provision response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

/// `POST /spi/v1/instances/deployment-spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpecRequest {
    /// Instance id.
    pub instance_id: InstanceId,
    /// Offering id.
    pub service_id: ServiceId,
    /// Plan id.
    pub plan_id: PlanId,
    /// Effective parameters (update: previous merged with the new ones).
    #[serde(default)]
    pub parameters: JsonObject,
    /// The current spec on update (keeps name, admin account and data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<DeploymentSpec>,
}

/// Answer to a deployment-spec request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpecResponse {
    /// What the deployer should run.
    pub spec: DeploymentSpec,
    /// What a person sees while it is applied, e.g. "creating PostgreSQL 15 cluster".
    pub description: String,
}

/// `POST /spi/v1/bindings/validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateBindingRequest {
    /// Instance id.
    pub instance_id: InstanceId,
    /// Binding id.
    pub binding_id: BindingId,
    /// Offering id.
    pub service_id: ServiceId,
    /// Plan id.
    pub plan_id: PlanId,
    /// Binding parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
}

/// `POST /spi/v1/bindings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateBindingRequest {
    /// Instance id.
    pub instance_id: InstanceId,
    /// Binding id.
    pub binding_id: BindingId,
    /// Offering id.
    pub service_id: ServiceId,
    /// Plan id.
    pub plan_id: PlanId,
    /// Binding parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<JsonObject>,
    /// Where the instance runs.
    pub endpoints: Vec<DeploymentEndpoint>,
    /// The instance's admin account.
    pub admin: AdminCredentials,
}

/// Answer to a create-binding request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateBindingResponse {
    /// Credentials for the application (`uri`, `host`, `port`, `username`, `password`, …).
    pub credentials: JsonObject,
    /// OSB endpoints of the binding.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// `POST /spi/v1/bindings/delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteBindingRequest {
    /// Instance id.
    pub instance_id: InstanceId,
    /// Binding id.
    pub binding_id: BindingId,
    /// Where the instance runs.
    pub endpoints: Vec<DeploymentEndpoint>,
    /// The instance's admin account.
    pub admin: AdminCredentials,
}

/// An empty JSON object answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Typed client of one SPI.
#[derive(Debug, Clone)]
pub struct SpiClient {
    inner: InternalClient,
}

impl SpiClient {
    /// Wraps an internal client pointed at the SPI's base URL.
    pub fn new(inner: InternalClient) -> Self {
        Self { inner }
    }

    /// The SPI's base URL.
    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// `GET /spi/v1/catalog`.
    pub async fn catalog(&self, ctx: &CallContext) -> Result<CatalogFragment, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::GET, &format!("{PREFIX}/catalog"));
        self.inner.send(req, ctx).await
    }

    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        ctx: &CallContext,
    ) -> Result<T, ClientError> {
        let req = self
            .inner
            .request(reqwest::Method::POST, &format!("{PREFIX}{path}"))
            .json(body);
        self.inner.send(req, ctx).await
    }

    /// `POST /spi/v1/instances/validate`.
    pub async fn validate_instance(
        &self,
        body: &ValidateInstanceRequest,
        ctx: &CallContext,
    ) -> Result<ValidateInstanceResponse, ClientError> {
        self.post("/instances/validate", body, ctx).await
    }

    /// `POST /spi/v1/instances/deployment-spec`.
    pub async fn deployment_spec(
        &self,
        body: &DeploymentSpecRequest,
        ctx: &CallContext,
    ) -> Result<DeploymentSpecResponse, ClientError> {
        self.post("/instances/deployment-spec", body, ctx).await
    }

    /// `POST /spi/v1/bindings/validate`.
    pub async fn validate_binding(
        &self,
        body: &ValidateBindingRequest,
        ctx: &CallContext,
    ) -> Result<Empty, ClientError> {
        self.post("/bindings/validate", body, ctx).await
    }

    /// `POST /spi/v1/bindings`.
    pub async fn create_binding(
        &self,
        body: &CreateBindingRequest,
        ctx: &CallContext,
    ) -> Result<CreateBindingResponse, ClientError> {
        self.post("/bindings", body, ctx).await
    }

    /// `POST /spi/v1/bindings/delete`.
    pub async fn delete_binding(
        &self,
        body: &DeleteBindingRequest,
        ctx: &CallContext,
    ) -> Result<Empty, ClientError> {
        self.post("/bindings/delete", body, ctx).await
    }
}
