//! The PostgreSQL server `osbctl bench --store` measures the broker on: made for the run with
//! `initdb` in a temporary directory and run by `pg_ctl` (as the OS user `postgres` when the
//! bench runs as root, as the deployer's process backend does), on a free loopback port with
//! trust authentication on loopback only and no Unix socket. Dropping it stops the server and
//! removes the directory.

use anyhow::{bail, Context};
use deployer::config::DEFAULT_POSTGRES_BIN_DIR;
use deployer::sys::{self, OsUser};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use tempfile::TempDir;
use tokio::process::Command;

/// The superuser made by `initdb`, and the OS user the server runs as under root.
const SUPERUSER: &str = "postgres";
/// How long `pg_ctl` waits for the server to start.
const START_WAIT_SECS: &str = "60";

/// A running PostgreSQL server of one bench run.
pub struct BenchPostgres {
    dir: TempDir,
    bin: PathBuf,
    user: Option<OsUser>,
    port: u16,
}

impl BenchPostgres {
    /// Initializes a cluster and starts it (binaries from `$PG_BIN`, else PostgreSQL 15's).
    pub async fn start() -> anyhow::Result<Self> {
        let bin = std::env::var_os("PG_BIN")
            .map_or_else(|| PathBuf::from(DEFAULT_POSTGRES_BIN_DIR), PathBuf::from);
        let user = match sys::effective_uid() {
            0 => Some(sys::lookup_user(SUPERUSER)?.context("no OS user `postgres` to run as")?),
            _ => None,
        };
        let dir = tempfile::Builder::new().prefix("osb-bench-pg-").tempdir()?;
        if let Some(user) = &user {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))?;
        }
        let port = free_port()?;
        let server = Self {
            dir,
            bin,
            user,
            port,
        };
        let data = server.data_dir();
        server
            .run("initdb", |cmd| {
                cmd.arg("-D").arg(&data).args([
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-N",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ])
            })
            .await?;
        server.configure()?;
        let log = server.dir.path().join("postgres.log");
        server
            .run("pg_ctl", |cmd| {
                cmd.arg("-D").arg(&data).arg("-l").arg(&log).args([
                    "-w",
                    "-t",
                    START_WAIT_SECS,
                    "start",
                ])
            })
            .await?;
        Ok(server)
    }

    /// Creates a fresh, empty database and returns its URL (as the superuser).
    pub async fn create_database(&self) -> anyhow::Result<String> {
        let name = format!("bench_{}", std::process::id());
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={SUPERUSER} dbname=postgres",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .context("connecting to the bench's PostgreSQL")?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Loopback TCP only, and settings for a throwaway server under load.
    fn configure(&self) -> anyhow::Result<()> {
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .context("opening postgresql.conf")?;
        writeln!(
            conf,
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             fsync = off\nmax_connections = 200",
            self.port
        )?;
        Ok(())
    }

    /// Runs `program` of the PostgreSQL binaries, as the server's user, with the arguments
    /// `args` adds; an error carries its output.
    async fn run(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> anyhow::Result<()> {
        let mut cmd = self.command(program);
        let output = args(&mut cmd)
            .output()
            .await
            .with_context(|| format!("running {program}"))?;
        if !output.status.success() {
            bail!(
                "{program} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some(user) = &self.user {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }
}

impl Drop for BenchPostgres {
    fn drop(&mut self) {
        // Fast shutdown: the bench is over, its data is thrown away with the directory.
        let mut cmd = std::process::Command::new(self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(user) = &self.user {
            std::os::unix::process::CommandExt::uid(&mut cmd, user.uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, user.gid);
        }
        if let Err(e) = cmd.status() {
            eprintln!("warning: stopping the bench's PostgreSQL: {e}");
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[tokio::test]
    async fn a_bench_server_takes_a_database_and_is_gone_after_drop() {
        let pg = BenchPostgres::start().await.unwrap();
        let url = pg.create_database().await.unwrap();
        let dir: PathBuf = pg.dir.path().to_path_buf();
        let store = broker::store::Store::connect(&url).await.unwrap();
        drop(store);
        let port = pg.port;
        drop(pg);
        assert!(!Path::new(&dir).exists(), "{} is left", dir.display());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "still listening on {port}"
        );
    }
}
