//! The crash test: the broker binary runs as its own process and is SIGKILLed at seeded random
//! moments (at least 30 times) while platforms drive provision, bind, unbind and deprovision
//! of several key-value and PostgreSQL instances; each kill is followed by a restart on the
//! same port. At the end no operation is stuck, every failed one says why, and the deployer
//! runs exactly the deployments of the instances that are still there, and a webhook receiver
//! got every operation's started and ended events, in order per instance.
//!
//! `CRASH_SEED` and `CRASH_KILLS` override the seed and the number of kills.

use crate::helpers::{free_address, spawn_services, PASSWORD, USERNAME};
use crate::process::{instance_rows, journal_rows};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x05b_c4a5;
const DEFAULT_KILLS: usize = 30;
/// Platforms driving instances at the same time; the first uses PostgreSQL, the second
/// sometimes, the others the key-value offering.
const PLATFORMS: usize = 5;
/// How long one request may keep failing (the broker is down) before the test gives up.
const REQUEST_PATIENCE: Duration = Duration::from_secs(120);
const LEASE_MS: u64 = 1_500;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An offering the platforms use.
#[derive(Clone, Copy)]
struct Offering {
    service_id: &'static str,
    plan_id: &'static str,
}

const KEYVALUE: Offering = Offering {
    service_id: spi_keyvalue::offering::SERVICE_ID,
    plan_id: spi_keyvalue::offering::PLAN_SMALL_ID,
};
const POSTGRES: Offering = Offering {
    service_id: spi_postgres::offering::SERVICE_ID,
    plan_id: spi_postgres::offering::PLAN_SMALL_ID,
};

/// A platform talking to the broker at a fixed address, repeating a request that got no
/// answer (the broker died under it) as a platform would: every OSB mutation is idempotent.
#[derive(Clone)]
struct Platform {
    http: reqwest::Client,
    address: String,
}

impl Platform {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let deadline = Instant::now() + REQUEST_PATIENCE;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.address))
                .basic_auth(USERNAME, Some(PASSWORD))
                .header("X-Broker-API-Version", "2.17")
                .timeout(Duration::from_secs(30));
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = match request.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(text) => {
                            Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            match answer {
                // 503: the broker is up but its SPI or deployer connection is not yet.
                Some((503, _)) | None => {}
                Some(answer) => return answer,
            }
            assert!(
                Instant::now() < deadline,
                "{method} {path}: no answer for {REQUEST_PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `path` (a last_operation) until the operation ended; its final state.
    async fn wait(&self, path: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (status, body) = self.send(reqwest::Method::GET, path, None).await;
            match (status, body["state"].as_str()) {
                (200, Some("in progress")) => {}
                (200, Some(state)) => return state.to_string(),
                // The resource is gone: a deletion that already ended.
                (410, _) => return "succeeded".into(),
                other => panic!("{path}: {other:?} {body}"),
            }
            assert!(Instant::now() < deadline, "{path} never ended");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn provision(&self, id: &str, offering: Offering) -> String {
        let body = json!({
            "service_id": offering.service_id,
            "plan_id": offering.plan_id,
            "organization_guid": "org", "space_guid": "space",
        });
        let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        let (status, answer) = self.send(reqwest::Method::PUT, &path, Some(&body)).await;
        match status {
            200 | 201 => "succeeded".into(),
            202 => {
                self.wait(&format!("/v2/service_instances/{id}/last_operation"))
                    .await
            }
            // A repeated PUT of a provision that failed meanwhile.
            409 => "failed".into(),
            other => panic!("provision {id}: {other} {answer}"),
        }
    }

    async fn bind(&self, id: &str, binding: &str, offering: Offering) -> String {
        let body = json!({"service_id": offering.service_id, "plan_id": offering.plan_id});
        let path = format!(
            "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true"
        );
        let (status, answer) = self.send(reqwest::Method::PUT, &path, Some(&body)).await;
        match status {
            200 | 201 => "succeeded".into(),
            202 => {
                self.wait(&format!(
                    "/v2/service_instances/{id}/service_bindings/{binding}/last_operation"
                ))
                .await
            }
            // The SPI refused, or a bind that failed: no binding.
            400 | 409 | 422 => "failed".into(),
            other => panic!("bind {binding}: {other} {answer}"),
        }
    }

    async fn unbind(&self, id: &str, binding: &str, offering: Offering) -> String {
        let path = format!(
            "/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true&service_id={}&plan_id={}",
            offering.service_id, offering.plan_id
        );
        loop {
            let (status, answer) = self.send(reqwest::Method::DELETE, &path, None).await;
            return match status {
                200 | 410 => "succeeded".into(),
                202 => {
                    self.wait(&format!(
                        "/v2/service_instances/{id}/service_bindings/{binding}/last_operation"
                    ))
                    .await
                }
                // The bind is still being undone by a restarted broker.
                422 => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                other => panic!("unbind {binding}: {other} {answer}"),
            };
        }
    }

    /// Deprovisions until the instance is gone (a platform's orphan mitigation repeats it).
    async fn deprovision(&self, id: &str, offering: Offering) {
        let path = format!(
            "/v2/service_instances/{id}?accepts_incomplete=true&service_id={}&plan_id={}",
            offering.service_id, offering.plan_id
        );
        loop {
            let (status, answer) = self.send(reqwest::Method::DELETE, &path, None).await;
            match status {
                410 => return,
                202 => {
                    let state = self
                        .wait(&format!("/v2/service_instances/{id}/last_operation"))
                        .await;
                    if state == "succeeded" {
                        return;
                    }
                }
                // Another operation of the instance still runs.
                422 => tokio::time::sleep(Duration::from_millis(200)).await,
                other => panic!("deprovision {id}: {other} {answer}"),
            }
        }
    }
}

/// What the platforms did.
#[derive(Debug, Default)]
struct Tally {
    rounds: usize,
    outcomes: BTreeMap<String, usize>,
    /// Instances the platforms kept (not deprovisioned).
    kept: BTreeSet<String>,
}

impl Tally {
    fn count(&mut self, what: &str, state: &str) {
        *self.outcomes.entry(format!("{what} {state}")).or_default() += 1;
    }
}

/// One platform: provision → bind → (unbind) → (deprovision), over and over until `stop`.
async fn drive(
    platform: Platform,
    index: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(index as u64));
    while !stop.load(Ordering::SeqCst) {
        let offering = match index {
            0 => POSTGRES,
            1 if rng.random_bool(0.5) => POSTGRES,
            _ => KEYVALUE,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let provisioned = platform.provision(&id, offering).await;
        tally.lock().unwrap().count("provision", &provisioned);
        let mut keep = false;
        if provisioned == "succeeded" {
            let binding = uuid::Uuid::new_v4().to_string();
            let bound = platform.bind(&id, &binding, offering).await;
            tally.lock().unwrap().count("bind", &bound);
            if bound == "succeeded" && rng.random_bool(0.7) {
                let unbound = platform.unbind(&id, &binding, offering).await;
                tally.lock().unwrap().count("unbind", &unbound);
            }
            // Keep a few key-value instances to the end.
            keep = offering.service_id == KEYVALUE.service_id && rng.random_bool(0.2);
        }
        if keep {
            tally.lock().unwrap().kept.insert(id);
        } else {
            platform.deprovision(&id, offering).await;
            tally.lock().unwrap().count("deprovision", "succeeded");
        }
        tally.lock().unwrap().rounds += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_killed_at_thirty_random_moments_loses_no_operation_and_leaves_no_stray_deployment(
) {
    let seed = env_or("CRASH_SEED", DEFAULT_SEED);
    let kills_wanted = env_or("CRASH_KILLS", DEFAULT_KILLS);
    let started = Instant::now();
    let mut app = spawn_services(true).await;
    let mut settings = app.broker_settings();
    settings.listen = free_address();
    settings.worker.lease_ms = LEASE_MS;
    settings.worker.sync_timeout_ms = 300;
    settings.worker.retry_after_secs = 1;
    settings.reconcile.interval_secs = 0;
    let receiver = crate::webhook_receiver::Receiver::start();
    settings.webhooks = crate::webhook_support::crash_settings(&receiver.url());
    app.start_broker_process(&settings).await;

    let platform = Platform {
        http: reqwest::Client::new(),
        address: app.address.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let drivers: Vec<_> = (0..PLATFORMS)
        .map(|i| {
            tokio::spawn(drive(
                platform.clone(),
                i,
                seed,
                Arc::clone(&stop),
                Arc::clone(&tally),
            ))
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..kills_wanted {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
        app.kill_broker_process().await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        app.start_broker_process(&settings).await;
    }
    stop.store(true, Ordering::SeqCst);
    for driver in drivers {
        driver.await.expect("a platform failed");
    }

    // Every operation ended, and every failure says why.
    let journal = journal_rows(&app.database_path());
    let mut by_outcome: BTreeMap<(String, String), usize> = BTreeMap::new();
    for op in &journal {
        assert!(
            op.state.as_str() == "succeeded" || op.state.as_str() == "failed",
            "operation {} ({} of {}) is {:?} at step {}",
            op.id,
            op.kind,
            op.instance_id,
            op.state,
            op.step
        );
        if op.state.as_str() == "failed" {
            assert!(!op.description.trim().is_empty(), "{op:?} failed silently");
        }
        *by_outcome
            .entry((op.kind.clone(), op.state.as_str().to_string()))
            .or_default() += 1;
    }

    // Every operation's webhook events arrived, in order per instance.
    crate::webhook_support::assert_every_operation_s_events_arrived(
        &receiver,
        &journal,
        &app.database_path(),
    )
    .await;

    // The deployer runs exactly the deployments of the instances still there, which are the
    // ones the platforms kept.
    let instances = instance_rows(&app.database_path());
    let live: BTreeSet<String> = instances
        .iter()
        .filter(|i| i.state.as_str() != "deleted")
        .map(|i| i.id.clone())
        .collect();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert_eq!(live, tally.kept, "live instances in the database");
    let wanted: BTreeSet<String> = instances
        .iter()
        .filter(|i| i.state.as_str() != "deleted")
        .map(|i| {
            i.deployment_name
                .clone()
                .expect("a kept instance names its deployment")
        })
        .collect();
    let deployments = app.deployments().await;
    let held: BTreeSet<String> = deployments.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(held, wanted, "deployments: {deployments:?}");
    assert!(instances
        .iter()
        .filter(|i| i.state.as_str() != "deleted")
        .all(|i| i.state.as_str() == "ready"));

    // The broker's own reconciliation agrees.
    let (code, report) = app.broker_command_output(&settings, &["reconcile"]).await;
    assert_eq!(code, Some(0), "{report}");

    let log = std::fs::read_to_string(app.log_path()).unwrap();
    assert!(!log.contains("panicked"), "a broker panicked");
    // Operations a killed broker left in progress, finished by the next one.
    let resumed = journal.iter().filter(|op| op.attempts > 1).count();
    let postgres = instances
        .iter()
        .filter(|i| i.service_id == POSTGRES.service_id)
        .count();
    assert!(resumed > 0, "no kill hit an operation in flight");
    println!(
        "crash test (seed {seed:#x}): {kills_wanted} SIGKILLs, {} platform rounds, {} operations ({resumed} resumed by a restarted broker) {by_outcome:?}, platform outcomes {:?}, {} instances ({postgres} PostgreSQL), {} kept, {:.0?}",
        tally.rounds,
        journal.len(),
        tally.outcomes,
        instances.len(),
        tally.kept.len(),
        started.elapsed()
    );
    for id in &tally.kept {
        platform.deprovision(id, KEYVALUE).await;
    }
    assert!(app.deployments().await.is_empty());
    app.stop_all().await;
}
