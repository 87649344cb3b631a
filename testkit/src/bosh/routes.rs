//! The fake Director's routes: `/info`, the deployments, their instances, and the tasks with
//! their event output. Mutating calls answer `302 Found` to `/tasks/<id>`; errors are the
//! Director's JSON `{code, description}`.

use super::auth::{self, User};
use super::runner::{self, Work};
use super::state::{Deployment, Director};
use super::tasks::{ranged, Output, Task};
use actix_web::http::StatusCode;
use actix_web::{guard, web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The header whose value a task keeps as its `context_id`.
pub const CONTEXT_ID_HEADER: &str = "X-Bosh-Context-Id";
/// The Director's error code for an unknown deployment.
pub const DEPLOYMENT_NOT_FOUND: u32 = 70000;
/// The Director's error code for an unknown task.
pub const TASK_NOT_FOUND: u32 = 10000;

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/info", web::get().to(info))
        .route(auth::TOKEN_PATH, web::post().to(auth::token))
        .route("/deployments", web::get().to(list_deployments))
        .route(
            "/deployments",
            web::post()
                .guard(guard::Header("content-type", "text/yaml"))
                .to(deploy),
        )
        .route("/deployments/{name}", web::get().to(get_deployment))
        .route("/deployments/{name}", web::delete().to(delete_deployment))
        .route("/deployments/{name}/instances", web::get().to(instances))
        .route("/deployments/{name}/vms", web::get().to(instances))
        .route("/tasks", web::get().to(list_tasks))
        .route("/tasks/{id}", web::get().to(get_task))
        .route("/tasks/{id}/output", web::get().to(task_output));
}

/// A Director error.
pub(crate) fn error(status: StatusCode, code: u32, description: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "description": description.into()}))
}

async fn info(director: web::Data<Director>) -> HttpResponse {
    let auth = match &director.auth {
        auth::AuthConfig::Basic { .. } => json!({"type": "basic", "options": {}}),
        auth::AuthConfig::Uaa { .. } => json!({
            "type": "uaa",
            "options": {"url": director.url("/uaa"), "urls": [director.url("/uaa")]}
        }),
    };
    HttpResponse::Ok().json(json!({
        "name": "fake-director",
        "uuid": "00000000-0000-4000-8000-00000000fa4e",
        "version": "280.0.0 (fake)",
        "user": null,
        "cpi": "fake-processes",
        "stemcell_os": "ubuntu-jammy",
        "stemcell_version": "1.0",
        "user_authentication": auth,
        "features": {
            "local_dns": {"status": true, "extras": {"domain_name": "bosh"}},
            "config_server": {"status": false, "extras": {"urls": []}},
            "snapshots": {"status": false},
            "power_dns": {"status": false},
        },
    }))
}

fn user(req: &HttpRequest) -> String {
    req.extensions()
        .get::<User>()
        .map_or_else(String::new, |u| u.0.clone())
}

fn context_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(CONTEXT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `302 Found` to the task; never answered when the knob says so (the connection breaks
/// when the listener goes down, as a request whose answer was lost).
async fn redirect(director: &Director, task: u64) -> HttpResponse {
    if director.knobs.take_unanswered() {
        tracing::info!(
            task,
            "fake Director leaves the request that made the task unanswered"
        );
        std::future::pending::<()>().await;
    }
    HttpResponse::Found()
        .insert_header(("Location", director.url(&format!("/tasks/{task}"))))
        .finish()
}

async fn deploy(director: web::Data<Director>, req: HttpRequest, body: String) -> HttpResponse {
    let name = match super::manifest::name_of(&body) {
        Ok(name) => name,
        Err(e) => return error(StatusCode::BAD_REQUEST, 40001, e),
    };
    if context_id(&req).is_some_and(|c| c.len() > 64) {
        return error(
            StatusCode::BAD_REQUEST,
            40001,
            "X-Bosh-Context-Id must be at most 64 characters",
        );
    }
    director.record_manifest(&body);
    let id = director.new_task(
        "create deployment".into(),
        user(&req),
        &name,
        context_id(&req),
    );
    runner::spawn(Arc::clone(&director), id, name, Work::Deploy(body));
    redirect(&director, id).await
}

async fn delete_deployment(
    director: web::Data<Director>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    if director.deployment(&name).is_none() {
        return not_found(&name);
    }
    let id = director.new_task(
        format!("delete deployment {name}"),
        user(&req),
        &name,
        context_id(&req),
    );
    runner::spawn(Arc::clone(&director), id, name.clone(), Work::Delete);
    redirect(&director, id).await
}

fn not_found(name: &str) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        DEPLOYMENT_NOT_FOUND,
        format!("Deployment '{name}' doesn't exist"),
    )
}

async fn list_deployments(director: web::Data<Director>) -> HttpResponse {
    let list: Vec<Value> = director
        .deployments()
        .into_iter()
        .map(|(name, deployment)| {
            let manifest: Value = deployment
                .manifest
                .as_deref()
                .and_then(|m| serde_yaml::from_str(m).ok())
                .unwrap_or(Value::Null);
            json!({
                "name": name,
                "releases": manifest.get("releases").cloned().unwrap_or(json!([])),
                "stemcells": manifest.get("stemcells").cloned().unwrap_or(json!([])),
                "teams": [],
                "locked": director.is_locked(&name),
            })
        })
        .collect();
    HttpResponse::Ok().json(list)
}

async fn get_deployment(director: web::Data<Director>, name: web::Path<String>) -> HttpResponse {
    match director.deployment(&name) {
        Some(d) => HttpResponse::Ok().json(json!({"manifest": d.manifest.unwrap_or_default()})),
        None => not_found(&name),
    }
}

async fn instances(
    director: web::Data<Director>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let Some(deployment) = director.deployment(&name) else {
        return not_found(&name);
    };
    let vms = req.path().ends_with("/vms");
    HttpResponse::Ok().json(instance_list(&deployment, vms))
}

fn instance_list(deployment: &Deployment, vms: bool) -> Vec<Value> {
    deployment
        .instances
        .iter()
        .map(|i| {
            let mut entry = json!({
                "agent_id": i.vm.agent_id,
                "cid": i.vm.cid,
                "job": i.group,
                "index": i.index,
                "id": i.vm.id,
                "az": i.vm.az,
                "ips": [i.vm.ip.to_string()],
                "vm_created_at": i.vm.created_at,
                "expects_vm": true,
            });
            if vms {
                entry["active"] = json!(true);
            }
            entry
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct TaskQuery {
    state: Option<String>,
    deployment: Option<String>,
    context_id: Option<String>,
    limit: Option<usize>,
}

async fn list_tasks(director: web::Data<Director>, query: web::Query<TaskQuery>) -> HttpResponse {
    let states: Option<Vec<&str>> = query.state.as_deref().map(|s| s.split(',').collect());
    let tasks: Vec<_> = director
        .tasks()
        .into_iter()
        .filter(|t| {
            states
                .as_ref()
                .is_none_or(|s| s.contains(&t.state.as_str()))
        })
        .filter(|t| query.deployment.as_ref().is_none_or(|d| *d == t.deployment))
        .filter(|t| {
            query
                .context_id
                .as_ref()
                .is_none_or(|c| Some(c) == t.context_id.as_ref())
        })
        .take(query.limit.unwrap_or(usize::MAX))
        .collect();
    HttpResponse::Ok().json(tasks)
}

/// The task `raw` names, if it exists.
fn find_task(director: &Director, raw: &str) -> Option<Task> {
    raw.parse().ok().and_then(|id| director.task(id))
}

fn task_not_found(raw: &str) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        TASK_NOT_FOUND,
        format!("Task {raw} not found"),
    )
}

async fn get_task(director: web::Data<Director>, id: web::Path<String>) -> HttpResponse {
    match find_task(&director, &id) {
        Some(task) => HttpResponse::Ok().json(task),
        None => task_not_found(&id),
    }
}

#[derive(Debug, Deserialize)]
struct OutputQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn task_output(
    director: web::Data<Director>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<OutputQuery>,
) -> HttpResponse {
    let Some(task) = find_task(&director, &id) else {
        return task_not_found(&id);
    };
    // Only the event log is kept; `result` and `debug` output are empty.
    let text = match query.kind.as_deref() {
        Some("event") => task.events,
        Some("result") | Some("debug") => String::new(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                40000,
                "type must be event, result or debug",
            )
        }
    };
    let range = req.headers().get("range").and_then(|v| v.to_str().ok());
    match ranged(&text, range) {
        Output::Full(body) => HttpResponse::Ok().content_type("text/plain").body(body),
        Output::Partial(body, content_range) => HttpResponse::PartialContent()
            .content_type("text/plain")
            .insert_header(("Content-Range", content_range))
            .body(body),
        Output::Unsatisfiable(content_range) => HttpResponse::RangeNotSatisfiable()
            .insert_header(("Content-Range", content_range))
            .finish(),
        Output::Empty => HttpResponse::NoContent().finish(),
    }
}
