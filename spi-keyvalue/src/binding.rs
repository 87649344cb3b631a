//! Binding credentials on a running Redis server, through its admin ACL user: every binding is
//! an ACL user with its own password, access to every key and channel, and every command except
//! the administrative and dangerous ones. Changes are saved to the server's ACL file at once, so
//! a crash does not lose them. Unbinding disables the user, closes its connections and deletes
//! it.

use crate::KeyValue;
use common::deployer::{AdminCredentials, DeploymentEndpoint};
use common::secret::SecretString;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
use serde_json::json;
use spi_kit::binding::url_host;
use spi_kit::spec::prefixed_name;
use spi_kit::Bindings;
use std::time::Duration;

/// Prefix of binding user names.
pub const USER_PREFIX: &str = "b-";
/// Longest binding user name.
pub const MAX_USER_LEN: usize = 64;
/// The rights of a binding user after its password: all keys and channels, every command but
/// the administrative (`CONFIG`, `ACL`, `SHUTDOWN`, `DEBUG`, …) and dangerous (`KEYS`,
/// `FLUSHALL`, …) ones.
pub const BINDING_RULES: &[&str] = &["~*", "&*", "+@all", "-@admin", "-@dangerous"];
/// How long to wait for a TCP connection, and for each answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub use spi_kit::binding::{
    BindingCredentials, OPERATION_TIMEOUT, PASSWORD_LEN as BINDING_PASSWORD_LEN,
};

spi_kit::binding_error!(
    /// Failure of a bind or unbind: the server cannot be reached or is not accepting work now
    /// (the caller may retry), or it answered with an error we did not expect.
    pub enum BindingError { Redis(redis::RedisError) = "redis", retryable: is_retryable }
);

/// Whether `e` means "not now": I/O failures and "busy loading / try again" answers. Everything
/// else is real.
fn is_retryable(e: &redis::RedisError) -> bool {
    use redis::ErrorKind as K;
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(e.kind(), K::BusyLoadingError | K::TryAgain | K::MasterDown)
}

impl Bindings for KeyValue {
    type BindingError = BindingError;

    const BINDING_KIND: &'static str = "user";

    /// The ACL user of a binding: `b-<id>` when the id is lowercase `[a-z0-9-]` and short
    /// enough, otherwise `b-<128-bit hash of the id, hex>`. The prefix keeps it clear of
    /// `default` and the admin.
    fn account_name(binding_id: &str) -> String {
        prefixed_name(USER_PREFIX, binding_id, MAX_USER_LEN)
    }

    /// Creates (or, on a retry, re-keys) ACL user `user`.
    async fn create_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        user: &str,
        password: &SecretString,
    ) -> Result<(), BindingError> {
        let mut con = connect(endpoint, admin).await?;
        // `reset` first: a retry gets exactly these rights and only the new password.
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER")
            .arg(user)
            .arg("reset")
            .arg("on")
            .arg(format!(">{}", password.expose()))
            .arg(BINDING_RULES);
        cmd.query_async::<()>(&mut con).await?;
        save_acl(&mut con).await;
        Ok(())
    }

    /// Deletes ACL user `user` and closes its connections; an unknown user is already gone.
    async fn delete_account(
        endpoint: &DeploymentEndpoint,
        admin: &AdminCredentials,
        user: &str,
    ) -> Result<(), BindingError> {
        let mut con = connect(endpoint, admin).await?;
        let users: Vec<String> = redis::cmd("ACL").arg("USERS").query_async(&mut con).await?;
        if !users.iter().any(|u| u == user) {
            return Ok(());
        }
        // Refuse new logins first, then close the open connections, so none slips in between.
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(user)
            .arg("off")
            .query_async::<()>(&mut con)
            .await?;
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("USER")
            .arg(user)
            .query_async::<i64>(&mut con)
            .await?;
        redis::cmd("ACL")
            .arg("DELUSER")
            .arg(user)
            .query_async::<i64>(&mut con)
            .await?;
        save_acl(&mut con).await;
        Ok(())
    }

    fn credentials(
        endpoint: &DeploymentEndpoint,
        user: &str,
        password: &SecretString,
    ) -> BindingCredentials {
        let host = &endpoint.host;
        let port = endpoint.port;
        let pw = password.expose();
        // User names are `[a-z0-9-]`, passwords `[A-Za-z0-9]`: nothing to escape in a URL.
        let uri = format!("redis://{user}:{pw}@{}:{port}", url_host(host));
        let credentials = json!({
            "uri": uri,
            "host": host,
            "port": port,
            "username": user,
            "password": pw,
        });
        BindingCredentials::tcp(endpoint, credentials)
    }
}

/// The ACL user of a binding (see [`KeyValue::account_name`]).
pub fn binding_user_name(binding_id: &str) -> String {
    KeyValue::account_name(binding_id)
}

async fn connect(
    endpoint: &DeploymentEndpoint,
    admin: &AdminCredentials,
) -> Result<MultiplexedConnection, BindingError> {
    // `ConnectionInfo`'s Debug shows the password: it is never logged.
    let info = ConnectionInfo {
        addr: ConnectionAddr::Tcp(endpoint.host.clone(), endpoint.port),
        redis: RedisConnectionInfo {
            db: 0,
            username: Some(admin.username.clone()),
            password: Some(admin.password.expose().to_string()),
            ..RedisConnectionInfo::default()
        },
    };
    let client = redis::Client::open(info)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(CONNECT_TIMEOUT);
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// Writes the users to the server's ACL file (or, for a server configured with `user` lines
/// instead, rewrites its config). A failure is logged: the user works until the next restart.
async fn save_acl(con: &mut MultiplexedConnection) {
    let saved = redis::cmd("ACL").arg("SAVE").query_async::<()>(con).await;
    let Err(acl_error) = saved else { return };
    let rewritten = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query_async::<()>(con)
        .await;
    if let Err(rewrite_error) = rewritten {
        tracing::warn!(
            acl_save = %acl_error,
            config_rewrite = %rewrite_error,
            "could not persist the ACL users; they last until the server restarts"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    testkit::binding_tests!(KeyValue);

    #[test]
    fn a_uuid_binding_id_gives_a_readable_user() {
        assert_eq!(
            binding_user_name("0a1b2c3d-0000-4000-8000-123456789abc"),
            "b-0a1b2c3d-0000-4000-8000-123456789abc"
        );
    }

    #[test]
    fn other_binding_ids_give_a_stable_hashed_user() {
        for id in ["UPPER", "with space", "x>y", "", &"a".repeat(80)] {
            let user = binding_user_name(id);
            assert_eq!(user.len(), 2 + 32, "{id:?} → {user}");
            assert!(!user.contains(' ') && !user.contains('>'));
            assert_eq!(user, binding_user_name(id));
        }
    }

    #[test]
    fn binding_users_may_not_run_admin_commands() {
        assert!(BINDING_RULES.contains(&"-@admin"));
        assert!(BINDING_RULES.contains(&"-@dangerous"));
        // Rules apply in order: the denials come after the grant.
        let all = BINDING_RULES.iter().position(|r| *r == "+@all").unwrap();
        let admin = BINDING_RULES.iter().position(|r| *r == "-@admin").unwrap();
        assert!(all < admin);
    }

    #[test]
    fn credentials_carry_uri_host_port_user_and_password() {
        let c = KeyValue::credentials(
            &DeploymentEndpoint {
                host: "127.0.0.1".into(),
                port: 6380,
            },
            "b-x",
            &SecretString::new("pw"),
        );
        let j = serde_json::Value::Object(c.credentials);
        assert_eq!(j["uri"], "redis://b-x:pw@127.0.0.1:6380");
        assert_eq!(j["port"], 6380);
        assert_eq!(j["username"], "b-x");
        assert_eq!(j["password"], "pw");
        assert_eq!(c.endpoints[0].ports, vec!["6380".to_string()]);
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_the_uri() {
        let c = KeyValue::credentials(
            &DeploymentEndpoint {
                host: "::1".into(),
                port: 6379,
            },
            "b-x",
            &SecretString::new("pw"),
        );
        assert_eq!(c.credentials["uri"], "redis://b-x:pw@[::1]:6379");
    }
}
