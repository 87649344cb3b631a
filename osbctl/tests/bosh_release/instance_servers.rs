//! The real proof of the service-instance jobs: a real `redis-server` and a real PostgreSQL 15
//! (unprivileged) run from the configs and scripts the jobs rendered, on loopback, and the admin
//! logs in with the deployed password. The only changes for the test are the rendered config's
//! lines naming address, port and directories, rewritten to loopback and temporary ones, and
//! `JOB_DIR` / `STORE` / `PG_BIN` given to the job's `bin/setup`.

use crate::instance_jobs::{render_instance, PASSWORD};
use deployer::config::{DEFAULT_POSTGRES_BIN_DIR, DEFAULT_REDIS_SERVER_BIN};
use deployer::sys::{self, OsUser};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process, stopped (SIGINT, then SIGKILL) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = sys::send_signal(self.0.id(), sys::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The rendered config `text` with the one line starting with each prefix replaced.
fn rewrite(text: &str, lines: &[(&str, String)]) -> String {
    let mut out: Vec<String> = text.lines().map(String::from).collect();
    for (prefix, new) in lines {
        let at: Vec<usize> = (0..out.len())
            .filter(|&i| out[i].starts_with(prefix))
            .collect();
        assert_eq!(at.len(), 1, "lines starting with {prefix:?} in:\n{text}");
        out[at[0]] = new.clone();
    }
    out.join("\n") + "\n"
}

async fn redis_command(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(con).await
}

#[tokio::test]
async fn redis_serves_the_rendered_config_to_the_admin_only() {
    let rendered = render_instance("redis", "7.2", &[("maxmemory-policy", "allkeys-lru")]);
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::copy(rendered.file("redis", 0, "config/users.acl"), &acl).unwrap();
    let conf = std::fs::read_to_string(rendered.file("redis", 0, "config/redis.conf")).unwrap();
    let port = free_port();
    let conf = rewrite(
        &conf,
        &[
            ("bind ", "bind 127.0.0.1".into()),
            ("port ", format!("port {port}")),
            ("dir ", format!("dir {}", dir.path().display())),
            ("aclfile ", format!("aclfile {}", acl.display())),
        ],
    );
    let conf_file = dir.path().join("redis.conf");
    std::fs::write(&conf_file, conf).unwrap();
    let _server = Server(
        Command::new(DEFAULT_REDIS_SERVER_BIN)
            .arg(&conf_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs"),
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    let mut con = loop {
        match client.get_multiplexed_async_connection().await {
            Ok(con) => break con,
            Err(e) if Instant::now() > deadline => panic!("redis-server never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let anonymous = redis_command(&mut con, &["PING"]).await.unwrap_err();
    assert!(anonymous.to_string().contains("NOAUTH"), "{anonymous}");
    assert!(redis_command(&mut con, &["AUTH", "admin", "wrong"])
        .await
        .is_err());
    assert!(redis_command(&mut con, &["AUTH", "default", ""])
        .await
        .is_err());
    redis_command(&mut con, &["AUTH", "admin", PASSWORD])
        .await
        .unwrap();
    let pong = redis_command(&mut con, &["PING"]).await.unwrap();
    assert_eq!(pong, redis::Value::SimpleString("PONG".into()));
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
}

/// A command run as `user` (when root) with a clean environment.
fn as_user(program: impl AsRef<std::ffi::OsStr>, user: Option<&OsUser>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null());
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// Copies the rendered `postgres` job's `dest` files under `job`.
fn copy_job(rendered: &crate::harness::Rendered, job: &Path, dests: &[&str]) {
    for dest in dests {
        let to = job.join(dest);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(rendered.file("postgres", 0, dest), &to).unwrap();
    }
}

fn chown_tree(path: &Path, user: &OsUser) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), user);
        }
    }
}

/// Runs the job's `bin/setup` (initdb once, the admin role) as `user`.
fn run_setup(root: &Path, user: Option<&OsUser>) {
    let out = as_user("bash", user)
        .arg(root.join("job/bin/setup"))
        .env("JOB_DIR", root.join("job"))
        .env("STORE", root.join("store"))
        .env("PG_BIN", DEFAULT_POSTGRES_BIN_DIR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bin/setup failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn connect(
    port: u16,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("admin")
        .password(password)
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn postgres_set_up_by_the_job_serves_the_admin_as_a_superuser_with_a_password() {
    let rendered = render_instance("postgresql", "15.4", &[("max_connections", "50")]);
    let user = (sys::effective_uid() == 0).then(|| {
        sys::lookup_user("postgres")
            .unwrap()
            .expect("an OS user postgres")
    });
    let root = tempfile::tempdir().unwrap();
    let job = root.path().join("job");
    copy_job(
        &rendered,
        &job,
        &["bin/setup", "config/admin-password", "config/pg_hba.conf"],
    );
    std::fs::create_dir(root.path().join("store")).unwrap();
    std::fs::create_dir(root.path().join("run")).unwrap();
    let conf =
        std::fs::read_to_string(rendered.file("postgres", 0, "config/postgresql.conf")).unwrap();
    let port = free_port();
    let conf = rewrite(
        &conf,
        &[
            (
                "listen_addresses = ",
                "listen_addresses = '127.0.0.1'".into(),
            ),
            ("port = ", format!("port = {port}")),
            (
                "hba_file = ",
                format!("hba_file = '{}'", job.join("config/pg_hba.conf").display()),
            ),
            (
                "unix_socket_directories = ",
                format!(
                    "unix_socket_directories = '{}'",
                    root.path().join("run").display()
                ),
            ),
        ],
    );
    std::fs::write(job.join("config/postgresql.conf"), conf).unwrap();
    if let Some(user) = &user {
        chown_tree(root.path(), user);
    }
    run_setup(root.path(), user.as_ref());
    // Again on the initialized cluster: no second initdb, the role updated in place.
    run_setup(root.path(), user.as_ref());
    assert!(root.path().join("store/data/PG_VERSION").is_file());
    let setup_log = std::fs::read_to_string(root.path().join("store/setup.log")).unwrap();
    assert!(
        !setup_log.contains(PASSWORD),
        "the password is in the setup log"
    );
    let _server = Server(
        as_user(
            Path::new(DEFAULT_POSTGRES_BIN_DIR).join("postgres"),
            user.as_ref(),
        )
        .arg("-D")
        .arg(root.path().join("store/data"))
        .arg("-c")
        .arg(format!(
            "config_file={}",
            job.join("config/postgresql.conf").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres runs"),
    );
    let deadline = Instant::now() + START_TIMEOUT;
    let client = loop {
        match connect(port, PASSWORD).await {
            Ok(client) => break client,
            Err(e) if Instant::now() > deadline => panic!("postgres never let the admin in: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let row = client
        .query_one(
            "SELECT 1::int4, rolsuper, current_setting('max_connections') \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(row.get::<_, bool>(1), "the admin is not a superuser");
    assert_eq!(row.get::<_, String>(2), "50");
    let Err(wrong) = connect(port, "wrong").await else {
        panic!("a wrong password logs in");
    };
    assert_eq!(
        wrong.as_db_error().map(|e| e.code()),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{wrong:?}"
    );
}
