//! The compose smoke test: build the images (cached), `docker-compose up -d`, wait until the
//! broker is healthy and offers both services, provision and bind PostgreSQL through the
//! published broker port, query it with the binding's credentials, deprovision, `down -v`, and
//! check nothing is left. Skipped, with the reason printed, without an engine or compose.

use crate::docker::{leftovers, lifecycle};
use osbctl::osb_client::OsbClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::docker::{docker, engine_with_data_images, images_script, remove_all};

/// `docker-compose` (v1, Debian's), else `docker compose` (v2).
fn compose_command() -> Option<Vec<&'static str>> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    [vec!["docker-compose"], vec!["docker", "compose"]]
        .into_iter()
        .find(|c| works(c))
}

/// One compose project; `down -v` (and removal of what the deployer made) when dropped.
struct Project {
    name: String,
    compose: Vec<&'static str>,
    root: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Project {
    fn run(&self, args: &[&str]) -> bool {
        self.command(args).status().is_ok_and(|s| s.success())
    }

    fn command(&self, args: &[&str]) -> Command {
        let file = self.root.join("docker-compose.yml");
        let mut cmd = Command::new(self.compose[0]);
        cmd.args(&self.compose[1..])
            .args(["-p", &self.name, "-f"])
            .arg(&file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(&self.root);
        cmd
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Quiet: after a passing test there is nothing left to take down.
        let _ = self
            .command(&["down", "-v", "--remove-orphans"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        remove_all(&self.name);
        docker(&["network", "rm", &self.name]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host port the engine publishes a container's `port` on.
fn published(container: &str, port: u16) -> (String, u16) {
    let (ok, out) = docker(&["port", container, &format!("{port}/tcp")]);
    assert!(ok, "docker port {container} {port}");
    let line = out.lines().next().unwrap_or_default();
    let (host, port) = line.rsplit_once(':').expect("host:port");
    (host.to_string(), port.parse().unwrap())
}

async fn wait_for_catalog(osb: &OsbClient) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(catalog) = osb.catalog().await {
            let names: Vec<&str> = catalog.services.iter().map(|s| s.name.as_str()).collect();
            if names.contains(&"postgresql") && names.contains(&"keyvalue") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the broker did not offer both services"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_up_serves_a_working_postgresql_and_down_leaves_nothing() {
    if let Err(reason) = engine_with_data_images() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let Some(compose) = compose_command() else {
        eprintln!("SKIPPED: neither docker-compose nor docker compose is installed");
        return;
    };
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_osbctl")).parent().unwrap();
    let status = Command::new(images_script())
        .arg("services")
        .env("OSB_BIN_DIR", bin_dir)
        .status()
        .unwrap();
    assert!(status.success(), "building the service images");

    let name = format!("osbsmoke{:08x}", rand::random::<u32>());
    let port = free_port();
    let password = common::secret::random_password(24).expose().to_string();
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let state_db_password = common::secret::random_password(24).expose().to_string();
    let project = Project {
        name: name.clone(),
        compose,
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        env: vec![
            ("OSB_BROKER_PORT", port.to_string()),
            ("OSB_BROKER_PASSWORD", password.clone()),
            ("OSB_ENCRYPTION_KEY", key),
            ("OSB_STATE_DB_PASSWORD", state_db_password.clone()),
            ("OSB_NETWORK", name.clone()),
            ("OSB_NAME_PREFIX", format!("{name}-")),
            ("OSB_POSTGRES_IMAGE", "osb/postgres:15".into()),
            ("OSB_REDIS_IMAGE", "osb/redis:7".into()),
        ],
    };
    assert!(
        project.run(&["up", "-d", "--no-build"]),
        "docker-compose up"
    );

    let osb = OsbClient::new(&format!("http://127.0.0.1:{port}"), "broker", &password).unwrap();
    wait_for_catalog(&osb).await;
    // Credentials name the container on the compose network; from here it is reached on the
    // loopback port the deployer published for it.
    let reach = |host: &str, port: u16| published(host, port);
    lifecycle(&osb, "docker", "postgresql", "small", &reach).await;
    assert_eq!(leftovers(&format!("{name}-")), Vec::<String>::new());

    // The broker kept its journal in the state-db container.
    let project_label = format!("label=com.docker.compose.project={name}");
    let (_, state_db) = docker(&[
        "ps",
        "-q",
        "--filter",
        &project_label,
        "--filter",
        "label=com.docker.compose.service=state-db",
    ]);
    let password_env = format!("PGPASSWORD={state_db_password}");
    let (ok, operations) = docker(&[
        "exec",
        "-e",
        &password_env,
        &state_db,
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "broker",
        "-d",
        "postgres",
        "-Atc",
        "SELECT count(*) FROM operations",
    ]);
    assert!(ok, "querying the state database");
    assert!(operations.parse::<u32>().unwrap() >= 2, "{operations}");

    assert!(project.run(&["down", "-v"]), "docker-compose down -v");
    assert_eq!(
        leftovers(&name),
        Vec::<String>::new(),
        "containers or volumes left"
    );
    assert!(!testkit::docker::exists("network", &name), "network left");
}
