//! The README walkthrough through the deployer's docker backend, for both offerings:
//! provision → bind → use → unbind → deprovision, and then no container or volume is left.
//! Skipped, with the reason printed, where no Docker engine answers.

use crate::helpers::TestStack;
use common::osb::{BindRequest, ProvisionRequest};
use osbctl::osb_client::{OsbClient, Target};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::docker::{docker, engine_with_data_images, local_image_settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where a test reaches a server the credentials name (identity, or a published port).
pub type Reach<'a> = &'a dyn Fn(&str, u16) -> (String, u16);

async fn wait(osb: &OsbClient, target: Target<'_>, operation: Option<&str>) -> Vec<String> {
    let mut seen = Vec::new();
    osb.wait(
        target,
        operation,
        Duration::from_millis(100),
        Duration::from_secs(180),
        |d| seen.push(d.to_string()),
    )
    .await
    .unwrap_or_else(|e| panic!("operation failed: {e} (progress: {seen:?})"));
    seen
}

/// One RESP command; returns the first line of the reply.
async fn resp(stream: &mut BufReader<TcpStream>, args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.get_mut().write_all(out.as_bytes()).await.unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    if line.starts_with('$') && !line.starts_with("$-1") {
        line.clear();
        stream.read_line(&mut line).await.unwrap();
    }
    line.trim_end().to_string()
}

fn endpoint(creds: &Value, reach: Reach<'_>) -> (String, u16) {
    let host = creds["host"].as_str().expect("credentials carry host");
    let port = creds["port"].as_u64().expect("credentials carry port");
    reach(host, u16::try_from(port).unwrap())
}

async fn pg_connect(
    creds: &Value,
    reach: Reach<'_>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (host, port) = endpoint(creds, reach);
    let (client, conn) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user(creds["username"].as_str().unwrap())
        .password(creds["password"].as_str().unwrap())
        .dbname(creds["database"].as_str().unwrap())
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn kv_login(creds: &Value, reach: Reach<'_>) -> (BufReader<TcpStream>, String) {
    let (host, port) = endpoint(creds, reach);
    let mut stream = BufReader::new(TcpStream::connect((host.as_str(), port)).await.unwrap());
    let user = creds["username"].as_str().unwrap();
    let password = creds["password"].as_str().unwrap();
    let reply = resp(&mut stream, &["AUTH", user, password]).await;
    (stream, reply)
}

/// Uses the binding's credentials for real; `false`: they are refused.
async fn use_binding(service: &str, creds: &Value, reach: Reach<'_>) -> bool {
    match service {
        "postgresql" => match pg_connect(creds, reach).await {
            Ok(client) => {
                client
                    .batch_execute("CREATE TABLE IF NOT EXISTS notes (t text); INSERT INTO notes VALUES ('hello')")
                    .await
                    .unwrap();
                let row = client.query_one("SELECT t FROM notes", &[]).await.unwrap();
                assert_eq!(row.get::<_, String>(0), "hello");
                true
            }
            Err(e) => {
                assert_eq!(
                    e.code(),
                    Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
                    "{e:?}"
                );
                false
            }
        },
        _ => {
            let (mut stream, auth) = kv_login(creds, reach).await;
            if auth != "+OK" {
                assert!(auth.starts_with("-WRONGPASS"), "{auth}");
                return false;
            }
            assert_eq!(
                resp(&mut stream, &["SET", "greeting", "hello"]).await,
                "+OK"
            );
            assert_eq!(resp(&mut stream, &["GET", "greeting"]).await, "hello");
            true
        }
    }
}

/// Provision → bind → use → unbind (credentials refused) → deprovision, through the broker, with
/// instance and binding ids starting `label`; answers the provision's progress texts.
pub async fn lifecycle(
    osb: &OsbClient,
    label: &str,
    service: &str,
    plan: &str,
    reach: Reach<'_>,
) -> Vec<String> {
    let catalog = osb.catalog().await.unwrap();
    let (service_id, plan_id) = osbctl::cli::resolve(&catalog, service, plan).unwrap();
    let instance = format!("{label}-{service}-1");
    let context =
        json!({"platform": "cloudfoundry", "organization_guid": "org", "space_guid": "space"});
    let a = osb
        .provision(
            &instance,
            &ProvisionRequest {
                service_id: Some(service_id.clone()),
                plan_id: Some(plan_id.clone()),
                organization_guid: Some("org".into()),
                space_guid: Some("space".into()),
                context: context.as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.status, 202, "provision answers 202: {:?}", a.body);
    let progress = wait(osb, Target::Instance(&instance), a.operation()).await;
    eprintln!("{service} provision progress: {progress:?}");

    let binding = format!("{label}-{service}-b1");
    let b = osb
        .bind(
            &instance,
            &binding,
            &BindRequest {
                service_id: Some(service_id.clone()),
                plan_id: Some(plan_id.clone()),
                bind_resource: json!({"app_guid": "app-1"}).as_object().cloned(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(b.status, 201, "bind answers 201: {:?}", b.body);
    let creds = b.body["credentials"].clone();
    assert!(
        use_binding(service, &creds, reach).await,
        "the binding works"
    );

    let u = osb
        .unbind(&instance, &binding, &service_id, &plan_id)
        .await
        .unwrap();
    if u.status == 202 {
        wait(osb, Target::Binding(&instance, &binding), u.operation()).await;
    }
    assert!(
        !use_binding(service, &creds, reach).await,
        "unbound credentials are refused"
    );

    let d = osb
        .deprovision(&instance, &service_id, &plan_id)
        .await
        .unwrap();
    assert_eq!(d.status, 202, "deprovision answers 202: {:?}", d.body);
    wait(osb, Target::Instance(&instance), d.operation()).await;
    progress
}

/// Names of the containers and volumes whose name starts with `prefix`.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let filter = format!("name={prefix}");
    let (_, containers) = docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", &filter]);
    let (_, volumes) = docker(&["volume", "ls", "-q", "--filter", &filter]);
    containers
        .lines()
        .chain(volumes.lines())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_offerings_work_end_to_end_through_the_docker_backend_and_leave_nothing_behind() {
    if let Err(reason) = engine_with_data_images() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let settings = local_image_settings();
    let prefix = settings.name_prefix.clone();
    let t = TestStack::start_with(Some(settings)).await;
    let osb = t.stack().osb_client().unwrap();
    let direct = |host: &str, port: u16| (host.to_string(), port);
    for service in ["postgresql", "keyvalue"] {
        lifecycle(&osb, "docker", service, "small", &direct).await;
        assert_eq!(leftovers(&prefix), Vec::<String>::new(), "after {service}");
    }
}
