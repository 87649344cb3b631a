//! The one mapping between the broker's typed values and their TEXT columns, for both
//! databases (through diesel's `MultiConnection` backend as through each backend alone):
//! instance and binding states (`domain`), operation states (`common::osb`), and the JSON
//! columns, decoded here and nowhere else.

use super::models::{BindingRow, InstanceRow};
use crate::domain::binding::BindingState;
use crate::domain::instance::InstanceState;
use common::osb::{JsonObject, OperationState};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::de::DeserializeOwned;

/// Writes and reads a state enum as its stored spelling.
macro_rules! text_column {
    ($ty:ty, $parse:expr) => {
        impl<DB> ToSql<Text, DB> for $ty
        where
            DB: Backend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> FromSql<Text, DB> for $ty
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let stored = String::from_sql(bytes)?;
                $parse(&stored)
            }
        }
    };
}

text_column!(InstanceState, |s: &str| Ok(InstanceState::parse(s)));
text_column!(BindingState, |s: &str| Ok(BindingState::parse(s)));
text_column!(OperationStateColumn, |s: &str| OperationState::parse(s)
    .map(OperationStateColumn)
    .ok_or_else(|| format!("unknown operation state {s:?}").into()));

/// The `operations.state` column: [`OperationState`] in its spec spelling (`in progress`,
/// `succeeded`, `failed`). A wrapper because the enum belongs to `common`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct OperationStateColumn(pub OperationState);

impl OperationStateColumn {
    fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl From<OperationState> for OperationStateColumn {
    fn from(state: OperationState) -> Self {
        Self(state)
    }
}

impl From<OperationStateColumn> for OperationState {
    fn from(column: OperationStateColumn) -> Self {
        column.0
    }
}

/// A JSON column that does not hold what it should.
#[derive(Debug, thiserror::Error)]
#[error("stored {column}: {source}")]
pub struct JsonColumnError {
    /// Which column.
    pub column: &'static str,
    /// What serde said.
    #[source]
    pub source: serde_json::Error,
}

fn decode<T: DeserializeOwned>(column: &'static str, json: &str) -> Result<T, JsonColumnError> {
    serde_json::from_str(json).map_err(|source| JsonColumnError { column, source })
}

impl InstanceRow {
    /// The instance's parameters.
    pub fn parameters_object(&self) -> Result<JsonObject, JsonColumnError> {
        decode("parameters", &self.parameters)
    }

    /// The last context sent, if any.
    pub fn context_object(&self) -> Result<Option<JsonObject>, JsonColumnError> {
        self.context
            .as_deref()
            .map(|c| decode("context", c))
            .transpose()
    }

    /// The deployment's endpoints (none before the first deployment succeeded).
    pub fn endpoint_list<T: DeserializeOwned>(&self) -> Result<Vec<T>, JsonColumnError> {
        match &self.endpoints {
            Some(json) => decode("endpoints", json),
            None => Ok(vec![]),
        }
    }
}

impl BindingRow {
    /// The binding's parameters.
    pub fn parameters_object(&self) -> Result<JsonObject, JsonColumnError> {
        decode("parameters", &self.parameters)
    }

    /// The `bind_resource` it was created with, if any.
    pub fn bind_resource_object(&self) -> Result<Option<JsonObject>, JsonColumnError> {
        self.bind_resource
            .as_deref()
            .map(|b| decode("bind_resource", b))
            .transpose()
    }

    /// The binding's OSB endpoints, when it has credentials.
    pub fn endpoint_list<T: DeserializeOwned>(&self) -> Result<Option<Vec<T>>, JsonColumnError> {
        self.endpoints
            .as_deref()
            .map(|json| decode("endpoints", json))
            .transpose()
    }
}
