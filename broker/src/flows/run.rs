//! Running one flow guarded: in its own task (so a panic is caught as the task's `JoinError`),
//! abandoned after the registry's timeout, and logged with the request id when it fails. A
//! flow's failure never reaches the operation it observes.

use super::registry::{BoxFuture, CompletionFn, ErrorFn};
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

/// Runs one completion flow guarded (logged when it fails).
pub(super) async fn run_completion(
    timeout: Duration,
    (name, run): (&str, &Arc<CompletionFn>),
    request: &FlowRequest,
    response: &FlowResponse,
) {
    let run = Arc::clone(run);
    let (given, answer) = (request.clone(), response.clone());
    let why = match guarded(timeout, move || run(given, answer)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("failed: {e:#}"),
        Err(why) => why,
    };
    log_failure(
        "completion",
        request.kind.as_str(),
        name,
        &request.request_id,
        &why,
    );
}

/// Runs one error flow guarded (logged when it fails).
pub(super) async fn run_error(
    timeout: Duration,
    (name, run): (&str, &Arc<ErrorFn>),
    request: &FlowRequest,
    error: &FlowError,
) {
    let run = Arc::clone(run);
    let (given, failure) = (request.clone(), error.clone());
    let why = match guarded(timeout, move || run(given, failure)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("failed: {e:#}"),
        Err(why) => why,
    };
    log_failure(
        "error",
        request.kind.as_str(),
        name,
        &request.request_id,
        &why,
    );
}

impl FlowRegistry {
    /// Runs the completion flows of `request.kind` with `response`, in registration order.
    pub(crate) async fn completed(&self, request: &FlowRequest, response: &FlowResponse) {
        for flow in self.completion_of(request.kind) {
            run_completion(self.timeout(), (&flow.name, &flow.run), request, response).await;
        }
    }

    /// Runs the error flows of `request.kind` with `error`, in registration order.
    pub(crate) async fn failed(&self, request: &FlowRequest, error: &FlowError) {
        for flow in self.error_of(request.kind) {
            run_error(self.timeout(), (&flow.name, &flow.run), request, error).await;
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

    #[test]
    fn a_failing_init_flow_is_logged_with_the_request_id_and_the_next_one_still_runs() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
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
        let ctx = RequestContext {
            request_id: "req-42".into(),
            originating_identity: None,
            tracing_id: None,
        };
        let request = FlowRequest::new(FlowKind::Bind, &ctx, "i1", Some("b1"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(run_init_flows(&registry, &request))
        });
        assert_eq!(result, Ok(()));
        assert_eq!(*ran.lock().unwrap(), ["req-42"]);
        let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("initialization flow \"audit\" (bind) failed: audit store down")
                && log.contains("request.id=\"req-42\""),
            "{log}"
        );
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
