//! `osbctl down`: stops a local stack completely. First the `osbctl up` serving the data dir
//! (SIGTERM: the same graceful stop as Ctrl-C), then the data servers its deployer started,
//! which outlive `osbctl up` by design; with `--purge` it then deletes the data dir.

use crate::cli::DownArgs;
use crate::stack::Layout;
use anyhow::{bail, Context};
use std::fs;
use std::time::{Duration, Instant};

/// How long `osbctl up` gets to stop gracefully.
const UP_STOP_GRACE: Duration = Duration::from_secs(60);

/// `osbctl down [--purge]`.
pub async fn down(args: DownArgs) -> anyhow::Result<()> {
    if !args.data_dir.exists() {
        println!(
            "{}: no such data dir, nothing to stop",
            args.data_dir.display()
        );
        return Ok(());
    }
    let layout = Layout {
        root: fs::canonicalize(&args.data_dir)?,
    };
    if !is_stack_dir(&layout) {
        bail!(
            "{} is not the data dir of an osbctl stack (it has no secrets/encryption-key); \
             leaving it alone",
            layout.root.display()
        );
    }
    if let Some(pid) = crate::up::running_pid(&layout.root) {
        println!("stopping osbctl up (pid {pid})…");
        stop_up(pid).await?;
    }
    let deployer_dir = layout.deployer();
    let stopped = tokio::task::spawn_blocking(move || deployer::stop_all_servers(&deployer_dir))
        .await
        .context("stopping the data servers")?;
    println!("stopped {stopped} data server(s)");
    if args.purge {
        fs::remove_dir_all(&layout.root)
            .with_context(|| format!("cannot delete {}", layout.root.display()))?;
        println!("deleted {}", layout.root.display());
    }
    Ok(())
}

/// A data dir `osbctl up` made (so `--purge` never deletes an unrelated directory).
fn is_stack_dir(layout: &Layout) -> bool {
    layout.secrets().join("encryption-key").is_file()
}

/// SIGTERM to `osbctl up`, then waits until it has exited.
async fn stop_up(pid: u32) -> anyhow::Result<()> {
    deployer::sys::send_signal(pid, deployer::sys::SIGTERM)
        .with_context(|| format!("cannot signal osbctl up (pid {pid})"))?;
    let start = Instant::now();
    while deployer::sys::is_alive(pid) {
        if start.elapsed() > UP_STOP_GRACE {
            bail!(
                "osbctl up (pid {pid}) did not stop within {} s",
                UP_STOP_GRACE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
