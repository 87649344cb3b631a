//! The health of the instances' servers, as the deployer's supervision reports it: a bind to an
//! instance whose server is down is refused at once (instead of being retried until the
//! operation's deadline), last_operation and GET instance say so, and `GET /metrics` counts
//! instances by state and by the health of their server.

use super::Broker;
use crate::domain::instance::InstanceState;
use crate::error::{BrokerError, RefusalStatus};
use crate::store::models::InstanceRow;
use common::client::CallContext;
use common::deployer::{DeploymentHealth, Health};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

/// How long a request waits for the deployer's health answer before going on without it.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// What an OSB client reads about an instance whose server is not healthy.
pub fn unhealthy_description(health: &DeploymentHealth) -> String {
    match health.status {
        Health::Healthy => "the service instance's server is up".into(),
        Health::Restarting => format!(
            "the service instance's server is down and is being restarted ({}); retry later",
            health.message
        ),
        Health::Down => format!(
            "the service instance's server is down and is not being restarted ({}); ask the operator",
            health.message
        ),
    }
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Broker {
    /// The health of the instance's server; `None` when it cannot be told (no deployment yet,
    /// the deployer does not answer in time, or it is a deployer without supervision).
    pub(super) async fn server_health(
        &self,
        call: &CallContext,
        instance: &InstanceRow,
    ) -> Option<DeploymentHealth> {
        let name = instance.deployment_name.as_deref()?;
        let asked = self.journal.deployer().get_deployment(name, call);
        match tokio::time::timeout(HEALTH_TIMEOUT, asked).await {
            Ok(Ok(deployment)) => deployment.health,
            Ok(Err(e)) => {
                tracing::warn!(deployment.name = %name, error = %e, "cannot ask the deployer for the server's health");
                None
            }
            Err(_) => {
                tracing::warn!(deployment.name = %name, "the deployer did not tell the server's health in time");
                None
            }
        }
    }

    /// 422 with a description when the instance's server is known to be down.
    pub(super) async fn check_server_up(
        &self,
        call: &CallContext,
        instance: &InstanceRow,
    ) -> Result<(), BrokerError> {
        match self.server_health(call, instance).await {
            Some(health) if !health.is_healthy() => Err(BrokerError::Refused {
                status: RefusalStatus::Unprocessable,
                error: None,
                description: unhealthy_description(&health),
            }),
            _ => Ok(()),
        }
    }

    /// `GET /metrics`: Prometheus text format.
    pub async fn metrics(&self) -> Result<String, BrokerError> {
        let states = self.store.instance_states().await?;
        let owned = self.store.owned_deployments().await?;
        let call = CallContext::with_request_id(common::new_request_id());
        let listed = tokio::time::timeout(
            HEALTH_TIMEOUT,
            self.journal.deployer().list_deployments(&call),
        )
        .await;
        let deployments = match listed {
            Ok(Ok(list)) => Some(list),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: cannot list the deployer's deployments");
                None
            }
            Err(_) => None,
        };
        let health: HashMap<String, Option<DeploymentHealth>> = deployments
            .iter()
            .flatten()
            .map(|d| (d.name.to_string(), d.health.clone()))
            .collect();

        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for state in states {
            *by_state.entry(state.as_str().to_string()).or_default() += 1;
        }
        let mut by_health: BTreeMap<&str, u64> = ["healthy", "restarting", "down", "unknown"]
            .into_iter()
            .map(|h| (h, 0))
            .collect();
        let mut unhealthy = Vec::new();
        for o in owned.iter().filter(|o| o.state == InstanceState::Ready) {
            let status = match health.get(&o.deployment_name) {
                Some(Some(h)) => h.status.as_str(),
                // Not held by the deployer at all.
                None if deployments.is_some() => Health::Down.as_str(),
                _ => "unknown",
            };
            *by_health.entry(status).or_default() += 1;
            if status == "restarting" || status == "down" {
                unhealthy.push((o.instance_id.as_str(), status));
            }
        }

        let mut text = render_metrics(&by_state, &by_health, &unhealthy, deployments.is_some());
        let outbox = self.store.outbox_counts().await?;
        text.push_str(&render_outbox_metrics(&outbox));
        Ok(text)
    }
}

/// The Prometheus text of the broker's metrics: instances by state, ready instances by the
/// health of their server, one line per unhealthy one, and whether the deployer answered.
fn render_metrics(
    by_state: &BTreeMap<String, u64>,
    by_health: &BTreeMap<&str, u64>,
    unhealthy: &[(&str, &str)],
    deployer_up: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
            out,
            "# HELP osb_broker_instances Service instances (not deleted) by state.\n# TYPE osb_broker_instances gauge"
        );
    for (state, n) in by_state {
        let _ = writeln!(
            out,
            "osb_broker_instances{{state=\"{}\"}} {n}",
            label(state)
        );
    }
    let _ = writeln!(
            out,
            "# HELP osb_broker_ready_instances_by_health Ready service instances by the health of their server (unknown: the deployer did not say).\n# TYPE osb_broker_ready_instances_by_health gauge"
        );
    for (status, n) in by_health {
        let _ = writeln!(
            out,
            "osb_broker_ready_instances_by_health{{health=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
            out,
            "# HELP osb_broker_instance_server_unhealthy A ready service instance whose server is restarting or down.\n# TYPE osb_broker_instance_server_unhealthy gauge"
        );
    for (id, status) in unhealthy {
        let _ = writeln!(
            out,
            "osb_broker_instance_server_unhealthy{{instance_id=\"{}\",health=\"{status}\"}} 1",
            label(id)
        );
    }
    let _ = writeln!(
            out,
            "# HELP osb_broker_deployer_up Whether the deployer answered the health query.\n# TYPE osb_broker_deployer_up gauge\nosb_broker_deployer_up {}",
            u8::from(deployer_up)
        );
    out
}

/// The Prometheus text of the webhook outbox: events per endpoint and delivery state
/// (`pending`, `delivered`, `dead`), as the database holds them for every broker.
fn render_outbox_metrics(counts: &[(String, String, i64)]) -> String {
    let mut out = String::from(
        "# HELP osb_broker_webhook_events Webhook events in the outbox by endpoint and delivery state (dead: dead letters).\n# TYPE osb_broker_webhook_events gauge\n",
    );
    for (endpoint, state, n) in counts {
        let _ = writeln!(
            out,
            "osb_broker_webhook_events{{endpoint=\"{}\",state=\"{}\"}} {n}",
            label(endpoint),
            label(state)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_description_says_whether_the_server_comes_back() {
        let restarting = DeploymentHealth::new(Health::Restarting, "restart 1 of at most 5");
        let d = unhealthy_description(&restarting);
        assert!(d.contains("down and is being restarted"), "{d}");
        assert!(d.contains("restart 1 of at most 5"), "{d}");
        let down = DeploymentHealth::new(Health::Down, "crash loop");
        assert!(unhealthy_description(&down).contains("not being restarted"));
    }

    #[test]
    fn metrics_render_every_family_with_its_help_and_escaped_labels() {
        let by_state = BTreeMap::from([("ready".to_string(), 2), ("failed".to_string(), 1)]);
        let by_health = BTreeMap::from([("healthy", 1), ("down", 1)]);
        let text = render_metrics(&by_state, &by_health, &[("i\"1", "down")], false);
        for line in [
            "# TYPE osb_broker_instances gauge",
            "osb_broker_instances{state=\"failed\"} 1",
            "osb_broker_instances{state=\"ready\"} 2",
            "osb_broker_ready_instances_by_health{health=\"down\"} 1",
            "osb_broker_instance_server_unhealthy{instance_id=\"i\\\"1\",health=\"down\"} 1",
            "osb_broker_deployer_up 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }

    #[test]
    fn outbox_metrics_have_one_line_per_endpoint_and_state() {
        let text = render_outbox_metrics(&[
            ("audit".into(), "dead".into(), 2),
            ("audit".into(), "delivered".into(), 7),
        ]);
        assert!(text.contains("# TYPE osb_broker_webhook_events gauge"));
        assert!(text
            .lines()
            .any(|l| l == "osb_broker_webhook_events{endpoint=\"audit\",state=\"dead\"} 2"));
        assert!(text
            .lines()
            .any(|l| l == "osb_broker_webhook_events{endpoint=\"audit\",state=\"delivered\"} 7"));
    }
}
