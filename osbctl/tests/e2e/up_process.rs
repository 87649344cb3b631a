//! `osbctl up` as its own OS process, the way people, systemd and container runtimes run it:
//! SIGTERM stops the whole stack in order; logs written to a file carry no colour codes and
//! can be JSON; the data dir and its files are private; the banner never prints the password;
//! `osbctl down` stops everything and `--purge` deletes the data dir.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn osbctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osbctl"));
    for var in [
        "OSB_PASSWORD",
        "OSB_PASSWORD_FILE",
        "OSB_LOG_FORMAT",
        "NO_COLOR",
        "OSB_BACKEND",
        "OSB_BOSH_CONFIG",
        "OSB_DIRECTOR_URL",
        "OSB_DIRECTOR_CA_FILE",
        "OSB_DIRECTOR_CLIENT",
        "OSB_DIRECTOR_CLIENT_SECRET_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `osbctl up` with its stderr in a file.
pub(crate) struct Up {
    pub(crate) child: Child,
    /// What it printed on stdout up to the end of the banner.
    pub(crate) banner: String,
    /// The broker URL from the banner.
    pub(crate) broker_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    /// Owns the directory (`None`: a restart on another `Up`'s directory).
    _dir: Option<tempfile::TempDir>,
}

impl Up {
    /// Starts `osbctl up --listen 127.0.0.1:0 --data-dir <tmp>/data <args>` and waits for its
    /// banner.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("osb-up-")
            .tempdir_in("/tmp")
            .unwrap();
        let data_dir = dir.path().join("data");
        let mut up = Self::start_at(&data_dir, args, env);
        up._dir = Some(dir);
        up
    }

    /// The same on an existing data dir (its log beside it, `up-<n>.log`).
    fn start_at(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        common::tls::install_default_provider();
        let data_dir = data_dir.to_path_buf();
        let parent = data_dir.parent().unwrap();
        let log = (0..)
            .map(|n| parent.join(format!("up-{n}.log")))
            .find(|p| !p.exists())
            .unwrap();
        let mut cmd = osbctl();
        cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("osbctl up starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                banner.push_str(&line);
                banner.push('\n');
                if line.contains("osbctl down") {
                    let _ = tx.send(banner.clone());
                }
            }
        });
        let banner = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("osbctl up printed no banner within 120 s; its log:\n{log}");
            }
        };
        let broker_url = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("broker URL:"))
            .expect("the banner has the broker URL")
            .trim()
            .to_string();
        Self {
            child,
            banner,
            broker_url,
            data_dir,
            log,
            _dir: None,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn sigterm(&self) {
        deployer::sys::send_signal(self.child.id(), deployer::sys::SIGTERM).unwrap();
    }

    /// Waits for the process to exit (60 s at most).
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "osbctl up still runs 60 s later; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A failed test leaves neither the stack nor its data servers behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
        deployer::stop_all_servers(&self.data_dir.join("deployer"));
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The JSON log lines (every line must be one).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn sigterm_stops_every_service_of_osbctl_up_broker_first_and_it_exits_0_with_every_port_closed() {
    let mut up = Up::start(&["--log-format", "json"], &[]);
    let broker_port: u16 = up.broker_url.rsplit(':').next().unwrap().parse().unwrap();
    let lines = json_lines(&up.log());
    let mut ports: Vec<u16> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("listening"))
        })
        .filter_map(|l| l["port"].as_u64())
        .map(|p| p as u16)
        .collect();
    ports.push(broker_port);
    ports.sort_unstable();
    ports.dedup();
    assert!(
        ports.len() >= 4,
        "broker, deployer and two SPIs listen: {ports:?}"
    );
    assert!(ports.iter().all(|p| port_open(*p)), "all listen: {ports:?}");

    // A second `osbctl up` on the same data dir is refused, naming the first.
    let mode_before = mode(&up.data_dir);
    let second = osbctl()
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&up.data_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("already runs on {}", up.data_dir.display()))
            && said.contains(&up.child.id().to_string()),
        "{said}"
    );
    assert_eq!(
        mode(&up.data_dir),
        mode_before,
        "the refused start left the data dir's mode alone"
    );

    up.sigterm();
    let status = up.wait();
    let log = up.log();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; log:\n{log}"
    );
    for port in &ports {
        assert!(!port_open(*port), "port {port} still open after SIGTERM");
    }
    let stopped: Vec<String> = json_lines(&log)
        .iter()
        .filter(|l| l["message"] == "server ended")
        .filter_map(|l| l["service"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        stopped,
        ["broker", "spi-keyvalue", "spi-postgres", "deployer"],
        "stopped in order, broker first; log:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "no escape codes in a log file");
}

#[test]
fn the_data_dir_is_private_and_the_banner_says_where_the_password_is_instead_of_printing_it() {
    let mut up = Up::start(&[], &[]);
    let root = &up.data_dir;
    let password = std::fs::read_to_string(root.join("secrets/broker-password")).unwrap();
    assert!(password.trim().len() >= 16);
    assert!(
        !up.banner.contains(password.trim()),
        "the banner prints the password:\n{}",
        up.banner
    );
    assert!(
        up.banner.contains("secrets/broker-password"),
        "the banner says where the password is:\n{}",
        up.banner
    );

    // 0700, or 0701 when the servers run as another OS user who must pass through.
    let dir_mode = mode(root);
    assert!(
        dir_mode == 0o700 || dir_mode == 0o701,
        "data dir mode {dir_mode:o}"
    );
    assert_eq!(mode(&root.join("secrets")), 0o700);
    // SQLite keeps its WAL and shared-memory files while the broker runs.
    for file in [
        "broker.sqlite",
        "broker.sqlite-wal",
        "broker.sqlite-shm",
        "osbctl.env",
        "osbctl-up.pid",
        "secrets/broker-password",
        "secrets/encryption-key",
    ] {
        assert_eq!(mode(&root.join(file)), 0o600, "{file}");
    }

    let log = up.log();
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes in a log file:\n{log}"
    );
    assert!(!log.contains(password.trim()), "the log has the password");
    up.sigterm();
    assert!(up.wait().success());
}

#[test]
fn a_password_file_keeps_the_password_off_the_command_line_and_osbctl_down_stops_everything() {
    let secret_dir = tempfile::tempdir().unwrap();
    let password_file = secret_dir.path().join("broker-password");
    let password = common::secret::random_password(24).expose().to_string();
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let file_arg = password_file.to_str().unwrap();
    let mut up = Up::start(&["--password-file", file_arg], &[]);
    let cmdline = deployer::sys::cmdline(up.child.id()).unwrap();
    assert!(!cmdline.contains(&password), "ps shows: {cmdline}");
    assert!(
        !up.banner.contains(&password) && up.banner.contains(file_arg),
        "the banner names the file, not the password:\n{}",
        up.banner
    );

    // A client reads the password from the same file.
    let client = |args: &[&str]| {
        let out = osbctl()
            .args(args)
            .args(["--password-file", file_arg])
            .env("OSB_BROKER_URL", &up.broker_url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "osbctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    client(&[
        "provision",
        "down-kv",
        "--service",
        "keyvalue",
        "--plan",
        "small",
    ]);
    let creds: Value = serde_json::from_str(&client(&["bind", "down-kv", "down-app"])).unwrap();
    let redis_port = creds["credentials"]["port"].as_u64().unwrap() as u16;
    assert!(port_open(redis_port));

    let data_dir = up.data_dir.to_str().unwrap().to_string();
    let down = osbctl()
        .args(["down", "--data-dir", &data_dir])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&down.stdout).into_owned();
    assert!(down.status.success(), "osbctl down: {said}");
    assert!(said.contains("stopped 1 data server"), "{said}");
    assert!(
        up.wait().success(),
        "osbctl up exits 0 when stopped by down"
    );
    assert!(!port_open(redis_port), "the Redis server is stopped");
    assert!(up.data_dir.exists(), "without --purge the data stays");

    // The next `osbctl up` brings the instance's server back, on its port, with its data.
    let mut again = Up::start_at(&up.data_dir, &["--password-file", file_arg], &[]);
    let start = Instant::now();
    while !port_open(redis_port) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the Redis server is back after a restart of the stack"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let down = osbctl()
        .args(["down", "--data-dir", &data_dir])
        .output()
        .unwrap();
    assert!(down.status.success());
    assert!(again.wait().success());
    assert!(!port_open(redis_port));

    let purge = osbctl()
        .args(["down", "--purge", "--data-dir", &data_dir])
        .output()
        .unwrap();
    assert!(purge.status.success());
    assert!(!up.data_dir.exists(), "--purge deletes the data dir");

    // --purge refuses a directory that is not a stack's.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("precious"), "x").unwrap();
    let refused = osbctl()
        .args(["down", "--purge", "--data-dir"])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(other.path().join("precious").exists());
}

/// The port of a `scheme://host:port` URL.
fn url_port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_to_the_process_stops_no_service_of_the_stack_on_its_own() {
    use tokio::signal::unix::{signal, SignalKind};
    // The owner's handler, as `osbctl up` has: the process survives the signal.
    let mut term = signal(SignalKind::terminate()).unwrap();
    let t = crate::helpers::TestStack::start().await;
    let s = t.stack();
    let mut ports: Vec<u16> = s
        .broker_settings
        .spis
        .iter()
        .map(|x| url_port(&x.url))
        .collect();
    ports.push(url_port(&s.deployer_url));
    ports.push(url_port(&s.broker_url));

    deployer::sys::send_signal(std::process::id(), deployer::sys::SIGTERM).unwrap();
    term.recv().await;
    // An actix server handling signals itself would be shutting down by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for port in &ports {
        assert!(port_open(*port), "port {port} closed by a SIGTERM");
    }
    t.deployments().await;
    s.osb_client()
        .unwrap()
        .catalog()
        .await
        .expect("the broker serves");
}

#[test]
fn logs_in_a_file_have_no_colour_codes_and_json_logs_are_one_object_per_line() {
    // Compact (the default): plain text when stderr is not a terminal.
    let mut up = Up::start(&[], &[]);
    up.sigterm();
    assert!(up.wait().success());
    let log = up.log();
    assert!(log.contains("broker listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in:\n{log}");

    // JSON, chosen by the environment form of --log-format: every line one object.
    let mut up = Up::start(&[], &[("OSB_LOG_FORMAT", "json")]);
    up.sigterm();
    assert!(up.wait().success());
    let lines = json_lines(&up.log());
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "broker listening" && l["level"] == "INFO"),
        "{lines:?}"
    );
}
