//! The deployments the broker's instances own, for reconciliation with the deployer.

use super::schema::service_instances;
use super::{Store, StoreError};
use crate::domain::instance::InstanceState;
use diesel::prelude::*;

/// An instance that names a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDeployment {
    /// Instance id.
    pub instance_id: String,
    /// Instance state (provisioning, ready, deprovisioning or failed).
    pub state: InstanceState,
    /// The deployer deployment it owns.
    pub deployment_name: String,
}

impl Store {
    /// The state of every instance that is not deleted (for metrics).
    pub async fn instance_states(&self) -> Result<Vec<InstanceState>, StoreError> {
        self.run(|conn| {
            Ok(service_instances::table
                .filter(service_instances::state.ne(InstanceState::Deleted))
                .select(service_instances::state)
                .load(conn)?)
        })
        .await
    }

    /// Every instance that is not deleted and names a deployment.
    pub async fn owned_deployments(&self) -> Result<Vec<OwnedDeployment>, StoreError> {
        self.run(|conn| {
            let rows: Vec<(String, InstanceState, Option<String>)> = service_instances::table
                .filter(service_instances::state.ne(InstanceState::Deleted))
                .filter(service_instances::deployment_name.is_not_null())
                .select((
                    service_instances::id,
                    service_instances::state,
                    service_instances::deployment_name,
                ))
                .order(service_instances::id.asc())
                .load(conn)?;
            Ok(rows
                .into_iter()
                .filter_map(|(instance_id, state, name)| {
                    name.map(|deployment_name| OwnedDeployment {
                        instance_id,
                        state,
                        deployment_name,
                    })
                })
                .collect())
        })
        .await
    }
}
