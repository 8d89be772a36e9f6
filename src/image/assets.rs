//! An assets directory → layer entries under its destination in the image (like ko's
//! `kodata`). Nothing outside the directory can get in: symlinks that leave it, absolute
//! symlinks, device files, sockets and FIFOs, and names that are not UTF-8 are refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::image::tar::{Entry, EntryKind};

/// An assets entry that cannot be packaged safely.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot package `{}` from the assets directory: {reason}", path.display())]
#[diagnostic(
    code(containerize::assets),
    help("remove it from the assets directory, or replace it with a regular file")
)]
pub struct AssetError {
    /// The offending path.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

fn refuse(path: &Path, reason: impl Into<String>) -> AssetError {
    AssetError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Whether a relative symlink target at `link_dir` (relative to the assets root) stays
/// inside the root.
fn stays_inside(link_dir: &Path, target: &Path) -> bool {
    let mut depth = link_dir.components().count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Lists `root` recursively as entries under `dest` (an absolute path in the image).
/// Permissions keep only the executable bit distinction (0755 / 0644), so the layer does
/// not depend on the checkout's umask.
pub fn asset_entries(root: &Path, dest: &str) -> Result<Vec<Entry>, AssetError> {
    let prefix = dest.trim_matches('/').to_string();
    let mut out = vec![Entry::dir(&prefix, 0o755)];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let read = std::fs::read_dir(&dir).map_err(|e| refuse(&dir, e.to_string()))?;
        for entry in read {
            let entry = entry.map_err(|e| refuse(&dir, e.to_string()))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(refuse(&path, "its name is not valid UTF-8"));
            };
            let rel_child = rel.join(name);
            let in_image = format!("{prefix}/{}", rel_child.display());
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| refuse(&path, e.to_string()))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                out.push(Entry::dir(&in_image, 0o755));
                stack.push(rel_child);
            } else if ft.is_file() {
                let exec = meta.permissions().mode() & 0o111 != 0;
                out.push(Entry::file(
                    &in_image,
                    if exec { 0o755 } else { 0o644 },
                    path,
                ));
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| refuse(&path, e.to_string()))?;
                if target.is_absolute() {
                    return Err(refuse(
                        &path,
                        format!("it is an absolute symlink (to `{}`)", target.display()),
                    ));
                }
                if !stays_inside(&rel, &target) {
                    return Err(refuse(
                        &path,
                        format!(
                            "it is a symlink that points outside the assets directory (to `{}`)",
                            target.display()
                        ),
                    ));
                }
                let Some(t) = target.to_str() else {
                    return Err(refuse(&path, "its target is not valid UTF-8"));
                };
                out.push(Entry {
                    path: in_image,
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::Symlink(t.to_string()),
                });
            } else {
                return Err(refuse(
                    &path,
                    "it is not a regular file, directory or symlink (device, FIFO or socket)",
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn files_dirs_and_inner_symlinks_are_packaged() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("css")).unwrap();
        std::fs::write(d.path().join("index.html"), "hi").unwrap();
        std::fs::write(d.path().join("css/site.css"), "x").unwrap();
        symlink("../index.html", d.path().join("css/link")).unwrap();
        let mut e: Vec<String> = asset_entries(d.path(), "/app/static")
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        e.sort();
        assert_eq!(
            e,
            [
                "app/static",
                "app/static/css",
                "app/static/css/link",
                "app/static/css/site.css",
                "app/static/index.html"
            ]
        );
    }

    fn refusal(d: &Path) -> String {
        asset_entries(d, "/app/a").unwrap_err().to_string()
    }

    #[test]
    fn fifos_sockets_devices_and_non_utf8_names_are_refused() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();

        let fifo = d.path().join("fifo");
        assert_eq!(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o644) }, 0);
        let err = refusal(d.path());
        assert!(err.contains("fifo") && err.contains("FIFO"), "{err}");
        std::fs::remove_file(&fifo).unwrap();

        let sock = d.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(refusal(d.path()).contains("socket"));
        std::fs::remove_file(&sock).unwrap();

        // Device nodes need root (CI runs as root); /dev/null's numbers: 1, 3.
        if unsafe { libc::geteuid() } == 0 {
            let dev = d.path().join("null");
            let rc = unsafe {
                libc::mknod(c(&dev).as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 3))
            };
            assert_eq!(rc, 0);
            assert!(refusal(d.path()).contains("device"));
            std::fs::remove_file(&dev).unwrap();
        }

        let bad = d.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
        std::fs::write(&bad, "latin-1").unwrap();
        assert!(refusal(d.path()).contains("not valid UTF-8"));
    }

    #[test]
    fn hardlinks_become_files_and_long_names_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let long_dir = "a-directory-name-that-is-rather-long/".repeat(4);
        std::fs::create_dir_all(d.path().join(&long_dir)).unwrap();
        let long =
            format!("{long_dir}and-a-file-name-long-enough-to-need-a-gnu-long-name-entry.txt");
        assert!(long.len() > 100);
        std::fs::write(d.path().join(&long), "deep").unwrap();
        std::fs::write(d.path().join("one"), "shared").unwrap();
        std::fs::hard_link(d.path().join("one"), d.path().join("two")).unwrap();

        let entries = asset_entries(d.path(), "/app/a").unwrap();
        let tar = crate::image::tar::write_tar(entries, 0, Vec::new()).unwrap();
        let mut files = std::collections::BTreeMap::new();
        for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type() == tar::EntryType::Regular {
                let mut body = String::new();
                std::io::Read::read_to_string(&mut e, &mut body).unwrap();
                files.insert(e.path().unwrap().display().to_string(), body);
            } else {
                // no hardlink entries: a link's target might not be in this layer
                assert_ne!(e.header().entry_type(), tar::EntryType::Link);
            }
        }
        assert_eq!(files["app/a/one"], "shared");
        assert_eq!(files["app/a/two"], "shared");
        assert_eq!(files[&format!("app/a/{long}")], "deep");
    }

    #[test]
    fn escaping_and_absolute_symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        symlink("../../etc/passwd", d.path().join("up")).unwrap();
        let err = asset_entries(d.path(), "/app/a").unwrap_err().to_string();
        assert!(err.contains("points outside the assets directory"), "{err}");
        std::fs::remove_file(d.path().join("up")).unwrap();
        symlink("/etc/passwd", d.path().join("abs")).unwrap();
        let err = asset_entries(d.path(), "/app/a").unwrap_err().to_string();
        assert!(err.contains("absolute symlink"), "{err}");
    }
}
