//! `osbctl bench`: the figures issue targets are judged by. Catalog requests per second through
//! the broker next to a bare actix-web handler serving the same bytes; the time from
//! `PUT /v2/service_instances` to the first successful query next to a raw initdb + start +
//! create role + query; and the time from `PUT` to the first key-value command through a fresh
//! binding next to a raw `redis-server` start + ACL user + command, with the same binaries on the
//! same machine. Everything runs on loopback in a temporary dir.

use crate::osb_client::{OsbClient, Target};
use crate::stack::{Stack, StackOptions};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use common::osb::{BindRequest, ProvisionRequest};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `osbctl bench` options.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Seconds of load per catalog measurement.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent connections of the catalog load.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Provision runs (and raw runs) to take the median of.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Only this section (default: all of them).
    #[arg(long, value_enum)]
    pub service: Option<Section>,
    /// Only the state store benchmark: last_operation with many instances in the database,
    /// on SQLite and on PostgreSQL (see `bench_store`).
    #[arg(long)]
    pub store: bool,
    /// Instances seeded for `--store`.
    #[arg(long, default_value_t = 10_000)]
    pub instances: usize,
    /// Internal to `--store`: run only the broker, from this settings file.
    #[arg(long, hide = true)]
    pub serve_broker: Option<std::path::PathBuf>,
}

/// A section of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// `GET /v2/catalog` throughput.
    Catalog,
    /// PostgreSQL: provision → first query.
    Postgresql,
    /// Key-value (Redis): provision → first command.
    Keyvalue,
}

/// Runs every benchmark and prints the figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(settings) = &args.serve_broker {
        return crate::bench_store::serve_broker(settings).await;
    }
    if args.store {
        return crate::bench_store::run(&args).await;
    }
    let dir = tempfile::tempdir()?;
    let stack = Stack::start(StackOptions {
        poll_interval_ms: 50,
        ..StackOptions::new(dir.path().join("stack"))
    })
    .await?;
    let result = run_on(&stack, &args, dir.path()).await;
    stack.stop().await;
    result
}

async fn run_on(stack: &Stack, args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    let wanted = |section| args.service.is_none_or(|s| s == section);
    let osb = stack.osb_client()?;
    if wanted(Section::Catalog) {
        catalog_section(stack, &osb, args).await?;
    }
    for service in [Service::Postgresql, Service::Keyvalue] {
        if !wanted(service.section()) {
            continue;
        }
        let mut ours = Vec::new();
        let mut raw = Vec::new();
        for i in 0..args.runs {
            let name = format!("bench-{}-{i}", service.name());
            ours.push(provision_to_first_use(&osb, service, &name).await?);
            raw.push(service.raw(&dir.join(format!("raw-{name}"))).await?);
        }
        report(service, &mut ours, &mut raw);
    }
    Ok(())
}

async fn catalog_section(stack: &Stack, osb: &OsbClient, args: &BenchArgs) -> anyhow::Result<()> {
    let catalog = osb.call(reqwest::Method::GET, "/v2/catalog", None).await?;
    let bytes = serde_json::to_vec(&catalog.body)?;
    println!(
        "catalog: {} bytes, {} s per run, {} connections",
        bytes.len(),
        args.seconds,
        args.concurrency
    );

    let broker_rps = catalog_load(
        &format!("{}/v2/catalog", stack.broker_url),
        Some((&stack.username, &stack.password)),
        args,
    )
    .await?;
    let bare = bare_server(bytes)?;
    let bare_rps = catalog_load(&format!("{}/v2/catalog", bare.0), None, args).await?;
    bare.1.stop(true).await;
    println!(
        "GET /v2/catalog: broker {broker_rps:.0} req/s, bare actix-web {bare_rps:.0} req/s, ratio {:.2} (target >= 0.60)",
        broker_rps / bare_rps
    );
    Ok(())
}

/// Prints the medians of a timed section next to its raw reference, with every run.
fn report(service: Service, ours: &mut [f64], raw: &mut [f64]) {
    let (o, r) = (median(ours), median(raw));
    let runs = |v: &[f64]| v.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>();
    let (ours_label, raw_label, target) = match service {
        Service::Postgresql => (
            "provision → first query",
            "raw initdb+start+create role+query",
            " (target <= 1.30)",
        ),
        Service::Keyvalue => (
            "keyvalue provision → first command",
            "raw redis-server start+ACL user+command",
            "",
        ),
    };
    println!(
        "{ours_label}: broker {o:.2} s, {raw_label} {r:.2} s, ratio {:.2}{target}; runs: broker {:?}, raw {:?}",
        o / r,
        runs(ours),
        runs(raw),
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Requests per second of `GET url` with `concurrency` keep-alive connections for `seconds`.
async fn catalog_load(
    url: &str,
    auth: Option<(&str, &str)>,
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let mut req = client.get(url).header("X-Broker-API-Version", "2.17");
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let req = req.build()?;
        let (client, count) = (client.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client.execute(req.try_clone().expect("no body")).await?;
                if !r.status().is_success() {
                    bail!("catalog answered {}", r.status());
                }
                r.bytes().await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// A bare actix-web server answering `GET /v2/catalog` with fixed bytes.
fn bare_server(bytes: Vec<u8>) -> anyhow::Result<(String, actix_web::dev::ServerHandle)> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let body = web::Bytes::from(bytes);
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/v2/catalog",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .bind("127.0.0.1:0")?;
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((format!("http://127.0.0.1:{port}"), handle))
}

/// A data service the benchmark provisions.
#[derive(Debug, Clone, Copy)]
enum Service {
    Postgresql,
    Keyvalue,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Keyvalue => "keyvalue",
        }
    }

    fn section(self) -> Section {
        match self {
            Self::Postgresql => Section::Postgresql,
            Self::Keyvalue => Section::Keyvalue,
        }
    }

    /// Seconds for the same result without the broker: a raw server start + user + first use.
    async fn raw(self, dir: &Path) -> anyhow::Result<f64> {
        match self {
            Self::Postgresql => raw_postgres(dir).await,
            Self::Keyvalue => raw_redis(dir).await,
        }
    }

    /// The first real use of a binding's `uri`: a query, or a write.
    async fn first_use(self, uri: &str) -> anyhow::Result<()> {
        match self {
            Self::Postgresql => {
                let (client, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls).await?;
                let conn = tokio::spawn(conn);
                client.simple_query("SELECT 1").await?;
                drop(client);
                let _ = conn.await;
            }
            Self::Keyvalue => {
                let mut con = redis::Client::open(uri)?
                    .get_multiplexed_async_connection()
                    .await?;
                redis::cmd("SET")
                    .arg("bench")
                    .arg("1")
                    .query_async::<()>(&mut con)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Seconds from PUT instance to the first successful use through a fresh binding; then the
/// instance is removed again (not timed).
async fn provision_to_first_use(
    osb: &OsbClient,
    service: Service,
    instance_id: &str,
) -> anyhow::Result<f64> {
    let catalog = osb.catalog().await?;
    let (service_id, plan_id) = crate::cli::resolve(&catalog, service.name(), "small")?;
    let binding_id = format!("{instance_id}-binding");
    let start = Instant::now();
    let a = osb
        .provision(
            instance_id,
            &ProvisionRequest {
                service_id: Some(service_id.clone()),
                plan_id: Some(plan_id.clone()),
                organization_guid: Some("bench".into()),
                space_guid: Some("bench".into()),
                ..Default::default()
            },
        )
        .await?;
    osb.wait(
        Target::Instance(instance_id),
        a.operation(),
        Duration::from_millis(20),
        Duration::from_secs(300),
        |_| {},
    )
    .await?;
    let b = osb
        .bind(
            instance_id,
            &binding_id,
            &BindRequest {
                service_id: Some(service_id.clone()),
                plan_id: Some(plan_id.clone()),
                ..Default::default()
            },
        )
        .await?;
    let uri = b
        .body
        .pointer("/credentials/uri")
        .and_then(Value::as_str)
        .context("binding has no uri")?
        .to_string();
    service.first_use(&uri).await?;
    let elapsed = start.elapsed().as_secs_f64();
    osb.unbind(instance_id, &binding_id, &service_id, &plan_id)
        .await?;
    let d = osb.deprovision(instance_id, &service_id, &plan_id).await?;
    osb.wait(
        Target::Instance(instance_id),
        d.operation(),
        Duration::from_millis(50),
        Duration::from_secs(300),
        |_| {},
    )
    .await?;
    Ok(elapsed)
}

/// The OS user the deployer runs servers as (`None`: its own).
fn server_user() -> anyhow::Result<Option<deployer::sys::OsUser>> {
    Ok(match deployer::default_run_as_user() {
        Some(name) => deployer::sys::lookup_user(&name)?,
        None => None,
    })
}

/// Hands `path` to `user` (a no-op without one).
fn owned_by(user: Option<&deployer::sys::OsUser>, path: &Path) -> std::io::Result<()> {
    match user {
        Some(u) => std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid)),
        None => Ok(()),
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Seconds for a raw initdb + start + CREATE ROLE + first query as the login role, with the
/// same binaries and OS user the deployer uses.
async fn raw_postgres(dir: &Path) -> anyhow::Result<f64> {
    use std::os::unix::process::CommandExt;
    let bin = Path::new(deployer::config::DEFAULT_POSTGRES_BIN_DIR);
    let user = server_user()?;
    let owned = |p: &Path| owned_by(user.as_ref(), p);
    std::fs::create_dir_all(dir)?;
    owned(dir)?;
    let pgdata = dir.join("pgdata");
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, "rawadmin")?;
    owned(&pwfile)?;
    let port = free_port()?;
    let as_user = |prog: &str| {
        let mut c = std::process::Command::new(bin.join(prog));
        if let Some(u) = &user {
            c.uid(u.uid).gid(u.gid);
        }
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let start = Instant::now();
    let status = as_user("initdb")
        .args(["-D"])
        .arg(&pgdata)
        .args(["-U", "rawadmin", "-A", "scram-sha-256", "-E", "UTF8"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .status()?;
    if !status.success() {
        bail!("raw initdb failed");
    }
    let mut server = as_user("postgres")
        .arg("-D")
        .arg(&pgdata)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .spawn()?;
    let admin_uri = format!("postgresql://rawadmin:rawadmin@127.0.0.1:{port}/postgres");
    let admin = loop {
        match tokio_postgres::connect(&admin_uri, tokio_postgres::NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                break c;
            }
            Err(_) if start.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => {
                let _ = server.kill();
                return Err(e.into());
            }
        }
    };
    admin
        .simple_query("CREATE ROLE app LOGIN PASSWORD 'apppw'")
        .await?;
    admin.simple_query("CREATE DATABASE app OWNER app").await?;
    let (c, conn) = tokio_postgres::connect(
        &format!("postgresql://app:apppw@127.0.0.1:{port}/app"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    c.simple_query("SELECT 1").await?;
    let elapsed = start.elapsed().as_secs_f64();
    drop((c, admin));
    deployer::sys::send_signal(server.id(), deployer::sys::SIGINT)?;
    let _ = server.wait();
    std::fs::remove_dir_all(dir)?;
    Ok(elapsed)
}

/// Seconds for a raw `redis-server` start (append-only persistence, an admin in an ACL file, as
/// the deployer configures it) + `ACL SETUSER` of an application user + its first command, with
/// the same binary and OS user the deployer uses.
async fn raw_redis(dir: &Path) -> anyhow::Result<f64> {
    use std::os::unix::process::CommandExt;
    let user = server_user()?;
    let owned = |p: &Path| owned_by(user.as_ref(), p);
    let port = free_port()?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    for p in [dir, data.as_path()] {
        owned(p)?;
    }
    let acl = dir.join("users.acl");
    std::fs::write(
        &acl,
        "user default off\nuser rawadmin on >rawadmin ~* &* +@all\n",
    )?;
    owned(&acl)?;
    let config = dir.join("redis.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir {}\naclfile {}\nappendonly yes\n",
            data.display(),
            acl.display()
        ),
    )?;
    let start = Instant::now();
    let mut cmd = std::process::Command::new(deployer::config::DEFAULT_REDIS_SERVER_BIN);
    cmd.arg(&config).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(u) = &user {
        cmd.uid(u.uid).gid(u.gid);
    }
    let mut server = cmd.spawn()?;
    let result = async {
        let admin = redis::Client::open(format!("redis://rawadmin:rawadmin@127.0.0.1:{port}"))?;
        let mut admin = loop {
            match admin.get_multiplexed_async_connection().await {
                Ok(con) => break con,
                Err(_) if start.elapsed() < Duration::from_secs(60) => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Err(e) => return Err(anyhow::Error::new(e)),
            }
        };
        redis::cmd("ACL")
            .arg(["SETUSER", "app", "on", ">apppw"].as_slice())
            .arg(spi_keyvalue::binding::BINDING_RULES)
            .query_async::<()>(&mut admin)
            .await?;
        Service::Keyvalue
            .first_use(&format!("redis://app:apppw@127.0.0.1:{port}"))
            .await?;
        Ok(start.elapsed().as_secs_f64())
    }
    .await;
    deployer::sys::send_signal(server.id(), deployer::sys::SIGTERM)?;
    let _ = server.wait();
    std::fs::remove_dir_all(dir)?;
    result
}
