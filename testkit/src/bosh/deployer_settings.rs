//! The deployer's `[bosh]` section for a fake Director, as the deployer's and the end-to-end
//! tests configure it.

use super::FakeDirector;
use common::secret::SecretString;
use deployer::config::bosh::{BoshSettings, ManifestTemplate, ReleaseRef, StemcellRef};
use std::collections::BTreeMap;

impl FakeDirector {
    /// The `[bosh]` section for this Director: its CA, the client with the secret in a file,
    /// polls every 50 ms, and templates of one VM each for PostgreSQL 15 (plans `small` and
    /// `medium`) and Redis 7 (every plan: `default`).
    pub fn deployer_settings(&self) -> BoshSettings {
        let (client, _) = self.credentials();
        let mut s = BoshSettings::new(
            &self.url(),
            self.ca_file(),
            &client,
            SecretString::default(),
        );
        s.client_secret = None;
        s.client_secret_file = Some(self.secret_file().to_path_buf());
        s.poll_interval_ms = 50;
        s.templates = BTreeMap::from([
            (
                "postgresql-15".to_string(),
                BTreeMap::from([
                    ("small".to_string(), one_vm("postgres", "small")),
                    ("medium".to_string(), one_vm("postgres", "medium")),
                ]),
            ),
            (
                "redis-7".to_string(),
                BTreeMap::from([("default".to_string(), one_vm("redis", "small"))]),
            ),
        ]);
        s
    }
}

/// A template of one VM of `vm_type` from the latest `release`.
pub fn one_vm(release: &str, vm_type: &str) -> ManifestTemplate {
    ManifestTemplate {
        releases: vec![ReleaseRef {
            name: release.into(),
            version: "latest".into(),
        }],
        stemcell: StemcellRef {
            os: "ubuntu-noble".into(),
            version: "latest".into(),
        },
        vm_type: vm_type.into(),
        persistent_disk_type: "10GB".into(),
        networks: vec!["default".into()],
        azs: vec!["z1".into()],
        instances: 1,
        job: None,
        job_release: None,
        port: None,
    }
}
