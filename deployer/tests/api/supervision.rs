//! Supervision of the process backend: a killed server comes back with its data, a crash loop
//! stops at the limit and is reported, and server ports honour `port_range`.

use crate::helpers::*;
use crate::postgres::{assert_kept_row, wait_until_running, write_kept_row};
use crate::redis::{Redis, Reply};
use common::deployer::{Deployment, DeploymentState, Engine, Health, TaskState};
use deployer::config::{Settings, SupervisionSettings};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Quick looks, and a first restart late enough that a test sees `restarting` first.
fn quick_supervision(settings: &mut Settings) {
    settings.supervision = SupervisionSettings {
        check_interval_ms: 100,
        restart_backoff_ms: 1_500,
        restart_backoff_max_ms: 3_000,
        crash_loop_limit: 2,
        stable_secs: 600,
    };
}

fn env_with_quick_supervision() -> TestEnv {
    let mut env = TestEnv::new();
    env.tweak = quick_supervision;
    env
}

fn redis_pid_file(data_dir: &Path, name: &str) -> PathBuf {
    deployment_dir(data_dir, name).join("redis.pid")
}

fn postmaster_pid_file(data_dir: &Path, name: &str) -> PathBuf {
    deployment_dir(data_dir, name).join("pgdata/postmaster.pid")
}

/// Polls the deployment until `check` holds (or fails the test after two minutes).
async fn wait_for(app: &RunningApp, name: &str, check: impl Fn(&Deployment) -> bool) -> Deployment {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let deployment = app.client.get_deployment(name, &ctx()).await.unwrap();
        if check(&deployment) {
            return deployment;
        }
        assert!(
            Instant::now() < deadline,
            "condition never held: {deployment:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn health(deployment: &Deployment) -> Option<Health> {
    deployment.health.as_ref().map(|h| h.status)
}

/// Kills the server in `pid_file`, then waits until the deployer reports it restarting and
/// then healthy again on a new pid; returns the deployment as it is then.
async fn kill_and_see_it_restarted(app: &RunningApp, name: &str, pid_file: &Path) -> Deployment {
    let pid = pid_from(pid_file);
    kill(pid);
    wait_until_gone(pid).await;
    let down = wait_for(app, name, |d| health(d) != Some(Health::Healthy)).await;
    assert_eq!(health(&down), Some(Health::Restarting), "{down:?}");
    assert!(
        down.health.as_ref().unwrap().message.contains("restart"),
        "{down:?}"
    );
    let up = wait_for(app, name, |d| {
        health(d) == Some(Health::Healthy) && d.state == DeploymentState::Running
    })
    .await;
    assert_ne!(pid_from(pid_file), pid, "the server was not restarted");
    assert!(
        up.health.as_ref().unwrap().message.contains("restarted"),
        "{up:?}"
    );
    up
}

#[tokio::test]
async fn a_killed_redis_server_is_restarted_with_its_data_and_reported_restarting_then_healthy() {
    let env = env_with_quick_supervision();
    let app = env.start().await;
    let name = unique_name("kv");
    let password = password();
    let spec = spec(
        Engine::Redis,
        &name,
        &password,
        &[("appendfsync", "always")],
    );
    apply_ok(&app.client, &spec).await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(health(&before), Some(Health::Healthy), "{before:?}");
    let mut redis = Redis::login(&before.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["SET", "kept", "7"]).await,
        Reply::Simple("OK".into())
    );
    drop(redis);

    let after =
        kill_and_see_it_restarted(&app, &name, &redis_pid_file(env.data_dir(), &name)).await;

    assert_eq!(after.endpoints, before.endpoints);
    let mut redis = Redis::login(&after.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["GET", "kept"]).await,
        Reply::Bulk(Some("7".into()))
    );
}

#[tokio::test]
async fn a_killed_postmaster_is_restarted_with_its_data_also_after_a_deployer_restart() {
    let env = env_with_quick_supervision();
    let app = env.start().await;
    let name = unique_name("pg");
    let password = password();
    apply_ok(
        &app.client,
        &spec(Engine::Postgresql, &name, &password, &[]),
    )
    .await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    write_kept_row(&before.endpoints[0], &password).await;
    let pid_file = postmaster_pid_file(env.data_dir(), &name);

    kill_and_see_it_restarted(&app, &name, &pid_file).await;

    // A new deployer adopts the running server and supervises it as well.
    app.stop().await;
    let app = env.start().await;
    wait_until_running(&app, &name).await;
    let after = kill_and_see_it_restarted(&app, &name, &pid_file).await;

    assert_eq!(after.endpoints, before.endpoints);
    assert_kept_row(&after.endpoints[0], &password).await;
}

#[tokio::test]
async fn a_server_that_dies_at_every_start_is_left_down_at_the_crash_loop_limit_until_applied_again(
) {
    let env = env_with_quick_supervision();
    let app = env.start().await;
    let name = unique_name("kv");
    let password = password();
    let spec = spec(Engine::Redis, &name, &password, &[]);
    apply_ok(&app.client, &spec).await;
    // From now on redis-server refuses its config and exits at once.
    let config = deployment_dir(env.data_dir(), &name).join("redis.conf");
    let mut broken = std::fs::read_to_string(&config).unwrap();
    broken.push_str("no-such-directive yes\n");
    std::fs::write(&config, broken).unwrap();
    let pid = pid_from(&redis_pid_file(env.data_dir(), &name));
    kill(pid);
    wait_until_gone(pid).await;

    let down = wait_for(&app, &name, |d| health(d) == Some(Health::Down)).await;

    assert_eq!(down.state, DeploymentState::Stopped, "{down:?}");
    let message = &down.health.as_ref().unwrap().message;
    assert!(message.contains("not restarted again"), "{message}");
    assert!(message.contains("crash_loop_limit 2"), "{message}");
    // Its log shows each start it was given: the first life and the two restarts.
    let log =
        std::fs::read_to_string(deployment_dir(env.data_dir(), &name).join("server.log")).unwrap();
    assert_eq!(
        log.matches("Bad directive or wrong number of arguments")
            .count(),
        2,
        "{log}"
    );

    // Applying it again writes a good config and brings it back.
    apply_ok(&app.client, &spec).await;
    let up = wait_for(&app, &name, |d| health(d) == Some(Health::Healthy)).await;
    assert_eq!(up.state, DeploymentState::Running);
    let mut redis = Redis::login(&up.endpoints[0], "admin", &password).await;
    assert_eq!(redis.call(&["PING"]).await, Reply::Simple("PONG".into()));
}

/// Two consecutive ports that are free now.
fn free_port_pair() -> (u16, u16) {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", next)).is_ok() {
            return (port, next);
        }
    }
    panic!("no two consecutive free ports");
}

#[tokio::test]
async fn server_ports_come_from_the_configured_port_range_until_it_is_full() {
    let env = TestEnv::new();
    let range = free_port_pair();
    let mut settings = env.settings();
    settings.process.port_range = Some(range);
    let app = env.start_with(settings).await;

    let mut ports = Vec::new();
    for _ in 0..2 {
        let name = unique_name("kv");
        apply_ok(&app.client, &spec(Engine::Redis, &name, &password(), &[])).await;
        let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
        ports.push(deployment.endpoints[0].port);
    }
    ports.sort_unstable();
    assert_eq!(ports, vec![range.0, range.1]);

    let third = unique_name("kv");
    let task = app
        .client
        .put_deployment(&spec(Engine::Redis, &third, &password(), &[]), &ctx())
        .await
        .unwrap();
    let done = wait_for_task(&app.client, &task.id).await;
    assert_eq!(done.state, TaskState::Failed, "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(
        error.contains("no free port left in process.port_range"),
        "{error}"
    );
}
