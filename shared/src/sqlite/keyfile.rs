//! The embedded store's secrets at rest: the data directory is private
//! (0700, its files 0600), and the master key lives in its own file
//! (`master.key` in the data directory, or `HOOKRUN_MASTER_KEY_FILE`), never
//! in the database. Every secret in the database (agent webhook secrets,
//! sealed trigger and subscription secrets) is sealed under that key, so a
//! copy of the database file alone (a backup) holds nothing usable.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{StoreError, StoreResult};

/// The master key file's name in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (permission denied)"
    } else {
        ""
    };
    StoreError::Backend(format!("cannot {what} {}{hint}: {e}", path.display()))
}

/// Creates `dir` readable by this user only (existing directories are left
/// as they are, and warned about when others can read them).
pub fn private_dir(dir: &Path) -> StoreResult<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(StoreError::Backend(format!(
            "the data directory {} is not a directory",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error("create", dir, e))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    warn_if_open(dir);
    Ok(())
}

/// Makes `path` readable by this user only, creating it empty if missing.
pub fn private_file(path: &Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| io_error("open", path, e))?;
    warn_if_open(path);
    Ok(())
}

/// Logs a warning when others than this user may read `path`.
pub fn warn_if_open(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "others can read this: it holds hookrun's secrets (chmod go-rwx)"
                );
            }
        }
    }
}

/// The master key's values, current first: from `path`, one per line.
pub fn read(path: &Path) -> StoreResult<Option<Vec<String>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let keys: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            if keys.is_empty() {
                return Err(StoreError::Backend(format!(
                    "the master key file {} is empty",
                    path.display()
                )));
            }
            warn_if_open(path);
            Ok(Some(keys))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Writes a new master key file (0600) unless one exists; returns the keys
/// the file holds afterwards (another process may have written first).
pub fn create(path: &Path, keys: &[String]) -> StoreResult<Vec<String>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            let text = keys.join("\n") + "\n";
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| io_error("write", path, e))?;
            Ok(keys.to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path)?.ok_or_else(|| {
            StoreError::Backend(format!("the master key file {} vanished", path.display()))
        }),
        Err(e) => Err(io_error("create", path, e)),
    }
}

/// Where the master key of a data directory lives unless configured.
pub fn default_path(dir: &Path) -> PathBuf {
    dir.join(MASTER_KEY_FILE)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_and_a_key_written_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let key = default_path(&dir);
        assert_eq!(read(&key).unwrap(), None);
        let first = create(&key, &["k1".into()]).unwrap();
        let second = create(&key, &["k2".into()]).unwrap();
        assert_eq!(first, second, "the first writer wins");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let file = tmp.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let e = private_dir(&file).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    /// An unwritable data directory says so in words (tests may run as
    /// root, where no directory is unwritable, so the error is made here).
    #[test]
    fn permission_errors_say_permission_denied() {
        let e = io_error(
            "create",
            Path::new("/srv/data"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let text = e.to_string();
        assert!(text.contains("/srv/data (permission denied)"), "{text}");
        let other = io_error(
            "create",
            Path::new("/srv/data"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(!other.to_string().contains("permission denied"));
    }
}
