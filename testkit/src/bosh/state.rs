//! What the fake Director holds: its tasks, its deployments with their instances (VMs), the
//! manifests and requests it received, the UAA tokens it issued, and the knobs; shared by
//! the HTTP handlers (on actix's worker threads) and the task runner (on the runtime the fake
//! was started on).

use super::auth::AuthConfig;
use super::knobs::{lock, Knobs};
use super::tasks::{Task, TaskState};
use super::vms::{IpBlock, Vm};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One request as the fake received it (the `Authorization` value redacted).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The status it was answered with; `None` while (or if never) answered.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One instance of an instance group and its VM.
#[derive(Clone)]
pub(crate) struct Instance {
    pub group: String,
    pub index: usize,
    pub vm: Arc<Vm>,
}

/// A deployment: the manifest last deployed successfully and its instances.
#[derive(Clone, Default)]
pub(crate) struct Deployment {
    pub manifest: Option<String>,
    pub instances: Vec<Instance>,
}

#[derive(Default)]
struct Records {
    next_task: u64,
    tasks: BTreeMap<u64, Task>,
    deployments: BTreeMap<String, Deployment>,
    requests: Vec<RecordedRequest>,
    manifests: Vec<String>,
}

/// The fake Director's state.
pub(crate) struct Director {
    /// `https://127.0.0.1:<port>`, once bound.
    pub base_url: OnceLock<String>,
    /// Who may call it.
    pub auth: AuthConfig,
    /// Issued UAA tokens and when they expire.
    pub tokens: Mutex<HashMap<String, Instant>>,
    /// Test knobs.
    pub knobs: Knobs,
    /// The VMs' IPs.
    pub ips: IpBlock,
    /// Where the VMs' directories are.
    pub vm_root: PathBuf,
    /// The runtime tasks run on (the one the fake was started on).
    pub runtime: tokio::runtime::Handle,
    records: Mutex<Records>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    runners: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Director {
    /// An empty Director.
    pub fn new(auth: AuthConfig, knobs: Knobs, ips: IpBlock, vm_root: PathBuf) -> Self {
        Self {
            base_url: OnceLock::new(),
            auth,
            tokens: Mutex::default(),
            knobs,
            ips,
            vm_root,
            runtime: tokio::runtime::Handle::current(),
            records: Mutex::new(Records {
                next_task: 1,
                ..Records::default()
            }),
            locks: Mutex::default(),
            runners: Mutex::default(),
        }
    }

    /// Keeps a running task's handle, so that [`Director::abort_tasks`] can stop it.
    pub fn add_runner(&self, handle: tokio::task::AbortHandle) {
        let mut runners = lock(&self.runners);
        runners.retain(|r| !r.is_finished());
        runners.push(handle);
    }

    /// Stops every task where it is (the fake is going away).
    pub fn abort_tasks(&self) {
        for runner in lock(&self.runners).drain(..) {
            runner.abort();
        }
    }

    /// The URL of a path on this Director.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.get().map_or("", String::as_str))
    }

    /// Records a request; answers its place for [`Director::record_status`].
    pub fn record_request(&self, request: RecordedRequest) -> usize {
        let mut records = lock(&self.records);
        records.requests.push(request);
        records.requests.len() - 1
    }

    /// Records the status request `index` was answered with.
    pub fn record_status(&self, index: usize, status: u16) {
        if let Some(request) = lock(&self.records).requests.get_mut(index) {
            request.status = Some(status);
        }
    }

    /// Forgets every UAA token issued so far (their holders get 401s).
    pub fn revoke_tokens(&self) {
        lock(&self.tokens).clear();
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.records).requests.clone()
    }

    /// Records a posted manifest.
    pub fn record_manifest(&self, manifest: &str) {
        lock(&self.records).manifests.push(manifest.to_string());
    }

    /// Every manifest posted so far.
    pub fn manifests(&self) -> Vec<String> {
        lock(&self.records).manifests.clone()
    }

    /// Queues a new task and returns its id.
    pub fn new_task(
        &self,
        description: String,
        user: String,
        deployment: &str,
        context_id: Option<String>,
    ) -> u64 {
        let mut records = lock(&self.records);
        let id = records.next_task;
        records.next_task += 1;
        let mut task = Task::new(id, description, user, deployment.to_string());
        task.context_id = context_id;
        records.tasks.insert(id, task);
        id
    }

    /// A task.
    pub fn task(&self, id: u64) -> Option<Task> {
        lock(&self.records).tasks.get(&id).cloned()
    }

    /// Every task, newest first.
    pub fn tasks(&self) -> Vec<Task> {
        lock(&self.records).tasks.values().rev().cloned().collect()
    }

    /// Changes a task.
    pub fn update_task(&self, id: u64, change: impl FnOnce(&mut Task)) {
        if let Some(task) = lock(&self.records).tasks.get_mut(&id) {
            change(task);
        }
    }

    /// Appends an event to a task's output.
    pub fn push_event(&self, id: u64, event: &Value) {
        self.update_task(id, |task| task.push_event(event));
    }

    /// Ends a task.
    pub fn finish_task(&self, id: u64, state: TaskState, result: String) {
        self.update_task(id, |task| {
            task.set_state(state);
            task.result = Some(result);
        });
    }

    /// The lock a deployment's tasks take in turn.
    pub fn deployment_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Whether a task of `name` is running (holds its lock).
    pub fn is_locked(&self, name: &str) -> bool {
        lock(&self.locks)
            .get(name)
            .is_some_and(|l| l.try_lock().is_err())
    }

    /// A deployment.
    pub fn deployment(&self, name: &str) -> Option<Deployment> {
        lock(&self.records).deployments.get(name).cloned()
    }

    /// Every deployment, by name.
    pub fn deployments(&self) -> BTreeMap<String, Deployment> {
        lock(&self.records).deployments.clone()
    }

    /// Changes a deployment (made empty first if it does not exist).
    pub fn update_deployment(&self, name: &str, change: impl FnOnce(&mut Deployment)) {
        change(
            lock(&self.records)
                .deployments
                .entry(name.to_string())
                .or_default(),
        );
    }

    /// Forgets a deployment.
    pub fn remove_deployment(&self, name: &str) {
        lock(&self.records).deployments.remove(name);
    }

    /// Every VM of every deployment.
    pub fn all_vms(&self) -> Vec<Arc<Vm>> {
        lock(&self.records)
            .deployments
            .values()
            .flat_map(|d| d.instances.iter().map(|i| i.vm.clone()))
            .collect()
    }
}
