//! A broker with event flows: one audit line per operation, naming who asked for it.
//!
//! Run: `cargo run -p broker --example audit_flow -- broker.toml` (the same configuration as
//! the `broker` binary). Every provision, update, deprovision, bind and unbind is written to
//! the log when it is accepted, when it succeeded and when it failed, with the originating
//! identity and the request's `tracing_id`; provisions of a plan named in `AUDIT_CLOSED_PLAN`
//! are refused with 403 before anything is stored.

use broker::config::Settings;
use broker::flows::{FlowKind, FlowRefusal, FlowRegistry, FlowRequest};
use broker::startup::Application;
use std::time::Duration;

/// Who asked, as the audit line shows it.
fn who(request: &FlowRequest) -> String {
    request
        .originating_identity
        .as_ref()
        .map(|id| format!("{}:{}", id.platform, id.user))
        .unwrap_or_else(|| "unknown".into())
}

/// The audit flows: for each operation kind an initialization, a completion and an error flow.
fn audit_flows(closed_plan: Option<String>) -> FlowRegistry {
    let mut flows = FlowRegistry::new().with_timeout(Duration::from_secs(5));
    for kind in FlowKind::ALL {
        if kind == FlowKind::LastOperation {
            continue;
        }
        flows = flows
            .on_init(kind, "audit-accepted", |request| async move {
                tracing::info!(
                    target: "audit",
                    kind = request.kind.as_str(),
                    instance = %request.instance_id,
                    binding = request.binding_id.as_deref(),
                    who = %who(&request),
                    tracing_id = request.tracing_id.as_deref(),
                    request_id = %request.request_id,
                    "accepted"
                );
                Ok(())
            })
            .on_completion(kind, "audit-succeeded", |request, response| async move {
                tracing::info!(
                    target: "audit",
                    kind = request.kind.as_str(),
                    instance = %request.instance_id,
                    operation = request.operation.as_deref(),
                    who = %who(&request),
                    description = response.description.as_deref(),
                    "succeeded"
                );
                Ok(())
            })
            .on_error(kind, "audit-failed", |request, error| async move {
                tracing::warn!(
                    target: "audit",
                    kind = request.kind.as_str(),
                    instance = %request.instance_id,
                    operation = request.operation.as_deref(),
                    who = %who(&request),
                    status = error.status,
                    description = %error.description,
                    "failed"
                );
                Ok(())
            });
    }
    flows.on_init(FlowKind::Provision, "closed-plan", move |request| {
        let closed = closed_plan.clone();
        async move {
            if closed.is_some() && request.plan_id == closed {
                return Err(FlowRefusal::new(403, "this plan takes no new instances").into());
            }
            Ok(())
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::tls::install_default_provider();
    let file = std::env::args().nth(1).map(std::path::PathBuf::from);
    let settings = Settings::load(file.as_deref())?;
    common::telemetry::init(settings.log_format, "info");
    let flows = audit_flows(std::env::var("AUDIT_CLOSED_PLAN").ok());
    let app = Application::builder(settings).flows(flows).build().await?;
    let stopper = app.stopper();
    tokio::spawn(async move {
        common::shutdown_signal().await;
        stopper.stop().await;
    });
    app.run_until_stopped().await
}
