//! Where a BOSH deployment's server is found (`GET /deployments/<name>/instances`: each
//! instance's first IP, or its BOSH DNS name, with the manifest's port), whether it answers
//! the admin's query, and its health.

use super::director::DirectorInstance;
use super::{director_error, read_record, BoshBackend, Record};
use crate::backend::shared::read_secret;
use crate::backend::{BackendError, Progress};
use crate::engine;
use common::deployer::{DeploymentEndpoint, DeploymentHealth, Health};
use common::secret::SecretString;
use std::time::{Duration, Instant};

/// Pause between two readiness probes.
const READY_NAP: Duration = Duration::from_millis(250);

impl BoshBackend {
    /// The endpoints of the record's instances, in index order; `retry` waits for an
    /// unreachable Director (operations), otherwise one attempt is made (health checks).
    pub(super) async fn endpoints(
        &self,
        record: &Record,
        retry: bool,
    ) -> Result<Vec<DeploymentEndpoint>, BackendError> {
        let path = format!("/deployments/{}/instances", record.deployment);
        let context = format!(
            "listing the instances of BOSH deployment {}",
            record.deployment
        );
        let instances: Vec<DirectorInstance> = if retry {
            self.director.get_json(&path).await
        } else {
            self.director.get_json_once(&path).await
        }
        .map_err(director_error(&context))?;
        let endpoints = endpoints_of(instances, record, self.settings.use_dns_addresses);
        if endpoints.is_empty() {
            return Err(BackendError::Server(format!(
                "BOSH deployment {} has no {} instance with an address",
                record.deployment, record.instance_group
            )));
        }
        Ok(endpoints)
    }

    /// Waits until the first endpoint answers the admin's query, or the ready timeout.
    pub(super) async fn wait_ready(
        &self,
        record: &Record,
        endpoints: &[DeploymentEndpoint],
        password: &SecretString,
        progress: &Progress,
    ) -> Result<(), BackendError> {
        let Some(at) = endpoints.first() else {
            return Err(BackendError::Server("no endpoint to probe".into()));
        };
        progress.set(&format!(
            "waiting for {} at {}:{} to accept connections",
            engine::name(record.engine),
            at.host,
            at.port
        ));
        let deadline = Instant::now() + Duration::from_secs(self.settings.ready_timeout_secs);
        loop {
            let last = match self.probe(record, at, password).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(BackendError::Server(format!(
                    "{} of BOSH deployment {} did not answer within {} s: {last}",
                    engine::name(record.engine),
                    record.deployment,
                    self.settings.ready_timeout_secs
                )));
            }
            tokio::time::sleep(READY_NAP).await;
        }
    }

    async fn probe(
        &self,
        record: &Record,
        at: &DeploymentEndpoint,
        password: &SecretString,
    ) -> Result<(), String> {
        engine::probe(
            record.engine,
            &at.host,
            at.port,
            &record.admin_username,
            password,
        )
        .await
    }

    /// Healthy when the Director lists the instances and the first answers the admin's query.
    pub(super) async fn server_health(&self, name: &str) -> Result<DeploymentHealth, BackendError> {
        let dir = self.dir(name);
        let Some(record) = read_record(&dir)? else {
            return Ok(DeploymentHealth::new(Health::Down, "not deployed"));
        };
        let endpoints = match self.endpoints(&record, false).await {
            Ok(endpoints) => endpoints,
            Err(e) => return Ok(DeploymentHealth::new(Health::Down, e.to_string())),
        };
        let password = read_secret(&dir)?;
        Ok(match self.probe(&record, &endpoints[0], &password).await {
            Ok(()) => DeploymentHealth::new(
                Health::Healthy,
                format!(
                    "running on {} BOSH instance(s) of {}",
                    endpoints.len(),
                    record.deployment
                ),
            ),
            Err(e) => DeploymentHealth::new(Health::Down, e),
        })
    }
}

/// The endpoints of the instances of the record's group that have an address: the first IP,
/// or (`use_dns`) the BOSH DNS name `<id>.<group>.<network>.<deployment>.bosh`.
fn endpoints_of(
    mut instances: Vec<DirectorInstance>,
    record: &Record,
    use_dns: bool,
) -> Vec<DeploymentEndpoint> {
    instances.retain(|i| i.job == record.instance_group);
    instances.sort_by_key(|i| i.index.unwrap_or(u32::MAX));
    instances
        .into_iter()
        .filter_map(|i| {
            let host = if use_dns {
                Some(format!(
                    "{}.{}.{}.{}.bosh",
                    i.id,
                    record.instance_group.replace('_', "-"),
                    record.network.replace('_', "-"),
                    record.deployment.replace('_', "-")
                ))
            } else {
                i.ips.first().cloned()
            }?;
            Some(DeploymentEndpoint {
                host,
                port: record.port,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::deployer::Engine;

    fn instance(job: &str, index: u32, id: &str, ips: &[&str]) -> DirectorInstance {
        DirectorInstance {
            job: job.into(),
            index: Some(index),
            id: id.into(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn endpoints_are_the_groups_first_ips_or_dns_names_in_index_order() {
        let record = Record {
            engine: Engine::Postgresql,
            admin_username: "admin".into(),
            deployment: "osb-pg-1".into(),
            instance_group: "postgresql".into(),
            network: "default".into(),
            port: 5432,
            in_flight: None,
        };
        let instances = vec![
            instance("postgresql", 1, "b2", &["10.0.0.12", "10.1.0.12"]),
            instance("other", 0, "c3", &["10.0.0.13"]),
            instance("postgresql", 0, "a1", &["10.0.0.11"]),
            instance("postgresql", 2, "d4", &[]),
        ];
        let hosts = |dns| -> Vec<String> {
            endpoints_of(instances.clone(), &record, dns)
                .into_iter()
                .map(|e| format!("{}:{}", e.host, e.port))
                .collect()
        };
        assert_eq!(hosts(false), ["10.0.0.11:5432", "10.0.0.12:5432"]);
        assert_eq!(
            hosts(true),
            [
                "a1.postgresql.default.osb-pg-1.bosh:5432",
                "b2.postgresql.default.osb-pg-1.bosh:5432",
                "d4.postgresql.default.osb-pg-1.bosh:5432"
            ]
        );
    }
}
