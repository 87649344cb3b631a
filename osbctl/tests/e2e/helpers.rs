//! Test helpers: a stack in a temporary directory that kills its database servers on drop.

use osbctl::stack::{Stack, StackOptions};
use std::path::{Path, PathBuf};

/// A running stack plus its temporary directory.
pub struct TestStack {
    pub stack: Option<Stack>,
    /// Set: the deployer runs the docker backend with these settings.
    pub docker: Option<deployer::config::DockerSettings>,
    /// Kept so the directory lives as long as the stack.
    pub _dir: tempfile::TempDir,
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A stack whose deployer runs the docker backend with `docker` when it is set.
    pub async fn start_with(docker: Option<deployer::config::DockerSettings>) -> Self {
        Self::start_options(docker, None).await
    }

    /// A stack whose deployer runs the bosh backend with `bosh`.
    pub async fn start_bosh(bosh: deployer::config::BoshSettings) -> Self {
        Self::start_options(None, Some(bosh)).await
    }

    async fn start_options(
        docker: Option<deployer::config::DockerSettings>,
        bosh: Option<deployer::config::BoshSettings>,
    ) -> Self {
        common::tls::install_default_provider();
        let dir = tempfile::Builder::new()
            .prefix("osb-e2e-")
            .tempdir_in("/tmp")
            .unwrap();
        // The broker looks at a deployer task every 200 ms, so a progress text stays visible at
        // least that long even where a Redis server starts in a few milliseconds; tests that
        // check what a person sees poll faster than that.
        let stack = Stack::start(StackOptions {
            poll_interval_ms: 200,
            docker: docker.clone(),
            bosh,
            ..StackOptions::new(dir.path().join("data"))
        })
        .await
        .expect("stack starts");
        Self {
            stack: Some(stack),
            docker,
            _dir: dir,
        }
    }

    pub fn stack(&self) -> &Stack {
        self.stack.as_ref().unwrap()
    }

    /// The deployments the stack's deployer knows.
    pub async fn deployments(&self) -> Vec<common::deployer::Deployment> {
        self.stack()
            .deployer_client()
            .unwrap()
            .list_deployments(&Default::default())
            .await
            .unwrap()
    }

    pub fn deployments_dir(&self) -> PathBuf {
        self.stack().layout.deployer().join("deployments")
    }
}

/// The postmaster pid of a PostgreSQL data directory, if it is running.
pub fn postmaster_pid(pgdata: &Path) -> Option<u32> {
    std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // A failed test must not leave database servers behind.
        if let Some(docker) = &self.docker {
            testkit::docker::remove_all(&docker.name_prefix);
        } else if let Some(stack) = &self.stack {
            deployer::stop_all_servers(&stack.layout.deployer());
        }
    }
}
