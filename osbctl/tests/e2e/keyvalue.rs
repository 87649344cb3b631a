//! The key-value service through the whole stack: a real `redis-server` per instance, an ACL
//! user per binding that cannot administer the server, plan limits and the eviction policy
//! applied, invalid parameters refused before anything is deployed.

use crate::helpers::TestStack;
use osbctl::osb_client::{Answer, OsbClient, Target};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Administrative commands a binding user must not run.
const ADMIN_COMMANDS: &[&[&str]] = &[
    &["CONFIG", "GET", "*"],
    &["ACL", "LIST"],
    &["SHUTDOWN"],
    &["DEBUG", "SLEEP", "0"],
];

/// The offering's ids, resolved from the broker's catalog by name.
struct Keyvalue {
    service_id: String,
    small: String,
    medium: String,
}

async fn keyvalue(osb: &OsbClient) -> Keyvalue {
    let catalog = osb.catalog().await.unwrap();
    let (service_id, small) = osbctl::cli::resolve(&catalog, "keyvalue", "small").unwrap();
    let (_, medium) = osbctl::cli::resolve(&catalog, "keyvalue", "medium").unwrap();
    Keyvalue {
        service_id,
        small,
        medium,
    }
}

async fn provision(
    osb: &OsbClient,
    id: &str,
    service_id: &str,
    plan_id: &str,
    params: Value,
) -> Answer {
    osb.call(
        reqwest::Method::PUT,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        Some(&json!({
            "service_id": service_id, "plan_id": plan_id,
            "organization_guid": "org", "space_guid": "space",
            "context": {"platform": "cloudfoundry", "organization_guid": "org", "space_guid": "space",
                        "instance_name": id},
            "parameters": params,
        })),
    )
    .await
    .unwrap()
}

/// Polls the instance's last operation until it succeeds; the descriptions seen on the way.
async fn succeeded(osb: &OsbClient, id: &str, answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 202, "async answer: {:?}", answer.body);
    let mut seen = Vec::new();
    osb.wait(
        Target::Instance(id),
        answer.operation(),
        Duration::from_millis(10),
        Duration::from_secs(120),
        |d| seen.push(d.to_string()),
    )
    .await
    .unwrap_or_else(|e| panic!("operation on {id} failed: {e}; seen {seen:?}"));
    seen
}

/// A deployed Redis server as the deployer keeps it.
struct Server {
    dir: PathBuf,
    pid: u32,
    port: u16,
    admin_user: String,
    admin_password: String,
}

/// The deployment of the instance whose deployment name ends with `instance`.
async fn server(t: &TestStack, instance: &str) -> Server {
    let deployments = t.deployments().await;
    let deployment = deployments
        .iter()
        .find(|d| d.name.ends_with(instance))
        .unwrap_or_else(|| panic!("no deployment for {instance}: {deployments:?}"));
    let dir = t.deployments_dir().join(&deployment.name);
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    let record: Value = serde_json::from_str(&read("instance.json")).unwrap();
    let pid = read("redis.pid").trim().parse().unwrap();
    Server {
        pid,
        port: u16::try_from(record["port"].as_u64().unwrap()).unwrap(),
        admin_user: record["admin_username"].as_str().unwrap().to_string(),
        admin_password: read("admin.secret").trim().to_string(),
        dir,
    }
}

async fn connect(uri: &str) -> redis::RedisResult<MultiplexedConnection> {
    redis::Client::open(uri)?
        .get_multiplexed_async_connection()
        .await
}

impl Server {
    /// A connection as the deployment's admin.
    async fn admin(&self) -> MultiplexedConnection {
        connect(&format!(
            "redis://{}:{}@127.0.0.1:{}",
            self.admin_user, self.admin_password, self.port
        ))
        .await
        .expect("the admin logs in")
    }

    /// `CONFIG GET <name>` as the admin.
    async fn config(&self, name: &str) -> String {
        let (_, value): (String, String) = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.admin().await)
            .await
            .unwrap();
        value
    }
}

async fn run(con: &mut MultiplexedConnection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    redis::cmd(args[0]).arg(&args[1..]).query_async(con).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_gets_a_redis_server_whose_binding_users_cannot_administer_it_and_all_is_gone_after_deprovision(
) {
    let t = TestStack::start().await;
    let osb = t.stack().osb_client().unwrap();
    let kv = keyvalue(&osb).await;

    // provision, async
    let instance = "kv-e2e-lifecycle";
    let a = provision(&osb, instance, &kv.service_id, &kv.small, json!({})).await;
    assert!(a.body["dashboard_url"].as_str().is_some(), "{:?}", a.body);
    let seen = succeeded(&osb, instance, &a).await;
    assert!(
        seen.iter().any(|d| d.contains("Redis")),
        "progress a person can follow: {seen:?}"
    );
    let server = server(&t, instance).await;
    assert!(deployer::sys::is_alive(server.pid), "redis-server runs");

    // bind
    let binding = "kv-e2e-app";
    let b = osb
        .call(
            reqwest::Method::PUT,
            &format!("/v2/service_instances/{instance}/service_bindings/{binding}?accepts_incomplete=true"),
            Some(&json!({"service_id": kv.service_id, "plan_id": kv.small, "bind_resource": {"app_guid": "app-1"}})),
        )
        .await
        .unwrap();
    assert_eq!(b.status, 201, "bind answers 201: {:?}", b.body);
    let creds = &b.body["credentials"];
    for key in ["uri", "host", "port", "username", "password"] {
        assert!(creds.get(key).is_some(), "credentials carry {key}: {creds}");
    }
    let uri = creds["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("redis://"), "{uri}");
    assert_eq!(creds["port"], server.port);

    // use it
    let mut con = connect(&uri).await.expect("the binding's uri connects");
    let () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query_async(&mut con)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, "hello");

    // no administration
    let mut admin = server.admin().await;
    let user = creds["username"].as_str().unwrap();
    for command in ADMIN_COMMANDS {
        let err = run(&mut con, command)
            .await
            .expect_err(&format!("{command:?} is refused to a binding user"));
        // DEBUG is also disabled server-wide, which Redis checks before the ACL.
        if command[0] != "DEBUG" {
            assert_eq!(err.code(), Some("NOPERM"), "{command:?}: {err}");
        }
        // The ACL itself denies every one of them.
        let dry: String = redis::cmd("ACL")
            .arg("DRYRUN")
            .arg(user)
            .arg(*command)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(
            dry.contains("no permissions"),
            "ACL DRYRUN {command:?}: {dry}"
        );
    }
    assert!(deployer::sys::is_alive(server.pid), "SHUTDOWN was refused");

    // unbind → the user cannot log in and its open connection is closed
    let u = osb
        .unbind(instance, binding, &kv.service_id, &kv.small)
        .await
        .unwrap();
    assert_eq!(u.status, 200, "unbind answers 200: {:?}", u.body);
    let err = connect(&uri)
        .await
        .expect_err("AUTH with the unbound credentials fails");
    assert_eq!(
        err.kind(),
        redis::ErrorKind::AuthenticationFailed,
        "login refused: {err}"
    );
    let after = redis::cmd("GET")
        .arg("greeting")
        .query_async::<Option<String>>(&mut con)
        .await;
    assert!(
        after.is_err(),
        "the connection opened before unbind is closed: {after:?}"
    );
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(!users.iter().any(|u| u == user), "{users:?}");
    drop(admin);

    // deprovision → the server is gone and its directory removed
    let d = osb
        .deprovision(instance, &kv.service_id, &kv.small)
        .await
        .unwrap();
    succeeded(&osb, instance, &d).await;
    assert!(
        !deployer::sys::is_alive(server.pid),
        "the redis-server process is gone"
    );
    assert!(!server.dir.exists(), "its data directory is removed");
    assert!(t.deployments().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eviction_policy_and_the_plan_limits_reach_the_server_and_an_invalid_policy_deploys_nothing(
) {
    let t = TestStack::start().await;
    let osb = t.stack().osb_client().unwrap();
    let kv = keyvalue(&osb).await;

    // An invalid policy: 400 naming the parameter and the allowed values, nothing deployed.
    let refused = provision(
        &osb,
        "kv-e2e-invalid",
        &kv.service_id,
        &kv.small,
        json!({"maxmemory-policy": "lru-please"}),
    )
    .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let description = refused.body["description"].as_str().unwrap();
    assert!(description.contains("'maxmemory-policy'"), "{description}");
    for policy in spi_keyvalue::offering::MAXMEMORY_POLICIES {
        assert!(
            description.contains(policy),
            "{policy} listed: {description}"
        );
    }
    let fetched = osb
        .call(
            reqwest::Method::GET,
            "/v2/service_instances/kv-e2e-invalid",
            None,
        )
        .await
        .unwrap();
    assert_eq!(fetched.status, 404, "no instance: {:?}", fetched.body);
    assert!(t.deployments().await.is_empty(), "nothing deployed");
    assert!(
        !t.deployments_dir().exists()
            || std::fs::read_dir(t.deployments_dir())
                .unwrap()
                .next()
                .is_none(),
        "no deployment directory"
    );

    // A valid policy on small, the default on medium: both applied, with each plan's limits.
    let a = provision(
        &osb,
        "kv-e2e-small",
        &kv.service_id,
        &kv.small,
        json!({"maxmemory-policy": "allkeys-lru"}),
    )
    .await;
    let b = provision(&osb, "kv-e2e-medium", &kv.service_id, &kv.medium, json!({})).await;
    succeeded(&osb, "kv-e2e-small", &a).await;
    succeeded(&osb, "kv-e2e-medium", &b).await;
    let small = server(&t, "kv-e2e-small").await;
    let medium = server(&t, "kv-e2e-medium").await;
    assert_eq!(small.config("maxmemory-policy").await, "allkeys-lru");
    assert_eq!(medium.config("maxmemory-policy").await, "noeviction");
    assert_eq!(small.config("maxmemory").await, (64u64 << 20).to_string());
    assert_eq!(medium.config("maxmemory").await, (256u64 << 20).to_string());
    assert_eq!(small.config("maxclients").await, "100");
    assert_eq!(medium.config("maxclients").await, "1000");

    for (id, plan) in [("kv-e2e-small", &kv.small), ("kv-e2e-medium", &kv.medium)] {
        let d = osb.deprovision(id, &kv.service_id, plan).await.unwrap();
        succeeded(&osb, id, &d).await;
    }
}
