//! The encrypted columns, for re-encryption under the current key (`crate::reencrypt`):
//! finding values not written under the current key and replacing one value only if nobody
//! changed it meanwhile.

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

#[cfg(test)]
mod tests {
    use super::super::models::InstanceRow;
    use super::super::now_ms;
    use super::super::tests::{instance, operation, store};
    use super::*;

    #[tokio::test]
    async fn only_values_under_other_keys_are_found_and_a_changed_value_is_not_overwritten() {
        let (_dir, store) = store().await;
        let old = InstanceRow {
            deployment_name: Some("kv-1".into()),
            deployment_spec_enc: Some("v1:old:AAAA".into()),
            ..instance("i1")
        };
        let current = InstanceRow {
            deployment_spec_enc: Some("v1:new:BBBB".into()),
            ..instance("i2")
        };
        let mut update = operation("op1", "i1", "update", Some("a"));
        update.payload = r#"{"new_spec_enc":"v1:old:CCCC"}"#.into();
        store.create_instance(old, update).await.unwrap();
        store
            .create_instance(current, operation("op2", "i2", "provision", Some("a")))
            .await
            .unwrap();

        let found = store.secrets_not_under("v1:new:").await.unwrap();
        let found: Vec<_> = found.iter().map(|s| (s.column, s.id.as_str())).collect();
        assert_eq!(
            found,
            [
                (SecretColumn::InstanceSpec, "i1"),
                (SecretColumn::OperationPayload, "op1")
            ]
        );
        let stale = StoredSecret {
            column: SecretColumn::InstanceSpec,
            id: "i1".into(),
            value: "v1:old:AAAA".into(),
        };
        assert!(store
            .replace_secret(&stale, "v1:new:DDDD".into())
            .await
            .unwrap());
        // A second writer holding the old value read loses.
        assert!(!store
            .replace_secret(&stale, "v1:new:EEEE".into())
            .await
            .unwrap());
        let (row, _) = store.instance("i1").await.unwrap().unwrap();
        assert_eq!(row.deployment_spec_enc.as_deref(), Some("v1:new:DDDD"));

        assert_eq!(
            store
                .owned_deployments()
                .await
                .unwrap()
                .iter()
                .map(|o| o.deployment_name.as_str())
                .collect::<Vec<_>>(),
            ["kv-1"]
        );
        assert_eq!(store.release_leases_of("a").await.unwrap(), 2);
        assert_eq!(
            store.operation("op1").await.unwrap().unwrap().lease_owner,
            None
        );
        assert!(store
            .claimable_operations(now_ms(), 10)
            .await
            .unwrap()
            .contains(&"op1".to_string()));
    }
}
