//! Binding credentials on a running PostgreSQL instance, through its admin account: every
//! binding is a LOGIN role that is a member of the NOLOGIN group `app_owner`, which owns the
//! shared database `app`; each binding's sessions run as `app_owner`, so all bindings see and
//! own the same tables. Unbinding closes the role's sessions, hands what it owns to
//! `app_owner` and drops it.

use crate::sql::{binding_role_name, quote_ident, quote_literal};
use crate::Postgres;
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::secret::SecretString;
use futures_util::SinkExt;
use serde_json::json;
use spi_kit::binding::url_host;
use spi_kit::Bindings;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The database every binding uses.
pub const APP_DATABASE: &str = "app";
/// The NOLOGIN group role that owns `app` and everything in it.
pub const OWNER_ROLE: &str = "app_owner";
/// The database the admin connects to for cluster-wide work.
pub const ADMIN_DATABASE: &str = "postgres";
/// The session's temporary table that carries a role's password verifier to the server.
const SECRET_TABLE: &str = "pg_temp.osb_role_secret";
/// How long to wait for a TCP connection and startup of one session.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub use spi_kit::binding::{
    BindingCredentials, OPERATION_TIMEOUT, PASSWORD_LEN as BINDING_PASSWORD_LEN,
};

spi_kit::binding_error!(
    /// Failure of a bind or unbind: the instance cannot be reached or is not accepting work
    /// now (the caller may retry), or it answered with an error we did not expect.
    pub enum BindingError { Database(tokio_postgres::Error) = "database", retryable: is_retryable }
);

/// Whether `e` means "not now": no server error (the connection failed, timed out or broke),
/// or a server error saying so. Everything else is a real failure.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
        ]
        .contains(code),
    }
}

impl Bindings for Postgres {
    type BindingError = BindingError;

    const BINDING_KIND: &'static str = "role";

    fn account_name(binding_id: &str) -> String {
        binding_role_name(binding_id)
    }

    /// Creates (or, on a retry, re-keys) login `role`, with the owner role and the database
    /// `app` it joins created first when missing.
    async fn create_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        role: &str,
        password: &SecretString,
    ) -> Result<(), BindingError> {
        let client = connect(endpoint, admin, ADMIN_DATABASE).await?;
        ensure_owner_role(&client).await?;
        ensure_app_database(&client).await?;
        ensure_login_role(&client, role, password).await
    }

    /// Drops login `role`; a role that does not exist is already gone.
    async fn delete_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        role: &str,
    ) -> Result<(), BindingError> {
        let client = connect(endpoint, admin, ADMIN_DATABASE).await?;
        if !role_exists(&client, role).await? {
            return Ok(());
        }
        let ident = quote_ident(role);
        // Refuse new logins first, then close the open sessions, so none slips in between.
        client
            .batch_execute(&format!("ALTER ROLE {ident} NOLOGIN"))
            .await?;
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE usename = $1 AND pid <> pg_backend_pid()",
                &[&role],
            )
            .await?;
        let owner = quote_ident(OWNER_ROLE);
        let disown = format!("REASSIGN OWNED BY {ident} TO {owner}; DROP OWNED BY {ident};");
        // REASSIGN/DROP OWNED act on the current database only: do it where the role can have
        // objects or privileges, then drop the role (which fails if anything is left).
        if database_exists(&client, APP_DATABASE).await? && role_exists(&client, OWNER_ROLE).await?
        {
            let app = connect(endpoint, admin, APP_DATABASE).await?;
            app.batch_execute(&disown).await?;
        }
        if role_exists(&client, OWNER_ROLE).await? {
            client.batch_execute(&disown).await?;
        } else {
            client
                .batch_execute(&format!("DROP OWNED BY {ident}"))
                .await?;
        }
        client
            .batch_execute(&format!("DROP ROLE IF EXISTS {ident}"))
            .await?;
        Ok(())
    }

    fn credentials(
        endpoint: &DeploymentEndpoint,
        role: &str,
        password: &SecretString,
    ) -> BindingCredentials {
        let host = &endpoint.host;
        let port = endpoint.port;
        let pw = password.expose();
        let url_host = url_host(host);
        // Role names and passwords are `[a-z0-9_]` and `[A-Za-z0-9]`: nothing to escape in a URL.
        let uri = format!("postgresql://{role}:{pw}@{url_host}:{port}/{APP_DATABASE}");
        let jdbc =
            format!("jdbc:postgresql://{url_host}:{port}/{APP_DATABASE}?user={role}&password={pw}");
        let credentials = json!({
            "uri": uri,
            "jdbcUrl": jdbc,
            "host": host,
            "port": port,
            "database": APP_DATABASE,
            "username": role,
            "password": pw,
        });
        BindingCredentials::tcp(endpoint, credentials)
    }
}

async fn connect(
    endpoint: &DeploymentEndpoint,
    admin: &AdminCredentials,
    database: &str,
) -> Result<Client, BindingError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .user(&admin.username)
        .password(admin.password.expose())
        .dbname(database)
        .application_name("spi-postgres")
        .connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await?;
    // The connection future drives the socket; it ends when `client` is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "admin connection ended with an error");
        }
    });
    Ok(client)
}

async fn role_exists(client: &Client, role: &str) -> Result<bool, BindingError> {
    let row = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await?;
    Ok(row.is_some())
}

async fn database_exists(client: &Client, database: &str) -> Result<bool, BindingError> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await?;
    Ok(row.is_some())
}

/// Runs `sql`, treating "already exists" (also as the unique violation a concurrent creator
/// can cause) as success.
async fn create_tolerating_existing(client: &Client, sql: &str) -> Result<(), BindingError> {
    match client.batch_execute(sql).await {
        Ok(()) => Ok(()),
        Err(e)
            if e.code().is_some_and(|c| {
                [
                    SqlState::DUPLICATE_OBJECT,
                    SqlState::DUPLICATE_DATABASE,
                    SqlState::UNIQUE_VIOLATION,
                ]
                .contains(c)
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn ensure_owner_role(client: &Client) -> Result<(), BindingError> {
    if role_exists(client, OWNER_ROLE).await? {
        return Ok(());
    }
    create_tolerating_existing(
        client,
        &format!("CREATE ROLE {} NOLOGIN", quote_ident(OWNER_ROLE)),
    )
    .await
}

async fn ensure_app_database(client: &Client) -> Result<(), BindingError> {
    if database_exists(client, APP_DATABASE).await? {
        return Ok(());
    }
    // CREATE DATABASE cannot run inside a transaction: it is sent alone, as a simple query.
    create_tolerating_existing(
        client,
        &format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(APP_DATABASE),
            quote_ident(OWNER_ROLE)
        ),
    )
    .await
}

async fn ensure_login_role(
    client: &Client,
    role: &str,
    password: &SecretString,
) -> Result<(), BindingError> {
    let ident = quote_ident(role);
    let owner = quote_ident(OWNER_ROLE);
    if !role_exists(client, role).await? {
        create_tolerating_existing(
            client,
            &format!("CREATE ROLE {ident} NOLOGIN IN ROLE {owner}"),
        )
        .await?;
    }
    // Only the SCRAM verifier goes to the server, so the password cannot end up in its logs;
    // and the verifier travels as COPY data, never in statement text or bind parameters
    // (which tokio-postgres logs at debug level, and the server with `log_statement`).
    let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {SECRET_TABLE} (v text); TRUNCATE {SECRET_TABLE}"
        ))
        .await?;
    let sink = client
        .copy_in(&format!("COPY {SECRET_TABLE} (v) FROM STDIN"))
        .await?;
    let mut sink = Box::pin(sink);
    sink.send(std::io::Cursor::new(format!("{verifier}\n").into_bytes()))
        .await?;
    sink.as_mut().finish().await?;
    client
        .batch_execute(&format!(
            "GRANT {owner} TO {ident}; \
             ALTER ROLE {ident} SET role = {}; \
             DO $osb$ BEGIN \
               EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', {}, (SELECT v FROM {SECRET_TABLE})); \
             END $osb$; \
             TRUNCATE {SECRET_TABLE}",
            quote_literal(OWNER_ROLE),
            quote_literal(role),
        ))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    testkit::binding_tests!(Postgres);

    #[test]
    fn credentials_carry_every_form_the_applications_use() {
        let c = Postgres::credentials(
            &DeploymentEndpoint {
                host: "10.0.0.5".into(),
                port: 5433,
            },
            "b_x",
            &SecretString::new("pw1"),
        );
        let j = serde_json::Value::Object(c.credentials);
        assert_eq!(j["uri"], "postgresql://b_x:pw1@10.0.0.5:5433/app");
        assert_eq!(
            j["jdbcUrl"],
            "jdbc:postgresql://10.0.0.5:5433/app?user=b_x&password=pw1"
        );
        assert_eq!(j["port"], 5433);
        assert_eq!(j["database"], "app");
        assert_eq!(j["username"], "b_x");
        assert_eq!(j["password"], "pw1");
        assert_eq!(c.endpoints[0].ports, vec!["5433".to_string()]);
        assert_eq!(c.endpoints[0].protocol.as_deref(), Some("tcp"));
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_urls() {
        let c = Postgres::credentials(
            &DeploymentEndpoint {
                host: "::1".into(),
                port: 5432,
            },
            "b_x",
            &SecretString::new("pw"),
        );
        assert_eq!(c.credentials["uri"], "postgresql://b_x:pw@[::1]:5432/app");
        assert_eq!(c.credentials["host"], "::1");
    }
}
