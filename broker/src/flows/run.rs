//! Running one flow guarded: in its own task (so a panic is caught as the task's `JoinError`),
//! abandoned after the registry's timeout, and logged with the request id when it fails. A
//! flow's failure never reaches the operation it observes.

use super::registry::{BoxFuture, ObserverFn, Registered};
use super::{FlowError, FlowRefusal, FlowRegistry, FlowRequest, FlowResponse, InitError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Runs the future `start` makes in its own task for at most `timeout`; `Err` says why it did
/// not finish (panicked, timed out).
async fn guarded<T: Send + 'static>(
    timeout: Duration,
    start: impl FnOnce() -> BoxFuture<T>,
) -> Result<T, String> {
    // Building the future runs the flow's own code too, which may panic before any await.
    let future = catch_unwind(AssertUnwindSafe(start))
        .map_err(|_| "panicked before it started".to_string())?;
    let mut task = AbortOnDrop(tokio::spawn(future));
    match tokio::time::timeout(timeout, &mut task.0).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) if e.is_panic() => Err("panicked".into()),
        Ok(Err(e)) => Err(format!("was stopped: {e}")),
        Err(_) => Err(format!("did not finish within {} ms", timeout.as_millis())),
    }
}

/// Aborts a flow's task when whoever waits for it stops waiting (timeout, broker stopping).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The one log line of a flow that failed, panicked or timed out.
fn log_failure(registry: &str, kind: &str, name: &str, request_id: &str, why: &str) {
    tracing::warn!(
        request.id = request_id,
        flow.kind = kind,
        flow.name = name,
        "{registry} flow {name:?} ({kind}) {why}; the operation goes on as if it had passed"
    );
}

/// Runs the initialization flows of `request.kind` in registration order; the first refusal
/// stops them and is returned. Flows that fail, panic or time out are logged and passed over.
pub(crate) async fn run_init_flows(
    registry: &FlowRegistry,
    request: &FlowRequest,
) -> Result<(), FlowRefusal> {
    let kind = request.kind.as_str();
    for flow in registry.init_of(request.kind) {
        let run = Arc::clone(&flow.run);
        let given = request.clone();
        match guarded(registry.timeout(), move || run(given)).await {
            Ok(Ok(())) => {}
            Ok(Err(InitError::Refuse(refusal))) => {
                tracing::info!(
                    request.id = %request.request_id,
                    flow.kind = kind,
                    flow.name = %flow.name,
                    status = refusal.answered_status(),
                    description = %refusal.description,
                    "initialization flow refused the request"
                );
                return Err(refusal);
            }
            Ok(Err(InitError::Failed(e))) => log_failure(
                "initialization",
                kind,
                &flow.name,
                &request.request_id,
                &format!("failed: {e:#}"),
            ),
            Err(why) => log_failure(
                "initialization",
                kind,
                &flow.name,
                &request.request_id,
                &why,
            ),
        }
    }
    Ok(())
}

/// Runs the completion or error flow `flow` (of the registry named `registry`, for the log)
/// guarded, with the request and what became of it; logged when it fails.
pub(super) async fn run_observer<A: Clone + Send + 'static>(
    timeout: Duration,
    registry: &str,
    flow: &Registered<ObserverFn<A>>,
    request: &FlowRequest,
    outcome: &A,
) {
    let run = Arc::clone(&flow.run);
    let (given, outcome) = (request.clone(), outcome.clone());
    let why = match guarded(timeout, move || run(given, outcome)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("failed: {e:#}"),
        Err(why) => why,
    };
    log_failure(
        registry,
        request.kind.as_str(),
        &flow.name,
        &request.request_id,
        &why,
    );
}

impl FlowRegistry {
    /// Runs the completion flows of `request.kind` with `response`, in registration order.
    pub(crate) async fn completed(&self, request: &FlowRequest, response: &FlowResponse) {
        for flow in self.completion_of(request.kind) {
            run_observer(self.timeout(), "completion", flow, request, response).await;
        }
    }

    /// Runs the error flows of `request.kind` with `error`, in registration order.
    pub(crate) async fn failed(&self, request: &FlowRequest, error: &FlowError) {
        for flow in self.error_of(request.kind) {
            run_observer(self.timeout(), "error", flow, request, error).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::FlowKind;
    use crate::service::RequestContext;
    use std::sync::Mutex;

    /// A log sink the test reads.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `future` on a runtime of its own with a log subscriber; its value and the log.
    fn logged<T>(future: impl std::future::Future<Output = T>) -> (T, String) {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let value = tracing::subscriber::with_default(subscriber, || runtime.block_on(future));
        let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        (value, log)
    }

    fn request(kind: FlowKind, request_id: &str) -> FlowRequest {
        let ctx = RequestContext {
            request_id: request_id.into(),
            originating_identity: None,
            tracing_id: None,
        };
        FlowRequest::new(kind, &ctx, "i1", Some("b1"))
    }

    #[test]
    fn a_failing_init_flow_is_logged_with_the_request_id_and_the_next_one_still_runs() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let second = Arc::clone(&ran);
        let registry = FlowRegistry::new()
            .on_init(FlowKind::Bind, "audit", |_| async {
                Err(anyhow::anyhow!("audit store down").into())
            })
            .on_init(FlowKind::Bind, "count", move |request| {
                let ran = Arc::clone(&second);
                async move {
                    ran.lock().unwrap().push(request.request_id);
                    Ok(())
                }
            });
        let request = request(FlowKind::Bind, "req-42");
        let (result, log) = logged(run_init_flows(&registry, &request));
        assert_eq!(result, Ok(()));
        assert_eq!(*ran.lock().unwrap(), ["req-42"]);
        assert!(
            log.contains("initialization flow \"audit\" (bind) failed: audit store down")
                && log.contains("request.id=\"req-42\""),
            "{log}"
        );
    }

    #[test]
    fn completion_and_error_flows_that_panic_or_time_out_are_logged_and_the_next_ones_run() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (after_completion, after_error) = (Arc::clone(&ran), Arc::clone(&ran));
        let registry = FlowRegistry::new()
            .with_timeout(Duration::from_millis(50))
            .on_completion(FlowKind::Unbind, "slow", |_, _| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .on_completion(FlowKind::Unbind, "after", move |_, response| {
                let ran = Arc::clone(&after_completion);
                async move {
                    ran.lock().unwrap().push(response.description.unwrap());
                    Ok(())
                }
            })
            .on_error(FlowKind::Unbind, "bug", |_, _| async { panic!("flow bug") })
            .on_error(FlowKind::Unbind, "after", move |_, error| {
                let ran = Arc::clone(&after_error);
                async move {
                    ran.lock().unwrap().push(error.description);
                    Ok(())
                }
            });
        let request = request(FlowKind::Unbind, "req-7");
        let response = FlowResponse {
            state: common::osb::OperationState::Succeeded,
            description: Some("done".into()),
        };
        let error = FlowError {
            status: None,
            description: "broke".into(),
        };
        let ((), log) = logged(async {
            registry.completed(&request, &response).await;
            registry.failed(&request, &error).await;
        });
        assert_eq!(*ran.lock().unwrap(), ["done", "broke"]);
        for line in [
            "completion flow \"slow\" (unbind) did not finish within 50 ms",
            "error flow \"bug\" (unbind) panicked",
        ] {
            let found = log.lines().find(|l| l.contains(line));
            assert!(
                found.is_some_and(|l| l.contains("request.id=\"req-7\"")),
                "{line}: {log}"
            );
        }
    }

    #[tokio::test]
    async fn a_guarded_flow_reports_its_value_a_panic_and_a_timeout() {
        let short = Duration::from_millis(50);
        assert_eq!(guarded(short, || Box::pin(async { 7 })).await, Ok(7));
        let panicked = guarded::<()>(short, || Box::pin(async { panic!("flow bug") })).await;
        assert_eq!(panicked, Err("panicked".to_string()));
        let early = guarded::<()>(short, || panic!("before the future")).await;
        assert_eq!(early, Err("panicked before it started".to_string()));
        let slow = guarded(short, || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                1
            })
        })
        .await;
        assert_eq!(slow, Err("did not finish within 50 ms".to_string()));
    }
}
