//! The OSB API v2.17 wire model: catalog objects, every request and response body, the context
//! object, last_operation and the error body. Plain serde types; unknown fields are ignored on
//! input (vendor extensions, rule 7) and absent optional fields are left out on output.

mod bindings;
mod catalog;
mod errors;
mod instances;
mod lenient;
mod operations;

pub use bindings::{AsyncBindResponse, BindRequest, BindingMetadata, BindingResponse, Endpoint};
pub use catalog::{
    Catalog, DashboardClient, InputParametersSchema, MaintenanceInfo, Plan, Schemas, Service,
    ServiceBindingSchema, ServiceInstanceSchema,
};
pub use errors::{codes, ErrorBody};
pub use instances::{
    FetchInstanceResponse, InstanceMetadata, PreviousValues, ProvisionRequest, ProvisionResponse,
    UpdateRequest, UpdateResponse,
};
pub use operations::{AsyncOperationResponse, LastOperationResponse, OperationState};

use serde_json::{Map, Value};

/// A JSON object, as used for free-form parameters, context and credentials.
pub type JsonObject = Map<String, Value>;
