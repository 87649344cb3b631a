//! The three registries (initialization, completion, error) and the flows' timeout.

use super::{FlowError, FlowKind, FlowRequest, FlowResponse, InitError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A flow's future, boxed.
pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An initialization flow.
pub(super) type InitFn = dyn Fn(FlowRequest) -> BoxFuture<Result<(), InitError>> + Send + Sync;
/// A flow that observes a request and what became of it (`A`): a completion or error flow.
pub(super) type ObserverFn<A> =
    dyn Fn(FlowRequest, A) -> BoxFuture<anyhow::Result<()>> + Send + Sync;
/// A completion flow.
pub(super) type CompletionFn = ObserverFn<FlowResponse>;
/// An error flow.
pub(super) type ErrorFn = ObserverFn<FlowError>;

/// A registered flow: its name (for the log) and its function.
pub(super) struct Registered<F: ?Sized> {
    pub(super) name: String,
    pub(super) kind: FlowKind,
    pub(super) run: Arc<F>,
}

/// How long one flow may run unless [`FlowRegistry::with_timeout`] says otherwise.
pub const DEFAULT_FLOW_TIMEOUT: Duration = Duration::from_secs(10);

/// The flows of a broker: per [`FlowKind`], initialization, completion and error flows, each
/// list run in registration order. Build it once and hand it to
/// [`crate::startup::Application::builder`]; every broker sharing a database should register
/// the same flows (any of them may end an operation another one accepted).
///
/// ```
/// use broker::flows::{FlowKind, FlowRefusal, FlowRegistry};
///
/// let flows = FlowRegistry::new()
///     .on_init(FlowKind::Provision, "no-test-plans", |request| async move {
///         if request.plan_id.as_deref() == Some("test") {
///             return Err(FlowRefusal::new(403, "the test plan is closed").into());
///         }
///         Ok(())
///     })
///     .on_completion(FlowKind::Provision, "audit", |request, response| async move {
///         println!("{} {:?}", request.instance_id, response.state);
///         Ok(())
///     });
/// assert_eq!(flows.len(), 2);
/// ```
pub struct FlowRegistry {
    timeout: Duration,
    pub(super) init: Vec<Registered<InitFn>>,
    pub(super) completion: Vec<Registered<CompletionFn>>,
    pub(super) error: Vec<Registered<ErrorFn>>,
}

impl Default for FlowRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FlowRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn names<F: ?Sized>(list: &[Registered<F>]) -> String {
            let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
            names.join(", ")
        }
        f.debug_struct("FlowRegistry")
            .field("timeout", &self.timeout)
            .field("init", &names(&self.init))
            .field("completion", &names(&self.completion))
            .field("error", &names(&self.error))
            .finish()
    }
}

impl FlowRegistry {
    /// No flows; each flow may run [`DEFAULT_FLOW_TIMEOUT`].
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_FLOW_TIMEOUT,
            init: Vec::new(),
            completion: Vec::new(),
            error: Vec::new(),
        }
    }

    /// How long one flow may run before it is abandoned (and logged).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time one flow may run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many flows are registered, in all three registries.
    pub fn len(&self) -> usize {
        self.init.len() + self.completion.len() + self.error.len()
    }

    /// Whether no flow is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers an initialization flow for `kind`, run before the request's operation is
    /// stored; `Err(InitError::Refuse(..))` refuses the request.
    pub fn on_init<F, Fut>(mut self, kind: FlowKind, name: impl Into<String>, flow: F) -> Self
    where
        F: Fn(FlowRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), InitError>> + Send + 'static,
    {
        self.init.push(Registered {
            name: name.into(),
            kind,
            run: Arc::new(move |request| Box::pin(flow(request))),
        });
        self
    }

    /// Registers a completion flow for `kind`, run once the operation succeeded (for
    /// last_operation: with each answer).
    pub fn on_completion<F, Fut>(mut self, kind: FlowKind, name: impl Into<String>, flow: F) -> Self
    where
        F: Fn(FlowRequest, FlowResponse) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.completion.push(Registered {
            name: name.into(),
            kind,
            run: Arc::new(move |request, response| Box::pin(flow(request, response))),
        });
        self
    }

    /// Registers an error flow for `kind`, run once the operation failed (for last_operation:
    /// with each 4xx or 5xx answer).
    pub fn on_error<F, Fut>(mut self, kind: FlowKind, name: impl Into<String>, flow: F) -> Self
    where
        F: Fn(FlowRequest, FlowError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.error.push(Registered {
            name: name.into(),
            kind,
            run: Arc::new(move |request, error| Box::pin(flow(request, error))),
        });
        self
    }

    /// The initialization flows of `kind`, in registration order.
    pub(super) fn init_of(&self, kind: FlowKind) -> impl Iterator<Item = &Registered<InitFn>> {
        self.init.iter().filter(move |r| r.kind == kind)
    }

    /// The completion flows of `kind`, in registration order.
    pub(super) fn completion_of(
        &self,
        kind: FlowKind,
    ) -> impl Iterator<Item = &Registered<CompletionFn>> {
        self.completion.iter().filter(move |r| r.kind == kind)
    }

    /// The error flows of `kind`, in registration order.
    pub(super) fn error_of(&self, kind: FlowKind) -> impl Iterator<Item = &Registered<ErrorFn>> {
        self.error.iter().filter(move |r| r.kind == kind)
    }

    /// Whether an initialization flow is registered for `kind`.
    pub fn has_init(&self, kind: FlowKind) -> bool {
        self.init_of(kind).next().is_some()
    }

    /// Whether an operation of `kind` owes flows when it ends (a completion or an error flow
    /// is registered for it).
    pub fn observes_end_of(&self, kind: FlowKind) -> bool {
        self.completion_of(kind).next().is_some() || self.error_of(kind).next().is_some()
    }
}
