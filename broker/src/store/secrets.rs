//! The encrypted columns, for key rotation: finding values not written under the current key
//! and replacing one value only if nobody changed it meanwhile.

use super::schema::{operations, service_bindings, service_instances};
use super::{Store, StoreError};
use diesel::prelude::*;

/// Which column holds an encrypted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretColumn {
    /// `service_instances.deployment_spec_enc` (the admin password).
    InstanceSpec,
    /// `service_bindings.credentials_enc`.
    BindingCredentials,
    /// `operations.payload`: a JSON object whose `new_spec_enc` is encrypted (an update).
    OperationPayload,
}

/// One stored value holding a secret, as read.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// Where it lives.
    pub column: SecretColumn,
    /// Row id.
    pub id: String,
    /// The column's value (ciphertext, or a JSON payload holding one).
    pub value: String,
}

/// The JSON key of the encrypted spec inside an operation payload.
const PAYLOAD_SECRET: &str = "\"new_spec_enc\":";

impl Store {
    /// Every stored secret whose value does not start with `current_prefix` (for payloads:
    /// whose `new_spec_enc` does not). A superset at worst; callers check each value.
    pub async fn secrets_not_under(
        &self,
        current_prefix: &str,
    ) -> Result<Vec<StoredSecret>, StoreError> {
        let current = format!("{current_prefix}%");
        let payload_current = format!("%{PAYLOAD_SECRET}\"{current_prefix}%");
        self.run(move |conn| {
            let specs: Vec<(String, Option<String>)> = service_instances::table
                .filter(service_instances::deployment_spec_enc.is_not_null())
                .filter(service_instances::deployment_spec_enc.not_like(&current))
                .select((
                    service_instances::id,
                    service_instances::deployment_spec_enc,
                ))
                .load(conn)?;
            let credentials: Vec<(String, Option<String>)> = service_bindings::table
                .filter(service_bindings::credentials_enc.is_not_null())
                .filter(service_bindings::credentials_enc.not_like(&current))
                .select((service_bindings::id, service_bindings::credentials_enc))
                .load(conn)?;
            let payloads: Vec<(String, String)> = operations::table
                .filter(operations::payload.like(format!("%{PAYLOAD_SECRET}%")))
                .filter(operations::payload.not_like(&payload_current))
                .select((operations::id, operations::payload))
                .load(conn)?;
            let optional = |column, rows: Vec<(String, Option<String>)>| {
                rows.into_iter().filter_map(move |(id, value)| {
                    value.map(|value| StoredSecret { column, id, value })
                })
            };
            Ok(optional(SecretColumn::InstanceSpec, specs)
                .chain(optional(SecretColumn::BindingCredentials, credentials))
                .chain(payloads.into_iter().map(|(id, value)| StoredSecret {
                    column: SecretColumn::OperationPayload,
                    id,
                    value,
                }))
                .collect())
        })
        .await
    }

    /// Writes `new` over `secret` if the column still holds the value read; false when it
    /// changed meanwhile (a running broker wrote a fresh value, under the current key).
    pub async fn replace_secret(
        &self,
        secret: &StoredSecret,
        new: String,
    ) -> Result<bool, StoreError> {
        let StoredSecret { column, id, value } = secret.clone();
        self.write(move |conn| {
            let n = match column {
                SecretColumn::InstanceSpec => diesel::update(
                    service_instances::table
                        .filter(service_instances::id.eq(&id))
                        .filter(service_instances::deployment_spec_enc.eq(&value)),
                )
                .set(service_instances::deployment_spec_enc.eq(Some(new)))
                .execute(conn)?,
                SecretColumn::BindingCredentials => diesel::update(
                    service_bindings::table
                        .filter(service_bindings::id.eq(&id))
                        .filter(service_bindings::credentials_enc.eq(&value)),
                )
                .set(service_bindings::credentials_enc.eq(Some(new)))
                .execute(conn)?,
                SecretColumn::OperationPayload => diesel::update(
                    operations::table
                        .filter(operations::id.eq(&id))
                        .filter(operations::payload.eq(&value)),
                )
                .set(operations::payload.eq(new))
                .execute(conn)?,
            };
            Ok(n == 1)
        })
        .await
    }
}
