//! The broker as its own OS process (`CARGO_BIN_EXE_broker`): a TOML config file written from
//! the test's `Settings`, stderr appended to a log file the tests search, SIGKILL / SIGTERM,
//! and the maintenance commands (`broker reconcile`, `broker reencrypt`).

use crate::helpers::TestApp;
use broker::config::Settings;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a started broker may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running broker process; SIGKILLed when dropped.
pub struct BrokerProcess {
    child: tokio::process::Child,
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn path(p: &Path) -> String {
    quoted(&p.display().to_string())
}

/// The settings as the broker's TOML config file.
pub fn config_toml(s: &Settings) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "listen = {}", quoted(&s.listen));
    let _ = writeln!(t, "catalog_refresh_secs = {}", s.catalog_refresh_secs);
    let _ = writeln!(t, "log_format = \"compact\"");
    let _ = writeln!(t, "[auth]\nusername = {}", quoted(&s.auth.username));
    let _ = writeln!(t, "password = {}", quoted(s.auth.password.expose()));
    let _ = writeln!(t, "[database]\nurl = {}", quoted(&s.database.url));
    let _ = writeln!(t, "[tls]\nca_file = {}", path(&s.tls.ca_file));
    let _ = writeln!(t, "cert_file = {}", path(&s.tls.cert_file));
    let _ = writeln!(t, "key_file = {}", path(&s.tls.key_file));
    let _ = writeln!(t, "[deployer]\nurl = {}", quoted(&s.deployer.url));
    let w = &s.worker;
    let _ = writeln!(
        t,
        "[worker]\npoll_interval_ms = {}\nlease_ms = {}\nretry_after_secs = {}\nsync_timeout_ms = {}\ncall_timeout_ms = {}\nmax_operation_secs = {}",
        w.poll_interval_ms, w.lease_ms, w.retry_after_secs, w.sync_timeout_ms, w.call_timeout_ms, w.max_operation_secs
    );
    if let Some(identity) = &w.identity {
        let _ = writeln!(t, "identity = {}", quoted(identity));
    }
    let _ = writeln!(
        t,
        "[reconcile]\ninterval_secs = {}",
        s.reconcile.interval_secs
    );
    let _ = writeln!(
        t,
        "[encryption]\ncurrent = {}",
        quoted(&s.encryption.current)
    );
    for key in &s.encryption.keys {
        let _ = writeln!(
            t,
            "[[encryption.keys]]\nid = {}\nkey = {}",
            quoted(&key.id),
            quoted(key.key.expose())
        );
    }
    for spi in &s.spis {
        let _ = writeln!(
            t,
            "[[spis]]\nname = {}\nurl = {}",
            quoted(&spi.name),
            quoted(&spi.url)
        );
    }
    write_webhooks(&mut t, &s.webhooks);
    t
}

/// The `[webhooks]` table (written only when endpoints are configured).
fn write_webhooks(t: &mut String, h: &broker::webhooks::WebhookSettings) {
    if h.endpoints.is_empty() {
        return;
    }
    let _ = writeln!(
        t,
        "[webhooks]\npoll_interval_ms = {}\nlease_ms = {}\nkeep_delivered_secs = {}",
        h.poll_interval_ms, h.lease_ms, h.keep_delivered_secs
    );
    let r = &h.retry;
    let _ = writeln!(
        t,
        "[webhooks.retry]\ninitial_backoff_ms = {}\nmax_backoff_ms = {}\nmax_attempts = {}",
        r.initial_backoff_ms, r.max_backoff_ms, r.max_attempts
    );
    for e in &h.endpoints {
        let events: Vec<String> = e.events.iter().map(|k| quoted(k)).collect();
        let _ = writeln!(
            t,
            "[[webhooks.endpoints]]\nname = {}\nurl = {}\nevents = [{}]\ntimeout_ms = {}",
            quoted(&e.name),
            quoted(&e.url),
            events.join(", "),
            e.timeout_ms
        );
        if let Some(secret) = &e.secret {
            let _ = writeln!(t, "secret = {}", quoted(secret.expose()));
        }
        if let Some(file) = &e.secret_file {
            let _ = writeln!(t, "secret_file = {}", path(file));
        }
    }
}

impl TestApp {
    /// The broker's config file (rewritten at every start).
    pub fn config_path(&self) -> PathBuf {
        self.env.state.path().join("broker.toml")
    }

    /// Everything every broker process of this test wrote to stderr.
    pub fn log_path(&self) -> PathBuf {
        self.env.state.path().join("broker.log")
    }

    fn write_config(&self, settings: &Settings) {
        std::fs::write(self.config_path(), config_toml(settings)).unwrap();
    }

    fn broker_command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_broker"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        cmd.env(
            "RUST_LOG",
            "debug,h2=info,hyper=info,rustls=info,reqwest=info",
        )
        .env_remove("BROKER_CONFIG")
        .stdin(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
        cmd
    }

    /// Starts the broker binary with `settings` (whose `listen` must name a port, so a
    /// restart finds it again) and waits until it answers.
    pub async fn start_broker_process(&mut self, settings: &Settings) {
        assert!(self.process.is_none(), "stop the broker process first");
        assert!(!settings.listen.ends_with(":0"), "a fixed port is needed");
        self.write_config(settings);
        let child = self
            .broker_command()
            .arg(self.config_path())
            .spawn()
            .unwrap();
        self.process = Some(BrokerProcess { child });
        self.address = format!("http://{}", settings.listen);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let health = self
                .http
                .get(format!("{}/healthz", self.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            let exited = self.process.as_mut().unwrap().child.try_wait().unwrap();
            assert!(exited.is_none(), "the broker exited at start: {exited:?}");
            assert!(Instant::now() < deadline, "the broker did not come up");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILLs the broker process and reaps it.
    pub async fn kill_broker_process(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Sends SIGTERM and waits for the broker to exit; its exit status.
    pub async fn terminate_broker_process(&mut self) -> ExitStatus {
        let mut process = self.process.take().expect("a broker process runs");
        let pid = process.child.id().expect("not reaped yet");
        deployer::sys::send_signal(pid, deployer::sys::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(30), process.child.wait())
            .await
            .expect("the broker stops within 30 s of SIGTERM")
            .unwrap()
    }

    /// Runs `broker <args…> <config>` with `settings` to the end; (exit code, stdout).
    pub async fn broker_command_output(
        &self,
        settings: &Settings,
        args: &[&str],
    ) -> (Option<i32>, String) {
        self.write_config(settings);
        let output = self
            .broker_command()
            .args(args)
            .arg(self.config_path())
            .stdout(Stdio::piped())
            .output()
            .await
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

impl BrokerProcess {
    /// SIGKILL, then reap.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Every row of the broker's journal, read straight from its SQLite file.
pub fn journal_rows(db: &Path) -> Vec<broker::store::models::OperationRow> {
    use broker::store::models::OperationRow;
    use broker::store::schema::operations;
    use diesel::prelude::*;
    let mut conn = diesel::SqliteConnection::establish(&db.display().to_string()).unwrap();
    operations::table
        .select(OperationRow::as_select())
        .order(operations::created_at_ms.asc())
        .load(&mut conn)
        .unwrap()
}

/// Every instance row, read straight from the SQLite file.
pub fn instance_rows(db: &Path) -> Vec<broker::store::models::InstanceRow> {
    use broker::store::models::InstanceRow;
    use broker::store::schema::service_instances;
    use diesel::prelude::*;
    let mut conn = diesel::SqliteConnection::establish(&db.display().to_string()).unwrap();
    service_instances::table
        .select(InstanceRow::as_select())
        .load(&mut conn)
        .unwrap()
}

impl TestApp {
    /// The deployment name the broker stored for instance `id`.
    pub fn deployment_of(&self, id: &str) -> String {
        instance_rows(&self.database_path())
            .into_iter()
            .find(|i| i.id == id)
            .and_then(|i| i.deployment_name)
            .unwrap()
    }
}
