//! Atomic file writes: a temp file in the destination directory, then a rename.
//!
//! This is the only module that renames files into place, so a crash or Ctrl-C can only
//! ever leave the previous content or the new content at a path, never half of it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// An I/O error with what was attempted and on which path.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{}`", path.display())]
pub struct FsError {
    /// What was attempted, lowercase ("write", "create directory", ...).
    pub action: &'static str,
    /// The path it was attempted on.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl FsError {
    /// Wraps `source` with the action and path.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `create_dir_all` with the path in the error.
pub fn create_dir_all(path: &Path) -> Result<(), FsError> {
    std::fs::create_dir_all(path).map_err(|e| FsError::new("create directory", path, e))
}

/// A temp file in `dir` (created if missing) that becomes `dest` on [`persist`].
pub fn temp_in(dir: &Path) -> Result<NamedTempFile, FsError> {
    create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| FsError::new("create a temporary file in", dir, e))
}

/// Flushes `tmp` to disk and renames it to `dest`, replacing what was there.
pub fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), FsError> {
    tmp.as_file()
        .sync_data()
        .map_err(|e| FsError::new("write", dest, e))?;
    tmp.persist(dest)
        .map_err(|e| FsError::new("write", dest, e.error))?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically (temp file in the same directory + rename).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir)?;
    tmp.write_all(bytes)
        .map_err(|e| FsError::new("write", dest, e))?;
    persist(tmp, dest)
}

/// An exclusive lock on a file, held until dropped (like cargo's lock on `target/`).
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

/// Takes an exclusive lock on `path` (created if missing); calls `on_wait` first when
/// another process holds it, then blocks until it is free.
pub fn lock_exclusive(path: &Path, on_wait: impl FnOnce()) -> Result<FileLock, FsError> {
    if let Some(dir) = path.parent() {
        create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| FsError::new("open lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            on_wait();
            file.lock().map_err(|e| FsError::new("lock", path, e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(FsError::new("lock", path, e)),
    }
    Ok(FileLock { _file: file })
}

/// Reads a file with the path in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, FsError> {
    std::fs::read(path).map_err(|e| FsError::new("read", path, e))
}

/// Places `src` at `dest` by hard link when both are on one filesystem, else by an atomic
/// copy. Used for content-addressed blobs, which never change once written.
pub fn link_or_copy(src: &Path, dest: &Path) -> Result<(), FsError> {
    if dest.exists() {
        return Ok(());
    }
    if let Some(dir) = dest.parent() {
        create_dir_all(dir)?;
    }
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir)?;
    let mut from = std::fs::File::open(src).map_err(|e| FsError::new("read", src, e))?;
    io::copy(&mut from, &mut tmp).map_err(|e| FsError::new("write", dest, e))?;
    persist(tmp, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
