//! Safe wrappers over the few unix facilities the process backend needs: signals, process
//! liveness, the effective user, and OS users read from `/etc/passwd`.

use std::io;
use std::path::Path;

/// Ask a process to shut down (PostgreSQL: fast shutdown).
pub const SIGINT: i32 = libc::SIGINT;
/// Ask a process to terminate (Redis: save and exit).
pub const SIGTERM: i32 = libc::SIGTERM;
/// Kill a process outright.
pub const SIGKILL: i32 = libc::SIGKILL;

/// An OS user the servers run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    #[expect(unsafe_code, reason = "geteuid has no preconditions and cannot fail")]
    unsafe {
        libc::geteuid()
    }
}

/// Sends `signal` to the process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    kill(to_pid(pid)?, signal)
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn send_signal_to_group(pgid: u32, signal: i32) -> io::Result<()> {
    kill(-to_pid(pgid)?, signal)
}

fn to_pid(pid: u32) -> io::Result<i32> {
    match i32::try_from(pid) {
        Ok(p) if p > 1 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        )),
    }
}

fn kill(pid: i32, signal: i32) -> io::Result<()> {
    #[expect(
        unsafe_code,
        reason = "kill takes plain integers; errors come back through errno"
    )]
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
pub fn is_alive(pid: u32) -> bool {
    let Ok(p) = to_pid(pid) else {
        return false;
    };
    match kill(p, 0) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(_) => return false,
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain anything.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The command line of `pid`, arguments joined by spaces, if it can be read.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    Some(parts.join(" "))
}

/// Looks `name` up in `/etc/passwd`.
pub fn lookup_user(name: &str) -> io::Result<Option<OsUser>> {
    lookup_user_in(Path::new("/etc/passwd"), name)
}

fn lookup_user_in(passwd: &Path, name: &str) -> io::Result<Option<OsUser>> {
    let text = std::fs::read_to_string(passwd)?;
    Ok(parse_passwd(&text, name))
}

fn parse_passwd(text: &str, name: &str) -> Option<OsUser> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let (user, _pw, uid, gid) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            (user == name).then_some(())?;
            Some(OsUser {
                name: user.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passwd_line_yields_the_user_ids() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    postgres:x:101:104:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            parse_passwd(text, "postgres"),
            Some(OsUser {
                name: "postgres".into(),
                uid: 101,
                gid: 104
            })
        );
        assert_eq!(parse_passwd(text, "post"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(is_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn signalling_pid_one_or_zero_is_refused() {
        assert!(send_signal(0, SIGKILL).is_err());
        assert!(send_signal_to_group(1, SIGKILL).is_err());
    }
}
