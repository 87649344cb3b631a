//! A real instance for binding tests: the SPI's own deployment spec, run by the real deployer
//! ([`provision`], [`spawn_with_instance`]), its update ([`TestInstance::update`]), and the bind
//! and unbind requests on it that every data service's binding tests make.

use super::{ctx, spawn_app, spawn_deployer, TestApp, TestDeployer};
use common::deployer::{DeploymentEndpoint, DeploymentSpec};
use common::spi::{
    CreateBindingRequest, CreateBindingResponse, DeleteBindingRequest, DeploymentSpecRequest,
};
use serde_json::Value;
use spi_kit::service::{Catalog, DataService};

/// A deployment spec request of `S` for `instance_id` on `plan_id` with `parameters` (a JSON
/// object), updating `previous` when given.
pub fn spec_request<S: Catalog>(
    instance_id: &str,
    plan_id: &str,
    parameters: Value,
    previous: Option<DeploymentSpec>,
) -> DeploymentSpecRequest {
    DeploymentSpecRequest {
        instance_id: instance_id.into(),
        service_id: S::SERVICE.id.into(),
        plan_id: plan_id.into(),
        parameters: parameters.as_object().cloned().unwrap(),
        previous,
    }
}

/// An instance running on the test's deployer.
#[derive(Debug, Clone)]
pub struct TestInstance {
    /// The instance id.
    pub id: String,
    /// Offering id.
    pub service_id: String,
    /// The plan it runs.
    pub plan_id: String,
    /// The spec it runs, with its admin account.
    pub spec: DeploymentSpec,
    /// How the SPI described the spec's task.
    pub description: String,
    /// Where it runs.
    pub endpoints: Vec<DeploymentEndpoint>,
}

/// Asks `app` for the spec of `instance_id` on `plan_id` with `parameters` (updating
/// `previous` when given) and has `deployer` run it.
pub async fn provision<S: Catalog>(
    app: &TestApp,
    deployer: &TestDeployer,
    instance_id: &str,
    plan_id: &str,
    parameters: Value,
    previous: Option<DeploymentSpec>,
) -> TestInstance {
    let request = spec_request::<S>(instance_id, plan_id, parameters, previous);
    deploy(app, deployer, request).await
}

/// Starts the SPI of `S` and a deployer beside it, and provisions a new instance of `plan_id`
/// with `parameters` on them.
pub async fn spawn_with_instance<S: DataService>(
    plan_id: &str,
    parameters: Value,
) -> (TestApp, TestDeployer, TestInstance) {
    let app = spawn_app::<S>().await;
    let deployer = spawn_deployer(app.cert_dir()).await;
    let instance_id = common::new_request_id();
    let instance = provision::<S>(&app, &deployer, &instance_id, plan_id, parameters, None).await;
    (app, deployer, instance)
}

async fn deploy(
    app: &TestApp,
    deployer: &TestDeployer,
    request: DeploymentSpecRequest,
) -> TestInstance {
    let answer = app.spi.deployment_spec(&request, &ctx()).await.unwrap();
    let deployment = deployer.deploy(&answer.spec).await;
    TestInstance {
        id: request.instance_id.to_string(),
        service_id: request.service_id.to_string(),
        plan_id: request.plan_id.to_string(),
        spec: answer.spec,
        description: answer.description,
        endpoints: deployment.endpoints,
    }
}

impl TestInstance {
    /// Updates this instance to `plan_id` with `parameters`: the SPI's spec from this one, run
    /// by `deployer`. Returns the instance as it runs after the update.
    pub async fn update(
        &self,
        app: &TestApp,
        deployer: &TestDeployer,
        plan_id: &str,
        parameters: Value,
    ) -> TestInstance {
        let request = DeploymentSpecRequest {
            instance_id: self.id.as_str().into(),
            service_id: self.service_id.as_str().into(),
            plan_id: plan_id.into(),
            parameters: parameters.as_object().cloned().unwrap(),
            previous: Some(self.spec.clone()),
        };
        deploy(app, deployer, request).await
    }

    /// The request binding `binding_id` to this instance, without parameters.
    pub fn bind_request(&self, binding_id: &str) -> CreateBindingRequest {
        CreateBindingRequest {
            instance_id: self.id.clone().into(),
            binding_id: binding_id.into(),
            service_id: self.service_id.clone().into(),
            plan_id: self.plan_id.clone().into(),
            parameters: None,
            endpoints: self.endpoints.clone(),
            admin: self.spec.admin.clone(),
        }
    }

    /// The request unbinding `binding_id` from this instance.
    pub fn unbind_request(&self, binding_id: &str) -> DeleteBindingRequest {
        DeleteBindingRequest {
            instance_id: self.id.clone().into(),
            binding_id: binding_id.into(),
            endpoints: self.endpoints.clone(),
            admin: self.spec.admin.clone(),
        }
    }

    /// Binds `binding_id` through `app`; the binding must succeed.
    pub async fn bind(&self, app: &TestApp, binding_id: &str) -> CreateBindingResponse {
        let request = self.bind_request(binding_id);
        app.spi.create_binding(&request, &ctx()).await.unwrap()
    }

    /// Unbinds `binding_id` through `app`; the unbinding must succeed.
    pub async fn unbind(&self, app: &TestApp, binding_id: &str) {
        let request = self.unbind_request(binding_id);
        app.spi.delete_binding(&request, &ctx()).await.unwrap();
    }

    /// Binds `binding_id` a second time, which is the binding `earlier` got before: the
    /// account stays, the password is new. Returns the new binding.
    pub async fn rebind(
        &self,
        app: &TestApp,
        binding_id: &str,
        earlier: &CreateBindingResponse,
    ) -> CreateBindingResponse {
        let again = self.bind(app, binding_id).await;
        assert_eq!(
            again.credentials["username"],
            earlier.credentials["username"]
        );
        assert_ne!(
            again.credentials["password"],
            earlier.credentials["password"]
        );
        again
    }
}

/// The credential `name` (`uri`, …) of `binding`, as text.
pub fn credential(binding: &CreateBindingResponse, name: &str) -> String {
    binding.credentials[name].as_str().unwrap().to_string()
}
