//! The SQLite state file is the broker's alone: created with mode 0600 before SQLite opens it
//! (SQLite gives its `-wal` and `-shm` files the mode of the database file), and an existing
//! file and its companions made 0600 again (a file created by an earlier version may be 0644).

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

/// The files SQLite keeps beside the database in WAL mode, and its rollback journal.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes `path` (a SQLite database file, created empty if missing) and its companions 0600.
/// In-memory and URI-style names (`:memory:`, `file:…`) are left to SQLite.
pub fn make_private(path: &str) -> io::Result<()> {
    if path.is_empty() || path.starts_with(':') || path.starts_with("file:") {
        return Ok(());
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let private = fs::Permissions::from_mode(0o600);
    fs::set_permissions(path, private.clone())?;
    for suffix in COMPANIONS {
        match fs::set_permissions(format!("{path}{suffix}"), private.clone()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_file_and_an_old_world_readable_one_with_its_wal_become_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.sqlite");
        make_private(db.to_str().unwrap()).unwrap();
        assert_eq!(mode(&db), 0o600);

        let old = dir.path().join("old.sqlite");
        let wal = dir.path().join("old.sqlite-wal");
        for f in [&old, &wal] {
            fs::write(f, b"").unwrap();
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_private(old.to_str().unwrap()).unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
