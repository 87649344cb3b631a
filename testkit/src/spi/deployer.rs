//! The real deployer (process backend) beside an SPI under test, so that bindings are tested
//! against real servers made from the SPI's own deployment specs.

use super::ctx;
use actix_web::dev::ServerHandle;
use common::client::InternalClient;
use common::deployer::{DeployerClient, Deployment, DeploymentSpec, Task, TaskState};
use common::tls::TlsFiles;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// How long a deployment may take before the test fails.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(120);

/// The real deployer on port 0 with a certificate from the test's CA, whose data lives in a
/// temp dir. On drop it stops, and so does every server it started, even when the test failed:
/// servers outlive the deployer otherwise.
pub struct TestDeployer {
    /// Typed client presenting the broker's certificate.
    pub client: DeployerClient,
    handle: ServerHandle,
    // Removed after `drop` has stopped the servers living in it.
    data: TempDir,
}

impl TestDeployer {
    /// Applies `spec`, waits for its task to succeed and returns the running deployment.
    pub async fn deploy(&self, spec: &DeploymentSpec) -> Deployment {
        let task = self.client.put_deployment(spec, &ctx()).await.unwrap();
        let task = wait_for_task(&self.client, task).await;
        assert_eq!(task.state, TaskState::Succeeded, "apply failed: {task:?}");
        self.client
            .get_deployment(&spec.name, &ctx())
            .await
            .unwrap()
    }
}

async fn wait_for_task(client: &DeployerClient, mut task: Task) -> Task {
    let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
    while !task.state.is_terminal() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "task still {:?} after {TASK_TIMEOUT:?}: {}",
            task.state,
            task.progress
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        task = client.get_task(&task.id, &ctx()).await.unwrap();
    }
    task
}

impl Drop for TestDeployer {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
        ::deployer::stop_all_servers(self.data.path());
    }
}

/// Starts the deployer with the certificates in `cert_dir`.
pub async fn spawn_deployer(cert_dir: &Path) -> TestDeployer {
    let data = tempfile::tempdir().unwrap();
    let settings = ::deployer::config::Settings::new(
        data.path().to_path_buf(),
        TlsFiles::in_dir(cert_dir, "deployer"),
    );
    let app = ::deployer::startup::Application::build(settings)
        .await
        .expect("deployer build failed");
    let address = format!("https://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    tokio::spawn(app.run_until_stopped());
    let broker = TlsFiles::in_dir(cert_dir, "broker");
    let client = DeployerClient::new(
        InternalClient::new(&address, &broker, Duration::from_secs(60)).unwrap(),
    );
    TestDeployer {
        client,
        handle,
        data,
    }
}
