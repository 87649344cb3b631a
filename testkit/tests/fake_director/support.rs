//! What the fake Director's tests share: a plain HTTPS client trusting the fake's CA (no
//! redirects followed), authenticated requests, manifests, task polling, and real clients of
//! the servers the fake starts.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use testkit::bosh::{AuthConfig, FakeDirector, FakeOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a task may take (initdb included).
pub const TASK_TIMEOUT: Duration = Duration::from_secs(120);

/// A fake with a short step delay and its client.
pub struct Fixture {
    pub fake: FakeDirector,
    pub http: reqwest::Client,
    token: Option<String>,
}

impl Fixture {
    /// Starts a fake with `options`; in UAA mode it fetches a token first.
    pub async fn start(options: FakeOptions) -> Self {
        let fake = FakeDirector::start(options).await.expect("fake Director");
        let http = client(&fake);
        let mut fixture = Self {
            fake,
            http,
            token: None,
        };
        if matches!(fixture.fake.auth(), AuthConfig::Uaa { .. }) {
            fixture.token = Some(fixture.fetch_token().await);
        }
        fixture
    }

    /// A UAA token for the fake's client.
    pub async fn fetch_token(&self) -> String {
        let (client, secret) = self.fake.credentials();
        let resp = self
            .http
            .post(format!("{}/uaa/oauth/token", self.fake.url()))
            .basic_auth(client, Some(secret.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A request with the fake's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.fake.url()));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => {
                let (user, password) = self.fake.credentials();
                builder.basic_auth(user, Some(password.expose()))
            }
        }
    }

    /// `GET path` as JSON, asserting 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.request(Method::GET, path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.unwrap()
    }

    /// Posts a manifest; returns the task id from the `302 Location`.
    pub async fn deploy(&self, manifest: &str, context_id: &str) -> u64 {
        let resp = self
            .request(Method::POST, "/deployments")
            .header("Content-Type", "text/yaml")
            .header("X-Bosh-Context-Id", context_id)
            .body(manifest.to_string())
            .send()
            .await
            .unwrap();
        self.task_from_redirect(resp)
    }

    /// Deletes a deployment; returns the task id from the `302 Location`.
    pub async fn delete(&self, name: &str) -> u64 {
        let resp = self
            .request(Method::DELETE, &format!("/deployments/{name}"))
            .send()
            .await
            .unwrap();
        self.task_from_redirect(resp)
    }

    /// The task id of a `302 Found` to `<url>/tasks/<id>`.
    pub fn task_from_redirect(&self, resp: Response) -> u64 {
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().unwrap();
        let prefix = format!("{}/tasks/", self.fake.url());
        location
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("Location {location} is not under {prefix}"))
            .parse()
            .unwrap()
    }

    /// Polls a task until `done` (or any end state `want` says); returns it.
    pub async fn wait_task(&self, id: u64, want: &str) -> Value {
        let deadline = Instant::now() + TASK_TIMEOUT;
        loop {
            let task = self.get_json(&format!("/tasks/{id}")).await;
            let state = task["state"].as_str().unwrap().to_string();
            if !["queued", "processing"].contains(&state.as_str()) {
                assert_eq!(state, want, "task {id}: {task}");
                return task;
            }
            assert!(Instant::now() < deadline, "task {id} still {state}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls a task until it is in `state`.
    pub async fn wait_state(&self, id: u64, state: &str) {
        let deadline = Instant::now() + TASK_TIMEOUT;
        while self.get_json(&format!("/tasks/{id}")).await["state"] != state {
            assert!(Instant::now() < deadline, "task {id} never {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The task's events.
    pub async fn events(&self, id: u64) -> Vec<Value> {
        let resp = self
            .request(Method::GET, &format!("/tasks/{id}/output?type=event"))
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The first IP of the first instance of a deployment.
    pub async fn first_ip(&self, name: &str) -> String {
        let list = self
            .get_json(&format!("/deployments/{name}/instances"))
            .await;
        list[0]["ips"][0].as_str().unwrap().to_string()
    }
}

/// A client trusting only the fake's CA, following no redirects.
pub fn client(fake: &FakeDirector) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fake.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Fast options: basic auth, a short step delay.
pub fn basic() -> FakeOptions {
    FakeOptions {
        step_delay: Duration::from_millis(5),
        ..FakeOptions::default()
    }
}

/// A manifest like the deployer's for one engine, with `settings` as `key: "value"` pairs.
pub fn manifest(name: &str, engine: &str, instances: usize, settings: &[(&str, &str)]) -> String {
    let (job, version, port) = match engine {
        "postgresql" => ("postgres", "15", 5432),
        _ => ("redis", "7", 6379),
    };
    let settings: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{k}: \"{v}\""))
        .collect();
    format!(
        r#"name: {name}
releases: [{{name: {job}, version: "1.0"}}]
stemcells: [{{alias: default, os: ubuntu-jammy, version: "1.0"}}]
update: {{canaries: 1, max_in_flight: 1, canary_watch_time: 1000-300000, update_watch_time: 1000-300000, serial: true}}
instance_groups:
- name: {engine}
  instances: {instances}
  azs: [z1, z2]
  vm_type: small
  persistent_disk_type: 10GB
  stemcell: default
  networks: [{{name: default}}]
  jobs:
  - name: {job}
    release: {job}
    properties:
      osb:
        engine: {engine}
        version: "{version}"
        port: {port}
        admin: {{username: admin, password: "p4ss-{name}"}}
        settings: {{{}}}
"#,
        settings.join(", ")
    )
}

/// A PostgreSQL client of `ip:5432` as the manifest's admin.
pub async fn postgres(
    ip: &str,
    name: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(ip)
        .port(5432)
        .user("admin")
        .password(format!("p4ss-{name}"))
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Sends commands (words separated by spaces) over one connection to `ip:6379` as RESP;
/// returns each reply's first line.
pub async fn redis(ip: &str, commands: &[&str]) -> std::io::Result<Vec<String>> {
    let stream = TcpStream::connect((ip, 6379)).await?;
    let mut stream = BufReader::new(stream);
    let mut replies = Vec::new();
    for command in commands {
        let args: Vec<&str> = command.split(' ').collect();
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.get_mut().write_all(out.as_bytes()).await?;
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        replies.push(line.trim_end().to_string());
    }
    Ok(replies)
}
