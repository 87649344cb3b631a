//! What the docker backend's images expect of each engine, the only place it asks which engine
//! a container runs. The public `postgres` and `redis` images (and the local test images that
//! mimic them): PostgreSQL reads its admin from `POSTGRES_USER` and `POSTGRES_PASSWORD_FILE`
//! (a file copied into the container before it starts, never an environment variable that
//! `docker inspect` would show) and takes settings as `-c key=value`; Redis takes settings as
//! `--key value` and its admin from `users.acl` (a SHA-256 hash, copied into the volume once).

use super::Record;
use crate::engine;
use common::deployer::Engine;
use common::secret::SecretString;
use std::io;

/// The user the public `postgres` and `redis` images run their servers as (the local images
/// use the same); files copied into a container belong to it.
const SERVER_UID: u64 = 999;
/// Where the PostgreSQL admin password file is copied in the container.
const PG_PASSWORD_DIR: &str = "osb";
const PG_PASSWORD_FILE: &str = "/osb/admin-password";
const PG_DATA: &str = "/var/lib/postgresql/data";
const REDIS_DATA: &str = "/data";

/// How a container runs the record's server.
pub(super) struct ServerRun {
    /// Its environment.
    pub env: Vec<String>,
    /// Its command.
    pub cmd: Vec<String>,
    /// Where the data volume is mounted.
    pub data: &'static str,
    /// The signal that stops it (`None`: the image's).
    pub stop_signal: Option<String>,
}

/// The environment, command, data mount and stop signal of the record's server.
pub(super) fn server_run(record: &Record) -> ServerRun {
    let settings = engine::settings_args(record.engine, &record.settings);
    match record.engine {
        Engine::Postgresql => ServerRun {
            env: vec![
                format!("POSTGRES_USER={}", record.admin_username),
                format!("POSTGRES_PASSWORD_FILE={PG_PASSWORD_FILE}"),
                format!("PGDATA={PG_DATA}"),
            ],
            cmd: std::iter::once("postgres".to_string())
                .chain(settings)
                .collect(),
            data: PG_DATA,
            // PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
            stop_signal: Some("SIGINT".to_string()),
        },
        Engine::Redis => {
            let acl = format!("{REDIS_DATA}/{}", engine::redis::ACL_FILE);
            let port = engine::default_port(Engine::Redis).to_string();
            let fixed = [
                "redis-server",
                "--port",
                &port,
                "--dir",
                REDIS_DATA,
                "--aclfile",
                &acl,
                "--appendonly",
                "yes",
                "--protected-mode",
                "no",
            ];
            ServerRun {
                env: Vec::new(),
                cmd: fixed
                    .iter()
                    .map(|s| s.to_string())
                    .chain(settings)
                    .collect(),
                data: REDIS_DATA,
                stop_signal: None,
            }
        }
    }
}

/// The files the server needs at its first start, as a tar archive and the container path to
/// unpack it at: the PostgreSQL admin password file (every container), Redis' first
/// `users.acl` (once per volume: `None` once the record is `seeded`).
pub(super) fn seed_files(
    record: &Record,
    password: &SecretString,
) -> io::Result<Option<(Vec<u8>, &'static str)>> {
    Ok(match record.engine {
        Engine::Postgresql => Some((
            tar_archive(&[
                (PG_PASSWORD_DIR, None, 0o700),
                (
                    &PG_PASSWORD_FILE[1..],
                    Some(password.expose().as_bytes()),
                    0o400,
                ),
            ])?,
            "/",
        )),
        Engine::Redis if !record.seeded => {
            let acl = engine::redis::render_acl(&record.admin_username, password);
            Some((
                tar_archive(&[(engine::redis::ACL_FILE, Some(acl.as_bytes()), 0o600)])?,
                REDIS_DATA,
            ))
        }
        Engine::Redis => None,
    })
}

/// Whether seeding leaves files in the volume for good (the record becomes `seeded`).
pub(super) fn seeds_volume(engine: Engine) -> bool {
    engine == Engine::Redis
}

/// A tar archive of directories (`None`) and files owned by the server user.
fn tar_archive(entries: &[(&str, Option<&[u8]>, u32)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents, mode) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_mode(*mode);
        header.set_uid(SERVER_UID);
        header.set_gid(SERVER_UID);
        header.set_mtime(0);
        match contents {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                header.set_cksum();
                builder.append(&header, *bytes)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, io::empty())?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_archive_holds_the_files_owned_by_the_server_user() {
        let bytes =
            tar_archive(&[("osb", None, 0o700), ("osb/pw", Some(b"s3cret"), 0o400)]).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u64, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("osb".to_string(), SERVER_UID, 0o700, 0),
                ("osb/pw".to_string(), SERVER_UID, 0o400, 6)
            ]
        );
    }

    fn record(engine: Engine) -> Record {
        Record {
            engine,
            image: "img".into(),
            host_port: 40000,
            admin_username: "admin".into(),
            settings: BTreeMap::from([("maxmemory".to_string(), "64mb".to_string())]),
            seeded: false,
        }
    }

    #[test]
    fn each_engine_runs_with_its_images_conventions() {
        let pg = server_run(&record(Engine::Postgresql));
        assert_eq!(pg.cmd, ["postgres", "-c", "maxmemory=64mb"]);
        assert!(pg.env.contains(&"POSTGRES_USER=admin".to_string()));
        assert!(pg.env.iter().all(|e| !e.contains("PASSWORD=")));
        assert_eq!(pg.stop_signal.as_deref(), Some("SIGINT"));
        let kv = server_run(&record(Engine::Redis));
        assert_eq!(&kv.cmd[..3], ["redis-server", "--port", "6379"]);
        assert_eq!(&kv.cmd[kv.cmd.len() - 2..], ["--maxmemory", "64mb"]);
        assert!(kv.cmd.contains(&"/data/users.acl".to_string()));
        assert_eq!((kv.data, kv.stop_signal), ("/data", None));
    }

    #[test]
    fn a_seeded_redis_volume_gets_no_second_acl() {
        let password = SecretString::new("pw");
        let mut kv = record(Engine::Redis);
        assert_eq!(seed_files(&kv, &password).unwrap().unwrap().1, "/data");
        kv.seeded = true;
        assert!(seed_files(&kv, &password).unwrap().is_none());
        let pg = record(Engine::Postgresql);
        assert_eq!(seed_files(&pg, &password).unwrap().unwrap().1, "/");
    }
}
