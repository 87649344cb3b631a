//! The docker backend's health report: read from the container's state. The engine itself
//! restarts a container whose server dies (restart policy `unless-stopped`, with the engine's
//! own doubling pause, up to a minute), so a dead server shows as `restarting` until it is back.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use common::deployer::{DeploymentHealth, Health};

/// The health of a deployment whose container is `container` (`None`: there is none).
pub(super) fn health_of(container: Option<&ContainerInspectResponse>) -> DeploymentHealth {
    let Some(container) = container else {
        return DeploymentHealth::new(Health::Down, "the server's container is missing");
    };
    let restarts = container.restart_count.unwrap_or(0);
    let Some(state) = &container.state else {
        return DeploymentHealth::new(Health::Down, "the container reports no state");
    };
    let exit = match (state.exit_code, state.oom_killed) {
        (_, Some(true)) => "killed for lack of memory".to_string(),
        (Some(code), _) => format!("exit code {code}"),
        (None, _) => "no exit code".to_string(),
    };
    if state.restarting == Some(true) || state.status == Some(ContainerStateStatusEnum::RESTARTING)
    {
        return DeploymentHealth::new(
            Health::Restarting,
            format!(
                "the server died ({exit}) and the engine is restarting its container ({restarts} restart(s) so far)"
            ),
        );
    }
    if state.running == Some(true) && state.paused != Some(true) {
        let message = if restarts > 0 {
            format!("running; the engine restarted its container {restarts} time(s)")
        } else {
            "running".to_string()
        };
        return DeploymentHealth::new(Health::Healthy, message);
    }
    let status = state
        .status
        .map_or_else(|| "not running".to_string(), |s| s.to_string());
    DeploymentHealth::new(
        Health::Down,
        format!("the server's container is {status} ({exit}); apply the deployment again or restart the deployer to start it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerState;

    fn container(state: ContainerState, restarts: i64) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(state),
            restart_count: Some(restarts),
            ..Default::default()
        }
    }

    #[test]
    fn container_states_map_to_healthy_restarting_and_down() {
        let running = container(
            ContainerState {
                running: Some(true),
                status: Some(ContainerStateStatusEnum::RUNNING),
                ..Default::default()
            },
            2,
        );
        let h = health_of(Some(&running));
        assert_eq!(h.status, Health::Healthy);
        assert!(h.message.contains("2 time(s)"), "{}", h.message);

        let restarting = container(
            ContainerState {
                restarting: Some(true),
                exit_code: Some(137),
                status: Some(ContainerStateStatusEnum::RESTARTING),
                ..Default::default()
            },
            3,
        );
        let h = health_of(Some(&restarting));
        assert_eq!(h.status, Health::Restarting);
        assert!(h.message.contains("exit code 137"), "{}", h.message);

        let exited = container(
            ContainerState {
                running: Some(false),
                exit_code: Some(1),
                status: Some(ContainerStateStatusEnum::EXITED),
                ..Default::default()
            },
            0,
        );
        assert_eq!(health_of(Some(&exited)).status, Health::Down);
        assert_eq!(health_of(None).status, Health::Down);
    }
}
