//! What a task does, on the runtime the fake was started on: it waits (`queued`) for its
//! deployment's lock, then (`processing`) emits the events of a real deploy or delete while
//! it creates VMs, starts, restarts or stops their servers and deletes VMs, and ends `done`,
//! or `error` with an error event (or how a knob says it must end).

use super::knobs::TaskEnd;
use super::manifest::{self, Group, Manifest};
use super::state::{Director, Instance};
use super::tasks::{error_event, stage_event, Step, TaskState};
use super::vms::Vm;
use deployer::backend::Progress;
use std::sync::Arc;

/// What a task does.
#[derive(Debug)]
pub(crate) enum Work {
    /// Deploy this manifest.
    Deploy(String),
    /// Delete the deployment.
    Delete,
}

/// The Director's error code for a failed deploy step.
const TASK_ERROR: u32 = 450001;

/// Runs task `id` on deployment `name` in the background.
pub(crate) fn spawn(director: Arc<Director>, id: u64, name: String, work: Work) {
    let runtime = director.runtime.clone();
    let keeper = Arc::clone(&director);
    let task = runtime.spawn(async move { run(&director, id, &name, work).await });
    keeper.add_runner(task.abort_handle());
}

async fn run(director: &Arc<Director>, id: u64, name: &str, work: Work) {
    let lock = director.deployment_lock(name);
    let _turn = lock.lock().await;
    pause(director).await;
    director.update_task(id, |t| t.set_state(TaskState::Processing));
    if matches!(work, Work::Deploy(_)) {
        // The Director knows the deployment (locked, no manifest yet) from here on.
        director.update_deployment(name, |_| {});
    }
    let one = Step {
        task: "Preparing deployment",
        index: 1,
        total: 1,
    };
    let stage = "Preparing deployment";
    director.push_event(id, &stage_event(stage, &[], one, "started"));
    pause(director).await;
    director.knobs.wait_unheld().await;
    director.push_event(id, &stage_event(stage, &[], one, "finished"));
    if let Some(end) = director.knobs.failure_for(name) {
        end_as(director, id, end);
        return;
    }
    let outcome = match work {
        Work::Deploy(text) => deploy(director, id, &text).await,
        Work::Delete => delete(director, id, name).await,
    };
    match outcome {
        Ok(result) => director.finish_task(id, TaskState::Done, result),
        Err(message) => {
            tracing::warn!(task = id, deployment = %name, error = %message, "fake Director task failed");
            director.push_event(id, &error_event(TASK_ERROR, &message));
            director.finish_task(id, TaskState::Error, message);
        }
    }
}

/// Ends the task the way a knob asked.
fn end_as(director: &Director, id: u64, end: TaskEnd) {
    match end {
        TaskEnd::Error(message) => {
            let step = Step {
                task: "Failing as the test asked",
                index: 1,
                total: 1,
            };
            let mut failed = stage_event("Updating instance", &[], step, "failed");
            failed["data"] = serde_json::json!({"error": message});
            director.push_event(id, &failed);
            director.push_event(id, &error_event(TASK_ERROR, &message));
            director.finish_task(id, TaskState::Error, message);
        }
        TaskEnd::Cancelled => {
            director.finish_task(id, TaskState::Cancelled, "Task cancelled".into());
        }
        TaskEnd::Timeout => {
            director.finish_task(id, TaskState::Timeout, "Task timed out".into());
        }
    }
}

async fn pause(director: &Director) {
    let delay = director.knobs.step_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Deploys a manifest: missing VMs created, every instance updated, unneeded ones deleted.
/// The same manifest as the one deployed last changes nothing.
async fn deploy(director: &Arc<Director>, id: u64, text: &str) -> Result<String, String> {
    let manifest = manifest::parse(text)?;
    let name = manifest.name.clone();
    let current = director.deployment(&name).unwrap_or_default();
    if current.manifest.as_deref() == Some(text) {
        return Ok(format!("/deployments/{name}"));
    }
    create_missing_vms(director, id, &manifest, current.instances).await?;
    let instances = director.deployment(&name).unwrap_or_default().instances;
    for group in &manifest.groups {
        update_group(director, id, group, &instances).await?;
    }
    delete_unneeded(director, id, &manifest).await?;
    director.update_deployment(&name, |d| d.manifest = Some(text.to_string()));
    Ok(format!("/deployments/{name}"))
}

async fn create_missing_vms(
    director: &Director,
    id: u64,
    manifest: &Manifest,
    existing: Vec<Instance>,
) -> Result<(), String> {
    let missing: Vec<(&Group, usize)> = manifest
        .groups
        .iter()
        .flat_map(|g| (0..g.instances).map(move |i| (g, i)))
        .filter(|(g, i)| !existing.iter().any(|e| e.group == g.name && e.index == *i))
        .collect();
    let stage = "Creating missing vms";
    for (n, (group, index)) in missing.iter().enumerate() {
        let ip = director.ips.allocate()?;
        let vm = Arc::new(Vm::create(
            &director.vm_root,
            ip,
            group.az(*index).map(str::to_string),
        )?);
        let task = format!("{}/{} ({index})", group.name, vm.id);
        let step = Step {
            task: &task,
            index: n + 1,
            total: missing.len(),
        };
        director.push_event(id, &stage_event(stage, &[], step, "started"));
        director.update_deployment(&manifest.name, |d| {
            d.instances.push(Instance {
                group: group.name.clone(),
                index: *index,
                vm,
            });
        });
        pause(director).await;
        director.push_event(id, &stage_event(stage, &[], step, "finished"));
    }
    Ok(())
}

/// Updates each instance of a group (the first one as the canary), reporting the server's
/// progress as `in_progress` events.
async fn update_group(
    director: &Arc<Director>,
    id: u64,
    group: &Group,
    instances: &[Instance],
) -> Result<(), String> {
    let mine: Vec<&Instance> = (0..group.instances)
        .filter_map(|i| {
            instances
                .iter()
                .find(|e| e.group == group.name && e.index == i)
        })
        .collect();
    let stage = "Updating instance";
    let tags = [group.name.as_str()];
    for (n, instance) in mine.iter().enumerate() {
        let canary = if n == 0 { " (canary)" } else { "" };
        let task = format!(
            "{}/{} ({}){canary}",
            group.name, instance.vm.id, instance.index
        );
        let step = Step {
            task: &task,
            index: n + 1,
            total: mine.len(),
        };
        director.push_event(id, &stage_event(stage, &tags, step, "started"));
        let progress = {
            let (director, task, tag) = (Arc::clone(director), task.clone(), group.name.clone());
            let total = mine.len();
            Progress::new(move |status| {
                let step = Step {
                    task: &task,
                    index: n + 1,
                    total,
                };
                let mut event = stage_event(stage, &[tag.as_str()], step, "in_progress");
                event["data"] = serde_json::json!({"status": status});
                director.push_event(id, &event);
            })
        };
        pause(director).await;
        if let Err(message) = instance.vm.apply(&group.jobs, &progress).await {
            let mut failed = stage_event(stage, &tags, step, "failed");
            failed["data"] = serde_json::json!({"error": message});
            director.push_event(id, &failed);
            return Err(format!("'{task}' is not running after update: {message}"));
        }
        director.push_event(id, &stage_event(stage, &tags, step, "finished"));
    }
    Ok(())
}

/// Deletes the instances the manifest no longer has.
async fn delete_unneeded(director: &Director, id: u64, manifest: &Manifest) -> Result<(), String> {
    let wanted = |i: &Instance| {
        manifest
            .groups
            .iter()
            .any(|g| g.name == i.group && i.index < g.instances)
    };
    let current = director.deployment(&manifest.name).unwrap_or_default();
    let unneeded: Vec<Instance> = current
        .instances
        .into_iter()
        .filter(|i| !wanted(i))
        .collect();
    delete_instances(
        director,
        id,
        &manifest.name,
        "Deleting unneeded instances",
        &unneeded,
    )
    .await
}

async fn delete_instances(
    director: &Director,
    id: u64,
    name: &str,
    stage: &str,
    instances: &[Instance],
) -> Result<(), String> {
    for (n, instance) in instances.iter().enumerate() {
        let task = format!("{}/{} ({})", instance.group, instance.vm.id, instance.index);
        let step = Step {
            task: &task,
            index: n + 1,
            total: instances.len(),
        };
        director.push_event(id, &stage_event(stage, &[], step, "started"));
        pause(director).await;
        instance.vm.destroy(&Progress::discard()).await?;
        director.update_deployment(name, |d| {
            d.instances.retain(|i| i.vm.cid != instance.vm.cid);
        });
        director.push_event(id, &stage_event(stage, &[], step, "finished"));
    }
    Ok(())
}

/// Deletes a deployment: its instances (servers stopped, data removed), then its record.
async fn delete(director: &Director, id: u64, name: &str) -> Result<String, String> {
    let Some(deployment) = director.deployment(name) else {
        return Ok(String::new());
    };
    delete_instances(
        director,
        id,
        name,
        "Deleting instances",
        &deployment.instances,
    )
    .await?;
    let step = Step {
        task: "Destroying deployment",
        index: 1,
        total: 1,
    };
    director.push_event(
        id,
        &stage_event("Deleting properties", &[], step, "started"),
    );
    director.remove_deployment(name);
    director.push_event(
        id,
        &stage_event("Deleting properties", &[], step, "finished"),
    );
    Ok(format!("/deployments/{name}"))
}
