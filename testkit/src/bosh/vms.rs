//! The fake's "VMs": what a CPI would create, made of processes. Each VM is a loopback IP
//! of its own (`127.x.y.z`) and a directory; each job of the VM whose `properties.osb` asks
//! for a server gets a real PostgreSQL or Redis started on `ip:port` by the deployer's own
//! process backend (`initdb` as an unprivileged user with the admin as superuser and SCRAM
//! passwords, the settings in the server's config file, Redis with an ACL file where the admin
//! has every right and `default` is off; the backend restarts a server that dies, like monit).
//!
//! Every fake claims a block `127.x.y.0/24` for its VMs by binding a UDP socket on
//! `127.x.y.1` (port [`CLAIM_PORT`]) for its whole life, so fakes in concurrent test
//! processes never hand out the same IP.

use super::manifest::{Job, ServerSpec};
use common::deployer::DeploymentSpec;
use deployer::backend::process::ProcessBackend;
use deployer::backend::{Backend, Progress};
use deployer::config::{ProcessSettings, SupervisionSettings};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The port of the UDP socket that claims a fake's IP block (the Director's default port).
pub const CLAIM_PORT: u16 = 25555;
/// The first host number of a block handed to a VM (`.1` is the claim).
const FIRST_HOST: u8 = 2;

/// The IP block of one fake and the next free host number in it.
#[derive(Debug)]
pub(crate) struct IpBlock {
    prefix: (u8, u8),
    next: Mutex<u8>,
    _claim: UdpSocket,
}

impl IpBlock {
    /// Claims a free block (`127.x.y.0/24`, `x` ≥ 16 so nothing near `127.0.0.1`).
    pub fn claim() -> anyhow::Result<Self> {
        for _ in 0..64 {
            let bytes = *uuid::Uuid::new_v4().as_bytes();
            let prefix = (16 + bytes[0] % 232, bytes[1]);
            let claim_ip = Ipv4Addr::new(127, prefix.0, prefix.1, 1);
            if let Ok(socket) = UdpSocket::bind((claim_ip, CLAIM_PORT)) {
                return Ok(Self {
                    prefix,
                    next: Mutex::new(FIRST_HOST),
                    _claim: socket,
                });
            }
        }
        anyhow::bail!("no free 127.x.y.0/24 block for the fake Director's VMs")
    }

    /// The next unused IP of the block.
    pub fn allocate(&self) -> Result<Ipv4Addr, String> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if *next == u8::MAX {
            return Err("the fake Director's IP block is exhausted (253 VMs)".into());
        }
        let ip = Ipv4Addr::new(127, self.prefix.0, self.prefix.1, *next);
        *next += 1;
        Ok(ip)
    }
}

/// One VM of one instance of an instance group.
pub(crate) struct Vm {
    /// VM cid (`vm-<uuid>`).
    pub cid: String,
    /// Agent id.
    pub agent_id: String,
    /// Instance id.
    pub id: String,
    /// Its IP.
    pub ip: Ipv4Addr,
    /// Its az.
    pub az: Option<String>,
    /// When it was created (Unix seconds).
    pub created_at: u64,
    dir: PathBuf,
    /// The servers of its jobs, by job name.
    servers: Mutex<BTreeMap<String, JobServer>>,
}

/// The server of one job: a process backend of its own under `<vm>/<job>/`, whose one-port
/// range is the manifest's port (the process backend picks a port once and keeps it).
#[derive(Clone)]
struct JobServer {
    port: u16,
    dir: PathBuf,
    backend: Arc<ProcessBackend>,
}

impl Vm {
    /// Creates the VM: its directory under `root`, traversable by the server user.
    pub fn create(root: &Path, ip: Ipv4Addr, az: Option<String>) -> Result<Self, String> {
        let cid = format!("vm-{}", uuid::Uuid::new_v4());
        let dir = root.join(&cid);
        create_traversable_dir(&dir)?;
        Ok(Self {
            cid,
            agent_id: uuid::Uuid::new_v4().to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            ip,
            az,
            created_at: super::tasks::now(),
            dir,
            servers: Mutex::default(),
        })
    }

    /// Brings the servers of `jobs` to what their `properties.osb` ask (started, restarted
    /// with changed settings, or left alone), and stops the servers of jobs no longer there.
    pub async fn apply(&self, jobs: &[Job], progress: &Progress) -> Result<(), String> {
        let wanted: BTreeSet<&str> = jobs
            .iter()
            .filter(|j| j.server.is_some())
            .map(|j| j.name.as_str())
            .collect();
        let gone: Vec<String> = self
            .lock_servers()
            .keys()
            .filter(|job| !wanted.contains(job.as_str()))
            .cloned()
            .collect();
        for job in gone {
            self.remove_job(&job, progress).await?;
        }
        for job in jobs {
            let Some(server) = &job.server else { continue };
            let spec = DeploymentSpec {
                name: job.name.as_str().into(),
                engine: server.engine,
                version: server.version.clone(),
                settings: server.settings.clone(),
                admin: server.admin.clone(),
                labels: BTreeMap::new(),
            };
            let job_server = self.job_server(&job.name, server)?;
            job_server
                .backend
                .validate(&spec)
                .map_err(|e| format!("job {}: {e}", job.name))?;
            job_server
                .backend
                .apply(&spec, progress)
                .await
                .map_err(|e| format!("job {} failed to start: {e}", job.name))?;
        }
        Ok(())
    }

    /// Stops every server of the VM and removes its directory (the persistent disk with it).
    pub async fn destroy(&self, progress: &Progress) -> Result<(), String> {
        let jobs: Vec<String> = self.lock_servers().keys().cloned().collect();
        for job in jobs {
            self.remove_job(&job, progress).await?;
        }
        remove_dir(&self.dir)
    }

    /// Stops every server of the VM at once, without the runtime (for `Drop`).
    pub fn stop_now(&self) {
        for server in self.lock_servers().values() {
            server.backend.shutdown();
            deployer::stop_all_servers(&server.dir);
        }
    }

    /// The job's server, made on its first apply; a port change later is refused.
    fn job_server(&self, job: &str, server: &ServerSpec) -> Result<JobServer, String> {
        let mut servers = self.lock_servers();
        if let Some(existing) = servers.get(job) {
            if existing.port != server.port {
                return Err(format!(
                    "job {job}: the fake Director cannot move a running server from port {} to {}",
                    existing.port, server.port
                ));
            }
            return Ok(existing.clone());
        }
        let dir = self.dir.join(job);
        create_traversable_dir(&dir)?;
        let settings = ProcessSettings {
            postgres_bin_dir: std::env::var_os("PG_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| ProcessSettings::default().postgres_bin_dir),
            advertise_host: self.ip.to_string(),
            port_range: Some((server.port, server.port)),
            ..ProcessSettings::default()
        };
        let supervision = SupervisionSettings {
            check_interval_ms: 200,
            ..SupervisionSettings::default()
        };
        let backend = ProcessBackend::new(&dir, settings, supervision)
            .map_err(|e| format!("job {job}: {e}"))?;
        let created = JobServer {
            port: server.port,
            dir,
            backend,
        };
        servers.insert(job.to_string(), created.clone());
        Ok(created)
    }

    async fn remove_job(&self, job: &str, progress: &Progress) -> Result<(), String> {
        let Some(server) = self.lock_servers().get(job).cloned() else {
            return Ok(());
        };
        server
            .backend
            .delete(job, progress)
            .await
            .map_err(|e| format!("stopping job {job}: {e}"))?;
        server.backend.shutdown();
        self.lock_servers().remove(job);
        remove_dir(&server.dir)
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, JobServer>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A directory (mode 0711) the unprivileged server user can pass through.
pub(crate) fn create_traversable_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", dir.display())),
    }
}
