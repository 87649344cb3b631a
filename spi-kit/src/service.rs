//! What an SPI implements: what differs from one data service to the next, in three traits
//! that each SPI implements next to the code they describe (its offering, its deployment specs,
//! its bindings) on one unit type. Everything else in this crate is generic over them.

use crate::binding::BindingCredentials;
use crate::error::ErrorKind;
use crate::offering::{PlanDef, ServiceInfo};
use crate::spec::EngineInfo;
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::osb::JsonObject;
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

/// How bindings are made and removed on a running instance, through its admin account.
pub trait Bindings {
    /// Failure of a bind or unbind; [`ErrorKind`] says which answer it becomes.
    type BindingError: Into<ErrorKind>;

    /// What a binding is on the instance (`role`, `user`), for log lines.
    const BINDING_KIND: &'static str;

    /// Creates (or, on a retry, re-keys) the credentials of `binding_id` on the instance.
    fn create_binding(
        binding_id: &str,
        endpoints: &[DeploymentEndpoint],
        admin: &AdminCredentials,
    ) -> impl Future<Output = Result<BindingCredentials, Self::BindingError>>;

    /// Deletes the credentials of `binding_id` from the instance; unknown ones are already gone.
    fn delete_binding(
        binding_id: &str,
        endpoints: &[DeploymentEndpoint],
        admin: &AdminCredentials,
    ) -> impl Future<Output = Result<(), Self::BindingError>>;
}

/// A whole data service (PostgreSQL, a key-value store, …): what an SPI serves.
pub trait DataService: Catalog + Deployment + Bindings {}

impl<T: Catalog + Deployment + Bindings> DataService for T {}
