//! The docker backend through a real Docker Engine, with the same contract as the process
//! backend: apply → use → change settings → delete (container and volume gone), and restarts
//! of the deployer and of the data container. The images are the local ones
//! `scripts/docker-images data` builds (cached). Without an engine these tests print why and
//! pass as skipped.

use crate::helpers::*;
use crate::postgres::{assert_kept_row, connect, show, wait_until_running, write_kept_row};
use crate::redis::{Redis, Reply};
use common::deployer::{DeploymentState, Engine, Health, TaskState};
use deployer::config::DockerSettings;
use testkit::docker::{docker, exists};

fn inspect(name: &str, format: &str) -> String {
    let (ok, out) = docker(&["inspect", "-f", format, name]);
    assert!(ok, "docker inspect {name}");
    out
}

/// The env (with its docker settings) and a started deployer, or `None`: skipped.
async fn start() -> Option<(TestEnv, RunningApp, DockerSettings)> {
    let env = TestEnv::docker()?;
    let settings = env.docker.clone().unwrap();
    let app = env.start().await;
    Some((env, app, settings))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_postgres_runs_in_a_container_changes_settings_in_place_and_is_deleted_with_its_volume(
) {
    let Some((env, app, docker_settings)) = start().await else {
        return;
    };
    let name = unique_name("pg");
    let container = format!("{}{name}", docker_settings.name_prefix);
    let volume = format!("{container}-data");
    let password = password();
    let accepted = app
        .client
        .put_deployment(
            &spec(
                Engine::Postgresql,
                &name,
                &password,
                &[("max_connections", "42")],
            ),
            &ctx(),
        )
        .await
        .unwrap();
    let (done, progress) = wait_for_task_progress(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert_eq!(done.progress, "ready");
    for step in [
        format!("creating volume {volume}"),
        format!("starting container {container}"),
        "waiting for PostgreSQL to accept connections".to_string(),
    ] {
        // Polling may miss a short step, never all of them.
        if !progress.contains(&step) {
            eprintln!("progress step not seen: {step} (seen: {progress:?})");
        }
    }
    assert!(
        progress.iter().any(|p| p.contains("container")),
        "progress says what the engine does: {progress:?}"
    );

    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(deployment.state, DeploymentState::Running);
    let endpoint = deployment.endpoints[0].clone();
    assert_eq!(endpoint.host, "127.0.0.1");
    let (low, high) = docker_settings.host_ports;
    assert!((low..=high).contains(&endpoint.port), "{endpoint:?}");
    let client = connect(&endpoint, &password).await;
    assert_eq!(show(&client, "max_connections").await, "42");
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        .await
        .unwrap();
    drop(client);

    // Labelled for adoption, published on loopback only, restarted by the engine, and the
    // admin password is in no container setting.
    assert_eq!(
        inspect(&container, "{{index .Config.Labels \"osb.managed\"}}"),
        "true"
    );
    assert_eq!(
        inspect(&container, "{{index .Config.Labels \"osb.deployment\"}}"),
        name
    );
    assert_eq!(
        inspect(&container, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert_eq!(
        inspect(
            &container,
            "{{(index (index .HostConfig.PortBindings \"5432/tcp\") 0).HostIp}}"
        ),
        "127.0.0.1"
    );
    let (_, everything) = docker(&["inspect", &container]);
    assert!(
        !everything.contains(password.expose()),
        "docker inspect shows the password"
    );
    assert!(exists("volume", &volume));
    let state = env.data_dir().join("state");
    for entry in std::fs::read_dir(state.join("deployments")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(password.expose()));
    }

    // A settings change replaces the container: same port, same data.
    let id_before = inspect(&container, "{{.Id}}");
    let changed = spec(
        Engine::Postgresql,
        &name,
        &password,
        &[("max_connections", "50")],
    );
    apply_ok(&app.client, &changed).await;
    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(deployment.endpoints[0], endpoint);
    assert_ne!(inspect(&container, "{{.Id}}"), id_before);
    let client = connect(&endpoint, &password).await;
    assert_eq!(show(&client, "max_connections").await, "50");
    let row = client.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "still here");
    drop(client);

    // The same spec again changes nothing.
    let id = inspect(&container, "{{.Id}}");
    apply_ok(&app.client, &changed).await;
    assert_eq!(inspect(&container, "{{.Id}}"), id);

    // A version no image is configured for is refused before anything runs.
    let mut v16 = spec(Engine::Postgresql, &unique_name("pg"), &password, &[]);
    v16.version = "16".into();
    let err = app.client.put_deployment(&v16, &ctx()).await.unwrap_err();
    assert!(err.to_string().contains("16"), "{err}");

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let (done, progress) = wait_for_task_progress(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(!exists("container", &container), "container left behind");
    assert!(!exists("volume", &volume), "volume left behind");
    assert!(!deployment_dir(env.data_dir(), &name).exists());
    assert!(!progress.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_redis_keeps_its_data_and_acl_users_across_a_settings_change_and_is_deleted() {
    let Some((_env, app, docker_settings)) = start().await else {
        return;
    };
    let name = unique_name("kv");
    let container = format!("{}{name}", docker_settings.name_prefix);
    let password = password();
    apply_ok(
        &app.client,
        &spec(Engine::Redis, &name, &password, &[("maxclients", "77")]),
    )
    .await;
    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    let endpoint = deployment.endpoints[0].clone();
    let mut redis = Redis::login(&endpoint, "admin", &password).await;
    assert_eq!(redis.config_get("maxclients").await, "77");
    assert_eq!(redis.config_get("appendonly").await, "yes");
    assert_eq!(
        redis.call(&["SET", "k", "v"]).await,
        Reply::Simple("OK".into())
    );
    // A user made at run time, as a binding makes one.
    assert_eq!(
        redis
            .call(&["ACL", "SETUSER", "app1", "on", ">app-secret", "~*", "+@all"])
            .await,
        Reply::Simple("OK".into())
    );
    let mut stranger = Redis::connect(&endpoint).await;
    assert!(
        matches!(stranger.call(&["GET", "k"]).await, Reply::Error(e) if e.starts_with("NOAUTH"))
    );
    let (_, everything) = docker(&["inspect", &container]);
    assert!(!everything.contains(password.expose()));
    drop((redis, stranger));

    apply_ok(
        &app.client,
        &spec(Engine::Redis, &name, &password, &[("maxclients", "88")]),
    )
    .await;
    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(deployment.endpoints[0], endpoint);
    let mut app1 = Redis::login(
        &endpoint,
        "app1",
        &common::secret::SecretString::new("app-secret"),
    )
    .await;
    assert_eq!(
        app1.call(&["GET", "k"]).await,
        Reply::Bulk(Some("v".into()))
    );
    assert_eq!(app1.config_get("maxclients").await, "88");
    drop(app1);

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(!exists("container", &container));
    assert!(!exists("volume", &format!("{container}-data")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_deployments_keep_port_and_data_across_deployer_and_container_restarts() {
    let Some((env, app, docker_settings)) = start().await else {
        return;
    };
    let name = unique_name("pg");
    let container = format!("{}{name}", docker_settings.name_prefix);
    let password = password();
    apply_ok(
        &app.client,
        &spec(Engine::Postgresql, &name, &password, &[]),
    )
    .await;
    let endpoint = app
        .client
        .get_deployment(&name, &ctx())
        .await
        .unwrap()
        .endpoints[0]
        .clone();
    write_kept_row(&endpoint, &password).await;
    let id = inspect(&container, "{{.Id}}");

    // Deployer down, container restarted by someone else: the next deployer adopts it.
    app.stop().await;
    assert!(docker(&["restart", &container]).0);
    let app = env.start().await;
    let deployment = wait_until_running(&app, &name).await;
    assert_eq!(deployment.endpoints[0], endpoint);
    assert_eq!(inspect(&container, "{{.Id}}"), id, "adopted, not replaced");
    assert_kept_row(&endpoint, &password).await;

    // Deployer down, container stopped: the next deployer starts it again.
    app.stop().await;
    assert!(docker(&["stop", &container]).0);
    let app = env.start().await;
    wait_until_running(&app, &name).await;
    assert_eq!(inspect(&container, "{{.State.Running}}"), "true");

    // Deployer down, container removed (the volume stays): recreated on its port and volume.
    app.stop().await;
    assert!(docker(&["rm", "-f", &container]).0);
    let app = env.start().await;
    let deployment = wait_until_running(&app, &name).await;
    assert_eq!(deployment.endpoints[0], endpoint);
    assert_kept_row(&endpoint, &password).await;

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(!exists("container", &container));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_a_killed_redis_server_is_restarted_by_the_engine_and_reported_healthy_with_its_data(
) {
    let Some((_env, app, docker_settings)) = start().await else {
        return;
    };
    let name = unique_name("kv");
    let container = format!("{}{name}", docker_settings.name_prefix);
    let password = password();
    apply_ok(
        &app.client,
        &spec(
            Engine::Redis,
            &name,
            &password,
            &[("appendfsync", "always")],
        ),
    )
    .await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    let health = before.health.clone().unwrap();
    assert_eq!(health.status, Health::Healthy, "{before:?}");
    let mut redis = Redis::login(&before.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["SET", "kept", "7"]).await,
        Reply::Simple("OK".into())
    );
    drop(redis);

    // The server process, killed from the host (the container's own init cannot be).
    let pid: u32 = inspect(&container, "{{.State.Pid}}")
        .trim()
        .parse()
        .unwrap();
    kill(pid);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let after = loop {
        let d = app.client.get_deployment(&name, &ctx()).await.unwrap();
        let h = d.health.clone().unwrap();
        if h.status == Health::Healthy && h.message.contains("restarted its container") {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(after.endpoints, before.endpoints);
    let mut redis = loop {
        // The container runs before Redis has loaded its data and accepts connections.
        let d = app.client.get_deployment(&name, &ctx()).await.unwrap();
        if d.state == DeploymentState::Running {
            break Redis::login(&d.endpoints[0], "admin", &password).await;
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        redis.call(&["GET", "kept"]).await,
        Reply::Bulk(Some("7".into()))
    );
}
