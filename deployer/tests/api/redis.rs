//! Redis deployments: create, change, delete, and survive a deployer restart.

use crate::helpers::*;
use crate::postgres::wait_until_running;
use common::deployer::{DeploymentEndpoint, DeploymentState, Engine, TaskState};
use common::secret::SecretString;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A RESP reply, as much of it as the tests look at.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

pub struct Redis(BufReader<TcpStream>);

impl Redis {
    pub async fn connect(endpoint: &DeploymentEndpoint) -> Self {
        let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .unwrap();
        Self(BufReader::new(stream))
    }

    pub async fn login(endpoint: &DeploymentEndpoint, user: &str, password: &SecretString) -> Self {
        let mut redis = Self::connect(endpoint).await;
        let reply = redis.call(&["AUTH", user, password.expose()]).await;
        assert_eq!(reply, Reply::Simple("OK".into()));
        redis
    }

    pub async fn call(&mut self, args: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.0.get_mut().write_all(out.as_bytes()).await.unwrap();
        self.read().await
    }

    async fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0; len as usize + 2];
                self.0.read_exact(&mut buf).await.unwrap();
                buf.truncate(len as usize);
                Reply::Bulk(Some(String::from_utf8(buf).unwrap()))
            }
            "*" => {
                let n: usize = rest.parse().unwrap();
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(Box::pin(self.read()).await);
                }
                Reply::Array(items)
            }
            other => panic!("unexpected reply {other}{rest}"),
        }
    }

    pub async fn config_get(&mut self, key: &str) -> String {
        match self.call(&["CONFIG", "GET", key]).await {
            Reply::Array(items) => match &items[..] {
                [_, Reply::Bulk(Some(value))] => value.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}

fn pid_file(data_dir: &Path, name: &str) -> PathBuf {
    deployment_dir(data_dir, name).join("redis.pid")
}

#[tokio::test]
async fn applying_a_redis_spec_runs_a_server_only_the_admin_can_use() {
    let app = spawn_app().await;
    let name = unique_name("kv");
    let password = password();
    let done = apply_ok(
        &app.client,
        &spec(Engine::Redis, &name, &password, &[("maxclients", "77")]),
    )
    .await;
    assert_eq!(done.progress, "ready");

    let deployment = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(deployment.state, DeploymentState::Running);
    assert_eq!(deployment.engine, Engine::Redis);
    let endpoint = &deployment.endpoints[0];
    let mut redis = Redis::login(endpoint, "admin", &password).await;
    assert_eq!(
        redis.call(&["SET", "k", "v"]).await,
        Reply::Simple("OK".into())
    );
    assert_eq!(
        redis.call(&["GET", "k"]).await,
        Reply::Bulk(Some("v".into()))
    );
    assert_eq!(redis.config_get("maxclients").await, "77");
    assert_eq!(redis.config_get("appendonly").await, "yes");

    let mut stranger = Redis::connect(endpoint).await;
    assert!(
        matches!(stranger.call(&["GET", "k"]).await, Reply::Error(e) if e.starts_with("NOAUTH"))
    );
    let dir = deployment_dir(app.env.data_dir(), &name);
    for file in ["redis.conf", "users.acl"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            !text.contains(password.expose()),
            "{file} holds the password"
        );
    }
}

#[tokio::test]
async fn reapplying_redis_with_changed_settings_keeps_port_data_and_acl_users() {
    let app = spawn_app().await;
    let name = unique_name("kv");
    let password = password();
    apply_ok(
        &app.client,
        &spec(Engine::Redis, &name, &password, &[("maxclients", "50")]),
    )
    .await;
    let before = app.client.get_deployment(&name, &ctx()).await.unwrap();
    let mut redis = Redis::login(&before.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["SET", "kept", "yes"]).await,
        Reply::Simple("OK".into())
    );
    // A per-binding user, as the key-value SPI makes them.
    assert_eq!(
        redis
            .call(&["ACL", "SETUSER", "binding1", "on", ">b1-pass", "~*", "+@all"])
            .await,
        Reply::Simple("OK".into())
    );
    drop(redis);
    let first_pid = pid_from(&pid_file(app.env.data_dir(), &name));

    let changed = spec(Engine::Redis, &name, &password, &[("maxclients", "60")]);
    apply_ok(&app.client, &changed).await;

    let after = app.client.get_deployment(&name, &ctx()).await.unwrap();
    assert_eq!(after.endpoints, before.endpoints);
    let second_pid = pid_from(&pid_file(app.env.data_dir(), &name));
    assert_ne!(first_pid, second_pid, "the server was not restarted");
    let mut redis = Redis::login(&after.endpoints[0], "admin", &password).await;
    assert_eq!(redis.config_get("maxclients").await, "60");
    assert_eq!(
        redis.call(&["GET", "kept"]).await,
        Reply::Bulk(Some("yes".into()))
    );
    let binding = Redis::login(
        &after.endpoints[0],
        "binding1",
        &SecretString::new("b1-pass"),
    )
    .await;
    drop(binding);

    apply_ok(&app.client, &changed).await;
    assert_eq!(pid_from(&pid_file(app.env.data_dir(), &name)), second_pid);
}

#[tokio::test]
async fn deleting_a_redis_deployment_stops_its_server_and_removes_its_data() {
    let app = spawn_app().await;
    let name = unique_name("kv");
    apply_ok(&app.client, &spec(Engine::Redis, &name, &password(), &[])).await;
    let pid = pid_from(&pid_file(app.env.data_dir(), &name));

    let accepted = app.client.delete_deployment(&name, &ctx()).await.unwrap();
    let done = wait_for_task(&app.client, &accepted.id).await;
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");

    assert!(!process_exists(pid), "redis-server {pid} still exists");
    assert!(!deployment_dir(app.env.data_dir(), &name).exists());
    let err = app.client.get_deployment(&name, &ctx()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        app.client
            .get_task(&accepted.id, &ctx())
            .await
            .unwrap()
            .state,
        TaskState::Succeeded
    );
}

#[tokio::test]
async fn a_restarted_deployer_brings_a_killed_redis_back_with_its_data() {
    let env = TestEnv::new();
    let app = env.start().await;
    let name = unique_name("kv");
    let password = password();
    let applied = apply_ok(
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
    let mut redis = Redis::login(&before.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["SET", "kept", "7"]).await,
        Reply::Simple("OK".into())
    );
    drop(redis);
    app.stop().await;
    let pid = pid_from(&pid_file(env.data_dir(), &name));
    kill(pid);
    wait_until_gone(pid).await;

    let app = env.start().await;
    let deployment = wait_until_running(&app, &name).await;
    assert_eq!(deployment.endpoints, before.endpoints);
    let mut redis = Redis::login(&deployment.endpoints[0], "admin", &password).await;
    assert_eq!(
        redis.call(&["GET", "kept"]).await,
        Reply::Bulk(Some("7".into()))
    );
    assert_eq!(redis.call(&["INCR", "kept"]).await, Reply::Int(8));
    assert_eq!(
        app.client
            .get_task(&applied.id, &ctx())
            .await
            .unwrap()
            .state,
        TaskState::Succeeded
    );
}
