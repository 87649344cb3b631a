//! Event flows: code a library user registers to run around the broker's operations, after
//! Spring Cloud Open Service Broker's three registries.
//!
//! - **initialization** flows run before an operation is stored; one may refuse the request
//!   with a 4xx ([`FlowRefusal`]), and then nothing is stored and no worker starts;
//! - **completion** flows run once the operation succeeded, with the request and the outcome
//!   ([`FlowResponse`]);
//! - **error** flows run once it failed, with the request and the error ([`FlowError`]).
//!
//! Flows are registered per [`FlowKind`] on a [`FlowRegistry`] handed to
//! [`crate::startup::Application::builder`]. For provision, update, deprovision, bind and unbind
//! the completion and error flows run when the operation really ends (from the journal), once
//! per operation even when a broker dies and another resumes it ([`FlowDispatcher`]; a flow
//! that was running when its broker died runs again on the next); for last_operation they run
//! with the answer. A flow that fails, panics or outruns the registry's timeout is logged with
//! the request id and changes nothing else; flows of one registry run in registration order,
//! one after the other. Flows see no secret: no parameters but the `tracing_id`, no
//! credentials.
//!
//! Flows are async and run on the broker's runtime: one that blocks its thread (blocking I/O,
//! `std::thread::sleep`) cannot be stopped by the timeout and holds up the requests of that
//! thread; hand such work to `tokio::task::spawn_blocking`.

mod dispatch;
mod registry;
mod run;
mod view;

pub use dispatch::FlowDispatcher;
pub use registry::{FlowRegistry, DEFAULT_FLOW_TIMEOUT};
pub(crate) use run::run_init_flows;
pub use view::FlowIdentity;

use crate::domain::operation::OperationKind;
use common::osb::{JsonObject, OperationState};
use serde::{Deserialize, Serialize};

/// The operation kinds flows can be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// `PUT /v2/service_instances/{id}`.
    Provision,
    /// `PATCH /v2/service_instances/{id}`.
    Update,
    /// `DELETE /v2/service_instances/{id}`.
    Deprovision,
    /// `PUT …/service_bindings/{binding_id}`.
    Bind,
    /// `DELETE …/service_bindings/{binding_id}`.
    Unbind,
    /// `GET …/last_operation` of an instance or a binding.
    LastOperation,
}

impl FlowKind {
    /// Every kind, for a flow that observes them all.
    pub const ALL: [FlowKind; 6] = [
        Self::Provision,
        Self::Update,
        Self::Deprovision,
        Self::Bind,
        Self::Unbind,
        Self::LastOperation,
    ];

    /// `provision`, `update`, `deprovision`, `bind`, `unbind` or `last_operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Update => "update",
            Self::Deprovision => "deprovision",
            Self::Bind => "bind",
            Self::Unbind => "unbind",
            Self::LastOperation => "last_operation",
        }
    }
}

impl From<OperationKind> for FlowKind {
    fn from(kind: OperationKind) -> Self {
        match kind {
            OperationKind::Provision => Self::Provision,
            OperationKind::Update => Self::Update,
            OperationKind::Deprovision => Self::Deprovision,
            OperationKind::Bind => Self::Bind,
            OperationKind::Unbind => Self::Unbind,
        }
    }
}

/// What a flow knows of the request it observes. Holds no secret: of the parameters only the
/// `tracing_id`, never binding credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRequest {
    /// What the request does.
    pub kind: FlowKind,
    /// The OSB operation the request starts (for last_operation: the `operation` hint). An
    /// initialization flow sees the id the operation is going to have; if the request is then
    /// refused (by a flow, a quota, a concurrent request), no operation with that id exists.
    pub operation: Option<String>,
    /// The service instance.
    pub instance_id: String,
    /// The service binding (bind, unbind, a binding's last_operation).
    pub binding_id: Option<String>,
    /// The offering id (for update: of the instance; for last_operation: the query's hint).
    pub service_id: Option<String>,
    /// The plan id (for update: the target plan; for last_operation: the query's hint).
    pub plan_id: Option<String>,
    /// The `context` object the request sent.
    pub context: Option<JsonObject>,
    /// The `tracing_id` parameter, when the request had one (a string, or a number as text).
    /// The broker takes it out of the parameters: SPIs never see it and it is not stored
    /// with the instance or binding.
    pub tracing_id: Option<String>,
    /// Who the platform acted for (`X-Broker-API-Originating-Identity`), decoded.
    pub originating_identity: Option<FlowIdentity>,
    /// `X-Broker-API-Request-Identity` (or the id the broker gave the request).
    pub request_id: String,
}

/// What a completion flow is told: how the operation ended, or the last_operation answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowResponse {
    /// `succeeded` for an operation; for last_operation the state answered.
    pub state: OperationState,
    /// The operation's description.
    pub description: Option<String>,
}

/// What an error flow is told: an operation that failed, or a last_operation answered 4xx/5xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowError {
    /// The HTTP status: for last_operation the one answered; for an operation the status of
    /// the SPI refusal that ended it, when one did.
    pub status: Option<u16>,
    /// The description the platform sees.
    pub description: String,
}

/// An initialization flow's refusal of a request: answered with `status` (a 4xx; anything else
/// is answered 422) and an OSB error body carrying `error` and `description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRefusal {
    /// The HTTP status, 400..=499.
    pub status: u16,
    /// The OSB `error` code, if any.
    pub error: Option<String>,
    /// The description the platform shows.
    pub description: String,
}

impl FlowRefusal {
    /// A refusal with `status` and `description` and no error code.
    pub fn new(status: u16, description: impl Into<String>) -> Self {
        Self {
            status,
            error: None,
            description: description.into(),
        }
    }

    /// The same refusal with an OSB `error` code.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// The status answered: `status` when it is a 4xx, else 422.
    pub fn answered_status(&self) -> u16 {
        if (400..500).contains(&self.status) {
            self.status
        } else {
            422
        }
    }
}

/// Why an initialization flow did not let the request through.
#[derive(Debug)]
pub enum InitError {
    /// Refuse the request: nothing is stored, the platform gets the refusal.
    Refuse(FlowRefusal),
    /// The flow itself failed: logged, the request goes on as if the flow had passed.
    Failed(anyhow::Error),
}

impl From<FlowRefusal> for InitError {
    fn from(refusal: FlowRefusal) -> Self {
        Self::Refuse(refusal)
    }
}

impl From<anyhow::Error> for InitError {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}
