//! `osbctl up`: starts the stack, says where everything is (never the password itself), and
//! runs until Ctrl-C or SIGTERM, which stop the whole stack in order, broker first.
//!
//! The process owns the only signal handler: the services it runs in-process have actix's own
//! signal handling disabled, so a SIGTERM (from `kill`, systemd, `timeout`, a container
//! runtime or `osbctl down`) never stops one server while the others keep serving.

use crate::cli::{UpArgs, UpBackend};
use crate::stack::{Stack, StackOptions};
use anyhow::{anyhow, bail, Context};
use deployer::config::BoshSettings;
use std::fs;
use std::path::{Path, PathBuf};
use tokio::signal::unix::{signal, SignalKind};

/// The file under the data dir holding the pid of the `osbctl up` serving it.
pub const PID_FILE: &str = "osbctl-up.pid";
/// The file under the data dir with the variables `osbctl` client commands read.
pub const ENV_FILE: &str = "osbctl.env";

/// Where the broker password came from, for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Generated on the first start and kept in this file.
    Generated(PathBuf),
    /// Read from this file (`--password-file`).
    File(PathBuf),
    /// Read from the environment variable `OSB_PASSWORD`.
    Environment,
}

impl PasswordSource {
    /// The banner's text for it.
    pub fn describe(&self) -> String {
        match self {
            Self::Generated(p) => format!("generated, in {}", p.display()),
            Self::File(p) => format!("in {}", p.display()),
            Self::Environment => "from the environment variable OSB_PASSWORD".into(),
        }
    }
}

/// The password `up` was given (file first, then `OSB_PASSWORD`) and where it came from;
/// `None` means the stack generates one (or reuses the one it generated before).
fn given_password(args: &UpArgs) -> anyhow::Result<Option<(String, PasswordSource)>> {
    if let Some(file) = &args.password_file {
        let password = crate::cli::read_password_file(file)?;
        let file = fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        return Ok(Some((password, PasswordSource::File(file))));
    }
    match std::env::var("OSB_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(Some((p, PasswordSource::Environment))),
        _ => Ok(None),
    }
}

/// `osbctl up`: start the stack, print how to use it, run until Ctrl-C or SIGTERM.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while the stack starts stops it once it is up.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let given = given_password(&args)?;
    let bosh = bosh_settings(&args)?;
    // Claimed before anything in the data dir changes: a refused second `up` touches nothing.
    fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let root = fs::canonicalize(&args.data_dir)?;
    let _pid_file = PidFile::claim(&root)?;
    let opts = StackOptions {
        listen: args.listen,
        username: args.username,
        password: given.as_ref().map(|(p, _)| p.clone()),
        bosh: bosh.clone(),
        ..StackOptions::new(&root)
    };
    let stack = Stack::start(opts).await?;
    let source = match given {
        Some((_, source)) => source,
        None => PasswordSource::Generated(stack.layout.secrets().join("broker-password")),
    };
    let env_file = root.join(ENV_FILE);
    write_env_file(&env_file, &stack)?;
    println!("{}", banner(&stack, &source, &env_file, bosh.as_ref()));
    let signal = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal,
        "stopping the broker, the SPIs and the deployer, in that order"
    );
    stack.stop().await;
    tracing::info!("stack stopped; its data servers keep running (`osbctl down` stops them)");
    Ok(())
}

/// The `[bosh]` settings of `osbctl up --backend bosh`: the `--bosh-config` file's section with
/// the `--director-…` options over it; `None` for another backend.
pub fn bosh_settings(args: &UpArgs) -> anyhow::Result<Option<BoshSettings>> {
    if args.backend != UpBackend::Bosh {
        return Ok(None);
    }
    let mut section = match &args.bosh_config {
        Some(path) => {
            let file: serde_json::Value = common::settings::load(
                &serde_json::json!({}),
                Some(path),
                "OSBCTL_BOSH_CONFIG_FILE",
            )
            .with_context(|| format!("reading the bosh config {}", path.display()))?;
            file.get("bosh").cloned().ok_or_else(|| {
                anyhow!("the bosh config {} has no [bosh] section", path.display())
            })?
        }
        None => serde_json::json!({}),
    };
    let flags = [
        ("director_url", args.director_url.clone()),
        ("ca_file", path_text(&args.director_ca_file)),
        ("client", args.director_client.clone()),
        (
            "client_secret_file",
            path_text(&args.director_client_secret_file),
        ),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            section[key] = serde_json::Value::String(value);
        }
    }
    if args.director_client_secret_file.is_some() {
        // The option's file, not a secret the config file may also hold.
        if let Some(section) = section.as_object_mut() {
            section.remove("client_secret");
        }
    }
    // A secret of the wrong type would be quoted by the decoding error: it is cut out.
    let secret = section.get("client_secret").map(|v| match v.as_str() {
        Some(text) => text.to_string(),
        None => v.to_string(),
    });
    let settings: BoshSettings = serde_json::from_value(section).map_err(|e| {
        let mut reason = e.to_string();
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            reason = reason.replace(&secret, common::settings::REDACTED);
        }
        anyhow!("--backend bosh needs the Director's url, CA file, client and templates (--bosh-config, --director-…): {reason}")
    })?;
    settings
        .secret()
        .map_err(|e| anyhow!("--backend bosh: {e}"))?;
    if settings.templates.is_empty() {
        bail!("--backend bosh needs manifest templates: a [bosh.templates] table in --bosh-config");
    }
    Ok(Some(settings))
}

fn path_text(path: &Option<PathBuf>) -> Option<String> {
    path.as_ref().map(|p| p.display().to_string())
}

fn banner(
    stack: &Stack,
    source: &PasswordSource,
    env_file: &Path,
    bosh: Option<&BoshSettings>,
) -> String {
    let backend = match bosh {
        Some(b) => format!(
            "  deployer:   one BOSH deployment per instance, Director {}\n",
            b.director_url
        ),
        None => String::new(),
    };
    format!(
        "\nThe service broker is up.\n\n  broker URL: {}\n  username:   {}\n  password:   {}\n  data dir:   {}\n{backend}\n\
         Drive it with osbctl (URL, user and password are in {}):\n  set -a; . {}; set +a\n  osbctl catalog\n  \
         osbctl provision my-db --service postgresql --plan small\n  osbctl bind my-db my-binding\n\n\
         Ctrl-C (or SIGTERM) stops the stack; the data servers keep running and are adopted on the\n\
         next start. `osbctl down` stops everything, `osbctl down --purge` also deletes the data dir.",
        stack.broker_url,
        stack.username,
        source.describe(),
        stack.layout.root.display(),
        env_file.display(),
        env_file.display(),
    )
}

/// Writes the variables the client commands read (mode 0600: it holds the password).
pub fn write_env_file(path: &Path, stack: &Stack) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    writeln!(f, "OSB_BROKER_URL={}", stack.broker_url)?;
    writeln!(f, "OSB_USERNAME={}", stack.username)?;
    writeln!(f, "OSB_PASSWORD={}", stack.password)?;
    Ok(())
}

/// The pid of the `osbctl up` serving the data dir `root`, if one runs.
pub fn running_pid(root: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(root.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let is_osbctl = deployer::sys::cmdline(pid).is_some_and(|c| c.contains("osbctl"));
    (pid != std::process::id() && deployer::sys::is_alive(pid) && is_osbctl).then_some(pid)
}

/// This process's claim on a data dir; removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    /// Refuses when another `osbctl up` serves the data dir; else records this process.
    fn claim(root: &Path) -> anyhow::Result<Self> {
        if let Some(pid) = running_pid(root) {
            bail!(
                "osbctl up already runs on {} (pid {pid}); stop it with `osbctl down --data-dir {}`",
                root.display(),
                root.display()
            );
        }
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = root.join(PID_FILE);
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        up: UpArgs,
    }

    fn args(extra: &[&str]) -> UpArgs {
        Command::parse_from(std::iter::once("up").chain(extra.iter().copied())).up
    }

    #[test]
    fn the_director_options_win_over_the_bosh_config_file_and_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bosh.toml");
        fs::write(
            &config,
            r#"
[bosh]
director_url = "https://10.0.0.6:25555"
ca_file = "/etc/director-ca.pem"
client = "from-file"
client_secret = "secret-in-file"
poll_interval_ms = 50

[bosh.templates.redis-7.default]
releases = [{ name = "redis", version = 7 }]
stemcell = { os = "ubuntu-noble", version = "latest" }
vm_type = "small"
persistent_disk_type = "5GB"
networks = ["default"]
azs = ["z1"]
instances = 1
"#,
        )
        .unwrap();
        let secret_file = dir.path().join("secret");
        fs::write(&secret_file, "secret-in-option-file\n").unwrap();
        let config = config.display().to_string();
        let from_file = bosh_settings(&args(&["--backend", "bosh", "--bosh-config", &config]))
            .unwrap()
            .unwrap();
        assert_eq!(from_file.client, "from-file");
        assert_eq!(from_file.secret().unwrap().expose(), "secret-in-file");
        assert_eq!(from_file.poll_interval_ms, 50);
        assert_eq!(
            from_file.templates["redis-7"]["default"].releases[0].version,
            "7"
        );

        let secret_file = secret_file.display().to_string();
        let flagged = bosh_settings(&args(&[
            "--backend",
            "bosh",
            "--bosh-config",
            &config,
            "--director-url",
            "https://10.0.0.7:25555",
            "--director-client",
            "from-option",
            "--director-client-secret-file",
            &secret_file,
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(flagged.director_url, "https://10.0.0.7:25555");
        assert_eq!(flagged.client, "from-option");
        assert_eq!(flagged.secret().unwrap().expose(), "secret-in-option-file");
        assert_eq!(flagged.ca_file, Path::new("/etc/director-ca.pem"));

        assert!(bosh_settings(&args(&["--bosh-config", &config]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_quoted_in_the_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bosh.toml");
        fs::write(
            &config,
            "[bosh]\ndirector_url = \"https://10.0.0.6:25555\"\nca_file = \"/ca.pem\"\n\
             client = \"c\"\nclient_secret = 987654321\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let refused = bosh_settings(&args(&["--backend", "bosh", "--bosh-config", &config]))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--backend bosh needs"), "{refused}");
        assert!(refused.contains("[redacted]"), "{refused}");
        assert!(!refused.contains("987654321"), "{refused}");
    }
}
