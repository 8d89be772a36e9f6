//! Atomic file writes: a temp file in the destination directory, then a rename.
//!
//! This is the only module that renames files into place, so a crash or Ctrl-C can only
//! ever leave the previous content or the new content at a path, never half of it.
//!
//! Files are created with mode 0666 less the umask, as cargo's own outputs are; only
//! [`write_private`] (credentials) creates 0600, from the first byte. Paths the user
//! names for an output ([`OutputFile`]: `--tarball`, `--image-refs`) are written the way
//! a shell's `>` writes them: a FIFO, a device or `/dev/fd/N` is written in place, a
//! symlink is followed (and stays a symlink), and only a regular file is replaced by a
//! rename. A temp file left by a killed run (`.tmp-<name>.*`, unlocked) is removed the
//! next time that file is written.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// Deletes the files of `dir` whose name `matches` and that are not in `keep`: outputs of
/// earlier runs that this run did not write (another platform set, a format turned off),
/// since a file next to an image must describe that image. A missing `dir` is fine.
pub fn remove_stale(
    dir: &Path,
    matches: impl Fn(&str) -> bool,
    keep: &[&Path],
) -> Result<(), FsError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if matches(&name) && !keep.contains(&path.as_path()) {
            std::fs::remove_file(&path).map_err(|e| FsError::new("remove", &path, e))?;
        }
    }
    Ok(())
}

/// `create_dir_all` with the path in the error.
pub fn create_dir_all(path: &Path) -> Result<(), FsError> {
    std::fs::create_dir_all(path).map_err(|e| FsError::new("create directory", path, e))
}

/// Mode of new output files before the umask (like `File::create`).
const OUTPUT_MODE: u32 = 0o666;
/// Mode of new credentials files.
const PRIVATE_MODE: u32 = 0o600;

fn temp_with(dir: &Path, prefix: &str, mode: u32) -> Result<NamedTempFile, FsError> {
    create_dir_all(dir)?;
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| FsError::new("create a temporary file in", dir, e))
}

/// A temp file in `dir` (created if missing) that becomes `dest` on [`persist`]; mode 0666
/// less the umask.
pub fn temp_in(dir: &Path) -> Result<NamedTempFile, FsError> {
    temp_with(dir, ".tmp-", OUTPUT_MODE)
}

/// The temp-file prefix for `dest`: `.tmp-<file name>.`.
fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".tmp-{name}.")
}

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temp file next to `dest`, locked while this process holds it, after removing the
/// temp files of `dest` that a killed run left behind (those nobody holds a lock on).
fn temp_for(dest: &Path, mode: u32) -> Result<NamedTempFile, FsError> {
    let dir = parent_of(dest);
    let prefix = temp_prefix(dest);
    remove_stale_temps(&dir, &prefix);
    let tmp = temp_with(&dir, &prefix, mode)?;
    // Held until the temp file is persisted or dropped; a run that is killed releases it.
    // Best effort: on a file system without locks the file is simply never cleaned up,
    // since the cleanup only removes files it could lock.
    let _ = tmp.as_file().try_lock();
    Ok(tmp)
}

/// Removes `dir/<prefix>*` files that no live process holds a lock on. Best effort: a
/// file that cannot be opened or removed is left alone.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix)
            || !entry.file_type().is_ok_and(|t| t.is_file())
        {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
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

/// Writes `bytes` to `dest` atomically (temp file in the same directory + rename), mode
/// 0666 less the umask. A file that already holds exactly `bytes` is left as it is (no
/// write, no sync, the same mtime), as cargo leaves fresh outputs: a no-op re-run
/// rewrites nothing.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    if holds(dest, bytes) {
        return Ok(());
    }
    let mut tmp = temp_for(dest, OUTPUT_MODE)?;
    tmp.write_all(bytes)
        .map_err(|e| FsError::new("write", dest, e))?;
    persist(tmp, dest)
}

/// Whether `path` is a regular file (not a link) whose content is `bytes`.
fn holds(path: &Path, bytes: &[u8]) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
        && std::fs::read(path).is_ok_and(|b| b == bytes)
}

/// Writes a credentials file atomically with mode 0600 from its creation (no window in
/// which others can read it). A symlink at `dest` is kept: its target is replaced.
pub fn write_private(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let (dest, _) = resolve_symlink(dest)?;
    let mut tmp = temp_for(&dest, PRIVATE_MODE)?;
    tmp.write_all(bytes)
        .map_err(|e| FsError::new("write", &dest, e))?;
    persist(tmp, &dest)
}

/// Whether `path` names an open descriptor (`/dev/stdout` → `/proc/self/fd/1`,
/// `/dev/fd/63` from a shell's `>(cmd)`): renaming a file there would not reach it.
fn is_descriptor_path(path: &Path) -> bool {
    path.starts_with("/proc") || path.starts_with("/dev/fd")
}

/// `dest` itself, or for a symlink the file it points to (following every link), so that
/// replacing the file keeps the link; and whether a descriptor path was on the way. A
/// dangling link gives its (last) target.
fn resolve_symlink(dest: &Path) -> Result<(PathBuf, bool), FsError> {
    let mut path = dest.to_path_buf();
    let mut descriptor = is_descriptor_path(&path);
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&path).map_err(|e| FsError::new("read link", &path, e))?;
                path = parent_of(&path).join(target);
                descriptor |= is_descriptor_path(&path);
            }
            _ => return Ok((path, descriptor)),
        }
    }
    Err(FsError::new(
        "resolve",
        dest,
        io::Error::other("too many levels of symbolic links"),
    ))
}

/// An output file the user named: replaced atomically when it is (or will be) a regular
/// file, written in place like a shell's `>` when it is a FIFO, a device or a descriptor
/// (`/dev/stdout`, `/dev/fd/N`, `>(cmd)`). A symlink is followed and kept.
#[derive(Debug)]
pub enum OutputFile {
    /// A temp file renamed over the destination on [`OutputFile::finish`].
    Atomic {
        /// The temp file.
        tmp: NamedTempFile,
        /// The regular file it replaces.
        dest: PathBuf,
    },
    /// The special file itself, opened for writing.
    InPlace {
        /// The open file.
        file: std::fs::File,
        /// Its path, for errors.
        dest: PathBuf,
    },
}

impl OutputFile {
    /// Opens `dest` for a new content.
    pub fn create(dest: &Path) -> Result<OutputFile, FsError> {
        let (resolved, descriptor) = resolve_symlink(dest)?;
        let special = match std::fs::metadata(&resolved) {
            Ok(m) => !m.file_type().is_file(),
            Err(_) => false,
        };
        if special || descriptor {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(OUTPUT_MODE)
                .open(dest)
                .map_err(|e| FsError::new("open", dest, e))?;
            return Ok(OutputFile::InPlace {
                file,
                dest: dest.to_path_buf(),
            });
        }
        Ok(OutputFile::Atomic {
            tmp: temp_for(&resolved, OUTPUT_MODE)?,
            dest: resolved,
        })
    }

    /// The file to write to.
    pub fn file(&self) -> &std::fs::File {
        match self {
            OutputFile::Atomic { tmp, .. } => tmp.as_file(),
            OutputFile::InPlace { file, .. } => file,
        }
    }

    /// Where the content goes (the symlink's target for a symlink).
    pub fn dest(&self) -> &Path {
        match self {
            OutputFile::Atomic { dest, .. } | OutputFile::InPlace { dest, .. } => dest,
        }
    }

    /// Makes the new content visible: the rename for a regular file, a flush otherwise.
    pub fn finish(self) -> Result<(), FsError> {
        match self {
            OutputFile::Atomic { tmp, dest } => persist(tmp, &dest),
            OutputFile::InPlace { mut file, dest } => {
                file.flush().map_err(|e| FsError::new("write", &dest, e))
            }
        }
    }
}

/// Writes `bytes` to a user-named output path with [`OutputFile`]'s rules.
pub fn write_output(dest: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let out = OutputFile::create(dest)?;
    let mut file = out.file();
    file.write_all(bytes)
        .map_err(|e| FsError::new("write", out.dest(), e))?;
    out.finish()
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
    fn write_atomic_leaves_a_file_that_already_holds_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"same").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        write_atomic(&p, b"same").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), old);
        write_atomic(&p, b"sane").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"sane");
        assert_ne!(std::fs::metadata(&p).unwrap().modified().unwrap(), old);
        // A link to a file with those bytes is replaced by the file, as before.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        write_atomic(&link, b"sane").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
    }

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

    /// Issue 20, item 6: temp files of a killed run are removed, those of a live one kept.
    #[test]
    fn r20_stale_temp_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("images.tar");
        let stale = dir.path().join(".tmp-images.tar.KILLED");
        std::fs::write(&stale, b"half an archive").unwrap();
        let live = dir.path().join(".tmp-images.tar.RUNNING");
        std::fs::write(&live, b"being written").unwrap();
        let holder = std::fs::File::open(&live).unwrap();
        holder.lock().unwrap();
        let other = dir.path().join(".tmp-other.json.KILLED");
        std::fs::write(&other, b"{}").unwrap();
        write_output(&dest, b"archive").unwrap();
        assert!(!stale.exists(), "a killed run's temp file is removed");
        assert!(live.exists(), "a running writer's temp file is kept");
        assert!(other.exists(), "another file's temp files are not touched");
        assert_eq!(std::fs::read(&dest).unwrap(), b"archive");
    }

    /// Issue 20, item 6: `/dev/fd/N` (a shell's `>(cmd)`) is written through the
    /// descriptor, and a device stays a device (`/dev/full` reports the full disk).
    #[test]
    fn r20_descriptors_and_devices_are_written_in_place() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (mut reader, writer) = std::io::pipe().unwrap();
        let path = PathBuf::from(format!("/dev/fd/{}", writer.as_raw_fd()));
        write_output(&path, b"through the pipe\n").unwrap();
        drop(writer);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the pipe\n");

        let err = write_output(Path::new("/dev/full"), b"x").unwrap_err();
        assert_eq!(err.path, Path::new("/dev/full"), "{err}");
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(
                &std::fs::symlink_metadata("/dev/full").unwrap().file_type()
            ),
            "/dev/full is still a device"
        );
    }

    /// Issue 20, item 6: a FIFO is written in place and a symlink followed and kept.
    #[test]
    fn r20_special_files_and_symlinks_are_written_like_a_shell_redirect() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("refs.fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo");
        // The reader is bounded: `timeout` ends it if nothing is written.
        let reader = std::process::Command::new("timeout")
            .arg("60")
            .arg("cat")
            .arg(&fifo)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        write_output(&fifo, b"a:latest@sha256:00\n").unwrap();
        let out = reader.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"a:latest@sha256:00\n");
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(
                &std::fs::symlink_metadata(&fifo).unwrap().file_type()
            ),
            "still a FIFO"
        );

        let target = dir.path().join("real/refs.txt");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("refs.txt");
        std::os::unix::fs::symlink("real/refs.txt", &link).unwrap();
        write_output(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // A dangling link is created through, as `>` does.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("real/created.txt", &dangling).unwrap();
        write_output(&dangling, b"made").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("real/created.txt")).unwrap(),
            b"made"
        );
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
