//! Handing back leases at shutdown, so another broker takes the operations over at once
//! instead of waiting for the leases to expire.

use super::schema::operations;
use super::{Store, StoreError};
use diesel::prelude::*;

impl Store {
    /// Clears every lease `owner` holds (operations in progress and cancelled ones alike);
    /// how many were cleared.
    pub async fn release_leases_of(&self, owner: &str) -> Result<usize, StoreError> {
        let owner = owner.to_string();
        self.run(move |conn| {
            Ok(
                diesel::update(operations::table.filter(operations::lease_owner.eq(&owner)))
                    .set((
                        operations::lease_owner.eq(None::<String>),
                        operations::lease_expires_ms.eq(None::<i64>),
                    ))
                    .execute(conn)?,
            )
        })
        .await
    }
}
