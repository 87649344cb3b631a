//! Snapshots of the broker↔deployer contract (`common::deployer`).

use super::support::check;
use common::deployer::*;
use common::secret::SecretString;
use std::collections::BTreeMap;

/// A fully populated admin account (also used by the SPI binding requests).
pub fn admin() -> AdminCredentials {
    AdminCredentials {
        username: "admin".into(),
        password: SecretString::new("admin-password"),
    }
}

/// A fully populated deployment spec (also used by the SPI deployment-spec bodies).
pub fn spec() -> DeploymentSpec {
    DeploymentSpec {
        name: "pg-i-1".into(),
        engine: Engine::Postgresql,
        version: "15".into(),
        settings: BTreeMap::from([("max_connections".into(), "50".into())]),
        admin: admin(),
        labels: BTreeMap::from([(OWNER_LABEL.into(), "i-1".into())]),
    }
}

/// A fully populated deployment endpoint (also used by the SPI binding requests).
pub fn endpoint() -> DeploymentEndpoint {
    DeploymentEndpoint {
        host: "127.0.0.1".into(),
        port: 5432,
    }
}

fn health() -> DeploymentHealth {
    DeploymentHealth::new(Health::Restarting, "restarted after it exited (1 restart)")
}

#[test]
fn engines_keep_their_spelling() {
    let engines = vec![Engine::Postgresql, Engine::Redis];
    for engine in &engines {
        // A new engine fails to compile here until it is added to the snapshot.
        match engine {
            Engine::Postgresql | Engine::Redis => {}
        }
    }
    check("deployer/engine", &engines);
}

#[test]
fn admin_credentials_keep_their_wire_form() {
    check("deployer/admin_credentials", &admin());
}

#[test]
fn a_deployment_spec_keeps_its_wire_form() {
    check("deployer/deployment_spec", &spec());
}

#[test]
fn deployment_states_keep_their_spelling() {
    use DeploymentState::*;
    let states = vec![Pending, Running, Stopped, Failed, Deleting];
    for state in &states {
        // A new state fails to compile here until it is added to the snapshot.
        match state {
            Pending | Running | Stopped | Failed | Deleting => {}
        }
    }
    check("deployer/deployment_state", &states);
}

#[test]
fn health_statuses_keep_their_spelling() {
    let statuses = vec![Health::Healthy, Health::Restarting, Health::Down];
    for status in &statuses {
        // A new status fails to compile here until it is added to the snapshot.
        match status {
            Health::Healthy | Health::Restarting | Health::Down => {}
        }
        assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
    }
    check("deployer/health", &statuses);
}

#[test]
fn a_deployment_health_keeps_its_wire_form() {
    check("deployer/deployment_health", &health());
}

#[test]
fn a_deployment_endpoint_keeps_its_wire_form() {
    check("deployer/deployment_endpoint", &endpoint());
}

#[test]
fn a_deployment_keeps_its_wire_form() {
    check(
        "deployer/deployment",
        &Deployment {
            name: "pg-i-1".into(),
            engine: Engine::Postgresql,
            state: DeploymentState::Running,
            endpoints: vec![endpoint()],
            labels: BTreeMap::from([(OWNER_LABEL.into(), "i-1".into())]),
            health: Some(health()),
        },
    );
}

#[test]
fn task_actions_keep_their_spelling() {
    let actions = vec![TaskAction::Apply, TaskAction::Delete];
    for action in &actions {
        // A new action fails to compile here until it is added to the snapshot.
        match action {
            TaskAction::Apply | TaskAction::Delete => {}
        }
    }
    check("deployer/task_action", &actions);
}

#[test]
fn task_states_keep_their_spelling() {
    use TaskState::*;
    let states = vec![Queued, Running, Succeeded, Failed];
    for state in &states {
        // A new state fails to compile here until it is added to the snapshot.
        match state {
            Queued | Running | Succeeded | Failed => {}
        }
    }
    check("deployer/task_state", &states);
}

#[test]
fn a_task_keeps_its_wire_form() {
    check(
        "deployer/task",
        &Task {
            id: "task-1".into(),
            deployment: "pg-i-1".into(),
            action: TaskAction::Apply,
            state: TaskState::Failed,
            progress: "starting server".into(),
            error: Some("the server did not start".into()),
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_001_000,
        },
    );
}
