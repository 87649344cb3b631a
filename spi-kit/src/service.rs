//! What an SPI implements: what differs from one data service to the next, in three traits
//! that each SPI implements next to the code they describe (its offering, its deployment specs,
//! its bindings) on one unit type. Everything else in this crate is generic over them.

use crate::binding::{bounded, first_endpoint, BindingCredentials, Unavailable, PASSWORD_LEN};
use crate::error::ErrorKind;
use crate::offering::{PlanDef, ServiceInfo};
use crate::spec::EngineInfo;
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::osb::JsonObject;
use common::secret::{random_password, SecretString};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;

/// The offering's data: ids, texts, plans and instance parameters.
pub trait Catalog: Send + Sync + 'static {
    /// How a plan sizes its server: the data-service-specific half of a [`PlanDef`].
    type Sizing: std::fmt::Debug + Send + Sync + 'static;

    /// The offering: ids, names and catalog texts.
    const SERVICE: ServiceInfo;
    /// Every plan of the offering, smallest first.
    const PLANS: &'static [PlanDef<Self::Sizing>];

    /// The `properties` of `plan`'s instance parameter schema (provision and update accept the
    /// same parameters).
    fn instance_properties(plan: &PlanDef<Self::Sizing>) -> Value;

    /// Catalog bullets describing `plan`'s sizing (they follow the product bullet).
    fn sizing_bullets(plan: &PlanDef<Self::Sizing>) -> Vec<String>;
}

/// How an instance is deployed: the engine, and the server settings of a plan.
pub trait Deployment: Catalog {
    /// What the deployer runs for an instance.
    const ENGINE: EngineInfo;

    /// Server settings of `plan` with the (validated) instance `parameters` applied.
    fn server_settings(
        plan: &PlanDef<Self::Sizing>,
        parameters: &JsonObject,
    ) -> BTreeMap<String, String>;
}

/// How bindings are made and removed on a running instance, through its admin account. A data
/// service says what a binding's account is and how to create, delete and describe one; the
/// steps around it (the first endpoint, a fresh password, the time limit) are the same for
/// every data service and provided here.
pub trait Bindings {
    /// Failure of a bind or unbind; [`ErrorKind`] says which answer it becomes.
    type BindingError: Into<ErrorKind> + From<Unavailable>;

    /// What a binding is on the instance (`role`, `user`), for log lines.
    const BINDING_KIND: &'static str;

    /// The account of binding `binding_id` on the instance: the same for every call, different
    /// for different ids.
    fn account_name(binding_id: &str) -> String;

    /// Creates `account` with `password` on the server at `endpoint`, or, when it exists (a
    /// retry), gives it exactly the binding's rights and only this password.
    fn create_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        account: &str,
        password: &SecretString,
    ) -> impl Future<Output = Result<(), Self::BindingError>>;

    /// Deletes `account` from the server at `endpoint` and ends its sessions; an unknown account
    /// is already gone.
    fn delete_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        account: &str,
    ) -> impl Future<Output = Result<(), Self::BindingError>>;

    /// What an application gets to reach the server at `endpoint` as `account`.
    fn credentials(
        endpoint: &DeploymentEndpoint,
        account: &str,
        password: &SecretString,
    ) -> BindingCredentials;

    /// Creates (or, on a retry, re-keys) the account of `binding_id` on the instance's first
    /// endpoint with a fresh password, within [`crate::binding::OPERATION_TIMEOUT`], and
    /// returns its credentials.
    fn create_binding(
        binding_id: &str,
        endpoints: &[DeploymentEndpoint],
        admin: &AdminCredentials,
    ) -> impl Future<Output = Result<BindingCredentials, Self::BindingError>> {
        async move {
            let endpoint = first_endpoint(endpoints)?;
            let account = Self::account_name(binding_id);
            let password = random_password(PASSWORD_LEN);
            bounded(Self::create_account(endpoint, admin, &account, &password)).await?;
            Ok(Self::credentials(endpoint, &account, &password))
        }
    }

    /// Deletes the account of `binding_id` from the instance's first endpoint, within
    /// [`crate::binding::OPERATION_TIMEOUT`]; an unknown one is already gone.
    fn delete_binding(
        binding_id: &str,
        endpoints: &[DeploymentEndpoint],
        admin: &AdminCredentials,
    ) -> impl Future<Output = Result<(), Self::BindingError>> {
        async move {
            let endpoint = first_endpoint(endpoints)?;
            let account = Self::account_name(binding_id);
            bounded(Self::delete_account(endpoint, admin, &account)).await
        }
    }
}

/// A whole data service (PostgreSQL, a key-value store, …): what an SPI serves.
pub trait DataService: Catalog + Deployment + Bindings {}

impl<T: Catalog + Deployment + Bindings> DataService for T {}
