//! No two instances share a server and no two bindings share a role or ACL user, on both
//! services, through the whole stack: an id equal to the 32-hex hash of another id (what the
//! deployment and role names of ids that cannot be used verbatim are made of) gets its own
//! name, and a name already owned by another instance's deployment is refused by the deployer,
//! which the broker reports as a failed operation without touching the owner's server.

use crate::helpers::*;
use common::client::CallContext;
use common::deployer::{AdminCredentials, DeploymentSpec, DeploymentState, Engine, OWNER_LABEL};
use serde_json::Value;
use spi_keyvalue::spec::short_hash;
use std::collections::BTreeMap;

const VICTIM: &str = "Victim-1";

async fn stack() -> TestApp {
    let mut app = spawn_services(true).await;
    let settings = app.broker_settings();
    app.start_broker(settings).await;
    app
}

/// The two offerings, as the tests drive them.
#[derive(Clone, Copy, Debug)]
enum Offering {
    Postgres,
    Keyvalue,
}

impl Offering {
    fn provision_body(self) -> Value {
        match self {
            Self::Postgres => provision_body(serde_json::json!({})),
            Self::Keyvalue => keyvalue_provision_body(),
        }
    }

    fn bind_body(self) -> Value {
        match self {
            Self::Postgres => bind_body(),
            Self::Keyvalue => keyvalue_bind_body(),
        }
    }

    fn deployment_name(self, id: &str) -> String {
        match self {
            Self::Postgres => spi_postgres::spec::deployment_name(id),
            Self::Keyvalue => spi_keyvalue::spec::deployment_name(id),
        }
    }

    /// Writes a marker through a binding's credentials.
    async fn write(self, uri: &str, marker: &str) -> Result<(), String> {
        match self {
            Self::Postgres => {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS marker (v text); INSERT INTO marker VALUES ('{marker}')"
                );
                run_sql(uri, &sql).await.map(|_| ())
            }
            Self::Keyvalue => {
                let mut con = redis_connection(uri).await?;
                redis::cmd("SET")
                    .arg("marker")
                    .arg(marker)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Reads the marker through a binding's credentials.
    async fn read(self, uri: &str) -> Result<String, String> {
        match self {
            Self::Postgres => run_sql(uri, "SELECT v FROM marker").await,
            Self::Keyvalue => {
                let mut con = redis_connection(uri).await?;
                redis::cmd("GET")
                    .arg("marker")
                    .query_async::<String>(&mut con)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    async fn deprovision(self, app: &TestApp, id: &str) -> Answer {
        match self {
            Self::Postgres => app.deprovision(id).await,
            Self::Keyvalue => app.delete_keyvalue(id, None).await,
        }
    }

    async fn unbind(self, app: &TestApp, id: &str, binding: &str) -> Answer {
        match self {
            Self::Postgres => app.unbind(id, binding).await,
            Self::Keyvalue => app.delete_keyvalue(id, Some(binding)).await,
        }
    }
}

async fn redis_connection(uri: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    redis::Client::open(uri)
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())
}

/// Runs `sql` as the binding; the first column of the last row.
async fn run_sql(uri: &str, sql: &str) -> Result<String, String> {
    let (client, connection) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let messages = client.simple_query(sql).await.map_err(|e| e.to_string());
    drop(client);
    let _ = conn.await;
    Ok(messages?
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .last()
        .unwrap_or_default())
}

async fn provision_ready(app: &TestApp, offering: Offering, id: &str) {
    let answer = app.provision(id, &offering.provision_body(), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
}

async fn deprovisioned(app: &TestApp, offering: Offering, id: &str) {
    let answer = offering.deprovision(app, id).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, seen) = app.wait_for_instance(id, &answer.operation()).await;
    assert_eq!(last["state"], "succeeded", "{last} after {seen:?}");
}

/// Binds (synchronously) and returns the credentials' `uri`.
async fn bound_uri(app: &TestApp, offering: Offering, id: &str, binding: &str) -> String {
    let answer = app.bind(id, binding, &offering.bind_body()).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.body["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn deployment_state(app: &TestApp, name: &str) -> Option<DeploymentState> {
    app.deployments()
        .await
        .into_iter()
        .find(|d| d.name == name)
        .map(|d| d.state)
}

async fn an_instance_id_equal_to_the_hash_of_another_gets_its_own_server(offering: Offering) {
    let app = stack().await;
    provision_ready(&app, offering, VICTIM).await;
    let victim_uri = bound_uri(&app, offering, VICTIM, "victim-app").await;
    offering.write(&victim_uri, "precious").await.unwrap();

    let attacker = short_hash(VICTIM);
    assert!(
        offering.deployment_name(VICTIM).ends_with(&attacker),
        "the victim's name is the prefix and the hash of its id"
    );
    provision_ready(&app, offering, &attacker).await;
    assert_ne!(
        offering.deployment_name(&attacker),
        offering.deployment_name(VICTIM)
    );
    assert_eq!(app.deployments().await.len(), 2, "one server per instance");
    deprovisioned(&app, offering, &attacker).await;

    let victim = app.get(&format!("/v2/service_instances/{VICTIM}")).await;
    assert_eq!(victim.status, 200, "{victim:?}");
    assert_eq!(
        deployment_state(&app, &offering.deployment_name(VICTIM)).await,
        Some(DeploymentState::Running)
    );
    assert_eq!(offering.read(&victim_uri).await.unwrap(), "precious");
    app.stop_all().await;
}

#[tokio::test]
async fn keyvalue_an_instance_id_equal_to_the_hash_of_another_neither_shares_nor_deletes_its_server(
) {
    an_instance_id_equal_to_the_hash_of_another_gets_its_own_server(Offering::Keyvalue).await;
}

#[tokio::test]
async fn postgres_an_instance_id_equal_to_the_hash_of_another_neither_shares_nor_deletes_its_server(
) {
    an_instance_id_equal_to_the_hash_of_another_gets_its_own_server(Offering::Postgres).await;
}

async fn a_binding_id_equal_to_the_hash_of_another_gets_its_own_credentials(offering: Offering) {
    let app = stack().await;
    let id = new_id();
    provision_ready(&app, offering, &id).await;
    let first = "First-Binding";
    let first_uri = bound_uri(&app, offering, &id, first).await;
    offering.write(&first_uri, "mine").await.unwrap();

    let second = short_hash(first);
    let second_uri = bound_uri(&app, offering, &id, &second).await;
    assert_ne!(
        user_of(&first_uri),
        user_of(&second_uri),
        "two bindings share a user"
    );
    // The first binding's password was not replaced by the second bind...
    assert_eq!(offering.read(&first_uri).await.unwrap(), "mine");
    // ...nor revoked by its unbind.
    let gone = offering.unbind(&app, &id, &second).await;
    assert_eq!(gone.status, 200, "{gone:?}");
    assert_eq!(offering.read(&first_uri).await.unwrap(), "mine");
    assert!(
        offering.read(&second_uri).await.is_err(),
        "the unbound credentials still work"
    );
    let fetched = app
        .get(&format!(
            "/v2/service_instances/{id}/service_bindings/{first}"
        ))
        .await;
    assert_eq!(fetched.status, 200, "{fetched:?}");
    app.stop_all().await;
}

/// The user name in a `scheme://user:password@host:port/…` URI.
fn user_of(uri: &str) -> String {
    let rest = uri.split("://").nth(1).unwrap();
    rest.split(':').next().unwrap().to_string()
}

#[tokio::test]
async fn keyvalue_a_binding_id_equal_to_the_hash_of_another_neither_rekeys_nor_revokes_its_user() {
    a_binding_id_equal_to_the_hash_of_another_gets_its_own_credentials(Offering::Keyvalue).await;
}

#[tokio::test]
async fn postgres_a_binding_id_equal_to_the_hash_of_another_neither_rekeys_nor_revokes_its_role() {
    a_binding_id_equal_to_the_hash_of_another_gets_its_own_credentials(Offering::Postgres).await;
}

#[tokio::test]
async fn a_name_owned_by_another_instance_fails_the_provision_and_its_deprovision_leaves_the_owner_alone(
) {
    let app = stack().await;
    let id = new_id();
    let name = Offering::Keyvalue.deployment_name(&id);
    // Another instance's server already holds the name this instance would get.
    let squatter = DeploymentSpec {
        name: name.clone().into(),
        engine: Engine::Redis,
        version: "7".into(),
        settings: BTreeMap::new(),
        admin: AdminCredentials {
            username: "osb_admin".into(),
            password: common::secret::random_password(24),
        },
        labels: BTreeMap::from([(OWNER_LABEL.to_string(), "the-owner".to_string())]),
    };
    let ctx = CallContext::with_request_id(common::new_request_id());
    app.deployer_client
        .put_deployment(&squatter, &ctx)
        .await
        .unwrap();

    let answer = app.provision(&id, &keyvalue_provision_body(), true).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let (last, _) = app.wait_for_instance(&id, &answer.operation()).await;
    assert_eq!(last["state"], "failed", "{last}");
    let description = last["description"].as_str().unwrap();
    assert!(
        description.contains("belongs to another instance"),
        "{description}"
    );

    deprovisioned(&app, Offering::Keyvalue, &id).await;
    let owner = app
        .deployments()
        .await
        .into_iter()
        .find(|d| d.name == name)
        .expect("the owner's deployment was deleted");
    assert_eq!(owner.labels[OWNER_LABEL], "the-owner");
    assert_ne!(owner.state, DeploymentState::Deleting);
    app.stop_all().await;
}
