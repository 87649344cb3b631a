//! `osbctl bench --store`: `GET last_operation` requests per second and the broker's memory
//! (RSS) with many instances in its state database, on SQLite and on PostgreSQL. The rows are
//! seeded through the store API; the broker under load runs as its own OS process (this binary
//! again, with `--serve-broker`), so its RSS is the broker's alone. PostgreSQL is a throwaway
//! server started for the run ([`pg`]).

mod pg;

use crate::bench::BenchArgs;
use crate::stack::{Stack, StackOptions};
use anyhow::{bail, Context};
use broker::domain::instance::InstanceState;
use broker::store::models::{InstanceRow, OperationRow};
use broker::store::{now_ms, Outcome, Store};
use common::osb::OperationState;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seeding writers running at once.
const SEED_WRITERS: usize = 8;

/// Runs the broker alone from a settings file (JSON) written by [`run`].
pub async fn serve_broker(settings: &Path) -> anyhow::Result<()> {
    let settings: broker::config::Settings = serde_json::from_slice(&std::fs::read(settings)?)?;
    let app = broker::startup::Application::build(settings).await?;
    app.run_until_stopped().await
}

/// Seeds `args.instances` instances on each backend and measures a broker serving them.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stack = Stack::start(StackOptions::new(dir.path().join("stack"))).await?;
    let result = run_on(&stack, args, dir.path()).await;
    stack.stop().await;
    result
}

async fn run_on(stack: &Stack, args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    let pg = pg::BenchPostgres::start().await?;
    let backends = [
        (
            "sqlite",
            format!("sqlite://{}", dir.join("bench.sqlite").display()),
        ),
        ("postgres", pg.create_database().await?),
    ];
    println!(
        "last_operation: {} instances, {} s of load, {} connections",
        args.instances, args.seconds, args.concurrency
    );
    for (name, url) in backends {
        let ids = seed(&url, args.instances).await?;
        let mut settings = stack.broker_settings.clone();
        settings.database.url = url;
        let broker = BrokerProcess::start(settings, &dir.join(format!("{name}.json"))).await?;
        let idle = broker.memory()?;
        let rps = last_operation_load(&broker.url, stack, &ids, args).await;
        let loaded = broker.memory();
        broker.stop().await;
        let (rps, loaded) = (rps?, loaded?);
        println!(
            "{name:>8}: {rps:.0} req/s; broker RSS {:.1} MiB idle, {:.1} MiB after the load (peak {:.1} MiB)",
            mib(idle.rss_kib),
            mib(loaded.rss_kib),
            mib(loaded.peak_kib)
        );
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Inserts `count` ready instances, each with its succeeded provision, and returns their ids.
async fn seed(url: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let store = Store::connect(url).await?;
    let ids: Arc<Vec<String>> = Arc::new((0..count).map(|n| format!("bench-{n:05}")).collect());
    let start = Instant::now();
    let mut writers = Vec::new();
    for w in 0..SEED_WRITERS {
        let (store, ids) = (store.clone(), Arc::clone(&ids));
        writers.push(tokio::spawn(async move {
            for id in ids.iter().skip(w).step_by(SEED_WRITERS) {
                let outcome = store
                    .create_instance(
                        InstanceRow::bare(
                            id,
                            spi_postgres::offering::SERVICE_ID,
                            spi_postgres::offering::PLAN_SMALL_ID,
                            InstanceState::Ready,
                            now_ms(),
                        ),
                        provision(id),
                    )
                    .await?;
                if outcome != Outcome::Done {
                    bail!("seeding {id}: {outcome:?}");
                }
            }
            Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    eprintln!(
        "seeded {count} instances in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(Arc::unwrap_or_clone(ids))
}

fn provision(id: &str) -> OperationRow {
    let now = now_ms();
    OperationRow {
        id: format!("{id}-provision"),
        instance_id: id.to_string(),
        binding_id: None,
        kind: "provision".into(),
        state: OperationState::Succeeded,
        description: "seeded by osbctl bench".into(),
        step: "done".into(),
        payload: "{}".into(),
        request_id: None,
        originating_identity: None,
        lease_owner: None,
        lease_expires_ms: None,
        attempts: 0,
        created_at_ms: now,
        updated_at_ms: now,
        finished_at_ms: Some(now),
    }
}

/// Resident and peak resident memory of a process, KiB.
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

/// The broker as a child process of this binary.
struct BrokerProcess {
    child: tokio::process::Child,
    url: String,
}

impl BrokerProcess {
    /// Writes `settings` (mode 0600: it holds the password and key) and starts the broker on a
    /// free port; returns once it answers.
    async fn start(
        mut settings: broker::config::Settings,
        file: &Path,
    ) -> anyhow::Result<BrokerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        settings.listen = format!("127.0.0.1:{port}");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)?
            .write_all(&serde_json::to_vec(&settings)?)?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("bench")
            .arg("--serve-broker")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the broker process")?;
        let broker = BrokerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/v2/catalog", broker.url))
                .send()
                .await
                .is_ok();
            if ready {
                return Ok(broker);
            }
            if Instant::now() > deadline {
                bail!("the broker process did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.child.id().context("the broker process ended")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
            Ok(line
                .split_whitespace()
                .nth(1)
                .context("malformed /proc status")?
                .parse()?)
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Requests per second of `GET last_operation` of instances spread over `ids`, with
/// `args.concurrency` keep-alive connections for `args.seconds`.
async fn last_operation_load(
    url: &str,
    stack: &Stack,
    ids: &[String],
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (client, ids, count) = (client.clone(), Arc::clone(&ids), Arc::clone(&count));
        let (url, user, password) = (
            url.to_string(),
            stack.username.clone(),
            stack.password.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Walk the ids with a prime stride, from a different start each.
            let mut n = worker * 7919;
            while Instant::now() < deadline {
                let id = &ids[n % ids.len()];
                n += 7919;
                let answer = client
                    .get(format!("{url}/v2/service_instances/{id}/last_operation"))
                    .basic_auth(&user, Some(&password))
                    .header("X-Broker-API-Version", "2.17")
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("last_operation of {id} answered {}", answer.status());
                }
                answer.bytes().await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
