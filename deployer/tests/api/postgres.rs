//! PostgreSQL deployments: create, change, delete, and survive a deployer restart.

use crate::helpers::*;
use common::deployer::{DeploymentEndpoint, DeploymentState, Engine, TaskAction, TaskState};
use common::secret::SecretString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub async fn connect(
    endpoint: &DeploymentEndpoint,
    password: &SecretString,
) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::new()
        .host(&endpoint.host)
        .port(endpoint.port)
        .user("admin")
        .password(password.expose())
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Writes the row [`assert_kept_row`] looks for: a table `kept` holding 7.
pub async fn write_kept_row(endpoint: &DeploymentEndpoint, password: &SecretString) {
    connect(endpoint, password)
        .await
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);")
        .await
        .unwrap();
}

/// Asserts that the row of [`write_kept_row`] is still there.
pub async fn assert_kept_row(endpoint: &DeploymentEndpoint, password: &SecretString) {
    let client = connect(endpoint, password).await;
    let row = client.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
}

pub async fn show(client: &tokio_postgres::Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn postmaster_pid_file(data_dir: &Path, name: &str) -> PathBuf {
    deployment_dir(data_dir, name).join("pgdata/postmaster.pid")
}

#[tokio::test]
async fn applying_a_postgres_spec_runs_a_server_the_admin_can_query() {
    let app = spawn_app().await;
    let name = unique_name("pg");
    let password = password();
    let spec = spec(
        Engine::Postgresql,
        &name,
        &password,
        &[("max_connections", "42")],
    );

    let accepted = app.client.put_deployment(&spec, &ctx()).await.unwrap();
    assert_eq!(accepted.action, TaskAction::Apply);
    assert_eq!(accepted.deployment, name);
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(done.progress, "ready");

    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(deployment.state, DeploymentState::Running);
    assert_eq!(deployment.engine, Engine::Postgresql);
    assert_eq!(deployment.labels.get("instance"), Some(&name));
    assert_eq!(deployment.endpoints.len(), 1);
    assert_eq!(deployment.endpoints[0].host, "127.0.0.1");
    let client = connect(&deployment.endpoints[0], &password).await;
    assert_eq!(show(&client, "max_connections").await, "42");

    // Not as root: as the configured (here: default) server user.
    let pid = pid_from(&postmaster_pid_file(app.env.data_dir(), &name));
    let expected_uid = match deployer::default_run_as_user() {
        Some(user) => uid_of(&user),
        None => uid_of_process(std::process::id()),
    };
    assert_eq!(uid_of_process(pid), expected_uid);
    assert_ne!(uid_of_process(pid), 0);

    // The password is nowhere in what the deployer answers or keeps in its state files.
    let listed = app.client.list_deployments(&ctx()).await.unwrap();
    assert!(listed.iter().any(|d| d.name == name));
    let body = serde_json::to_string(&(&deployment, &listed, &done)).unwrap();
    assert!(!body.contains(password.expose()));
    for entry in walk(&app.env.data_dir().join("state")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(password.expose()), "{}", entry.display());
    }
}

fn uid_of_process(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

fn uid_of(user: &str) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == user).then(|| f[2].parse().unwrap())
        })
        .unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn reapplying_with_changed_settings_restarts_the_server_on_the_same_port_with_its_data() {
    let app = spawn_app().await;
    let name = unique_name("pg");
    let password = password();
    apply_ok(
        &app.client,
        &spec(
            Engine::Postgresql,
            &name,
            &password,
            &[("max_connections", "30")],
        ),
    )
    .await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    let client = connect(&before.endpoints[0], &password).await;
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here');")
        .await
        .unwrap();
    drop(client);
    let pid_file = postmaster_pid_file(app.env.data_dir(), &name);
    let first_pid = pid_from(&pid_file);

    let changed = spec(
        Engine::Postgresql,
        &name,
        &password,
        &[("max_connections", "40")],
    );
    apply_ok(&app.client, &changed).await;

    let after = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(after.endpoints, before.endpoints);
    let client = connect(&after.endpoints[0], &password).await;
    assert_eq!(show(&client, "max_connections").await, "40");
    let row = client.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "still here");
    let second_pid = pid_from(&pid_file);
    assert_ne!(first_pid, second_pid, "the server was not restarted");
    wait_until_gone(first_pid).await;

    // The same spec again finds nothing to change: same server process.
    apply_ok(&app.client, &changed).await;
    assert_eq!(pid_from(&pid_file), second_pid);
    assert_eq!(show(&client, "max_connections").await, "40");
}

#[tokio::test]
async fn deleting_a_deployment_stops_its_server_and_removes_its_data() {
    let app = spawn_app().await;
    let name = unique_name("pg");
    apply_ok(
        &app.client,
        &spec(Engine::Postgresql, &name, &password(), &[]),
    )
    .await;
    let pid = pid_from(&postmaster_pid_file(app.env.data_dir(), &name));
    assert!(process_exists(pid));

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(accepted.action, TaskAction::Delete);
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(done.progress, "deleted");

    assert!(!process_exists(pid), "postmaster {pid} still exists");
    assert!(!deployment_dir(app.env.data_dir(), &name).exists());
    let err = app.client.get_deployment(&name, &ctx()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let task = app.client.get_task(&accepted.id, &ctx()).await.unwrap();
    assert_eq!(task.state, TaskState::Succeeded);
}

#[tokio::test]
async fn a_delete_sent_while_the_apply_runs_waits_for_it_then_deletes() {
    let app = spawn_app().await;
    let name = unique_name("pg");
    let applying = app
        .client
        .put_deployment(&spec(Engine::Postgresql, &name, &password(), &[]), &ctx())
        .await
        .unwrap();
    let deleting = app.client.delete_deployment(&name, &ctx()).await.unwrap();

    let applied = wait_for_task(&app.client, &applying.id).await;
    let deleted = wait_for_task(&app.client, &deleting.id).await;
    assert_eq!(applied.state, TaskState::Succeeded, "{applied:?}");
    assert_eq!(deleted.state, TaskState::Succeeded, "{deleted:?}");
    assert!(deleted.updated_at_ms >= applied.updated_at_ms);
    assert_eq!(
        app.client
            .get_deployment(&name, &ctx())
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert!(!deployment_dir(app.env.data_dir(), &name).exists());
}

#[tokio::test]
async fn a_restarted_deployer_brings_a_killed_server_back_on_its_port_with_its_data() {
    let env = TestEnv::new();
    let app = env.start().await;
    let name = unique_name("pg");
    let password = password();
    let applied = apply_ok(
        &app.client,
        &spec(Engine::Postgresql, &name, &password, &[]),
    )
    .await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    write_kept_row(&before.endpoints[0], &password).await;
    app.stop().await;
    let pid = pid_from(&postmaster_pid_file(env.data_dir(), &name));
    kill(pid);
    wait_until_gone(pid).await;

    let app = env.start().await;
    let deployment = wait_until_running(&app, &name).await;
    assert_eq!(deployment.endpoints, before.endpoints);
    assert_kept_row(&deployment.endpoints[0], &password).await;
    assert_ne!(pid_from(&postmaster_pid_file(env.data_dir(), &name)), pid);
    let task = app.client.get_task(&applied.id, &ctx()).await.unwrap();
    assert_eq!(task.state, TaskState::Succeeded);
    assert_eq!(task.progress, "ready");
}

#[tokio::test]
async fn a_task_cut_short_by_a_deployer_restart_is_finished_by_the_next_one() {
    let env = TestEnv::new();
    let app = env.start().await;
    let name = unique_name("pg");
    let password = password();
    let accepted = app
        .client
        .put_deployment(&spec(Engine::Postgresql, &name, &password, &[]), &ctx())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.stop().await;

    let app = env.start().await;
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    let deployment = wait_until_running(&app, &name).await;
    let client = connect(&deployment.endpoints[0], &password).await;
    client.simple_query("SELECT 1").await.unwrap();
}

pub async fn wait_until_running(app: &RunningApp, name: &str) -> common::deployer::Deployment {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let deployment = app.client.get_deployment(name, &ctx()).await.unwrap();
        if deployment.state == DeploymentState::Running {
            return deployment;
        }
        assert!(Instant::now() < deadline, "{deployment:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_restarted_deployer_adopts_a_server_that_kept_running_and_can_delete_it() {
    let env = TestEnv::new();
    let app = env.start().await;
    let name = unique_name("pg");
    apply_ok(
        &app.client,
        &spec(Engine::Postgresql, &name, &password(), &[]),
    )
    .await;
    let pid = pid_from(&postmaster_pid_file(env.data_dir(), &name));
    app.stop().await;
    assert!(
        process_exists(pid),
        "stopping the deployer stopped its server"
    );

    let app = env.start().await;
    wait_until_running(&app, &name).await;
    assert_eq!(pid_from(&postmaster_pid_file(env.data_dir(), &name)), pid);

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    wait_until_gone(pid).await;
    assert!(!deployment_dir(env.data_dir(), &name).exists());
}
