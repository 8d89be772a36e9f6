//! Where a package comes from: the checksums `Cargo.lock` records, and a package's source
//! (crates.io, another registry, git, or a path relative to the workspace) as the SBOM
//! names it. No absolute path leaves this file.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// Where a package comes from, as far as its identity goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrateSource {
    /// crates.io.
    CratesIo,
    /// Another registry: its index URL (`sparse+https://…` / `registry+https://…`).
    Registry(String),
    /// A git repository and the exact commit.
    Git {
        /// Repository URL without `git+` and without the query.
        url: String,
        /// The commit.
        commit: String,
    },
    /// A local path, relative to the workspace root (`.` for the root itself; never
    /// absolute, so SBOMs do not depend on the checkout directory).
    Path(String),
}

#[derive(Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// `(name, version, source)` → sha256 from a `Cargo.lock` (format v2 and later, which
/// keep the checksum next to each package).
pub fn lock_checksums(text: &str) -> Result<BTreeMap<(String, String, String), String>, String> {
    let lock: LockFile = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(lock
        .package
        .into_iter()
        .filter_map(|p| {
            let sum = p.checksum?;
            Some(((p.name, p.version, p.source.unwrap_or_default()), sum))
        })
        .collect())
}

pub(crate) const CRATES_IO: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

pub(crate) fn crate_source(source: Option<&str>, dir: &Path, root: &Path) -> CrateSource {
    match source {
        None => CrateSource::Path(relative_path(root, dir)),
        Some(s) if CRATES_IO.contains(&s) => CrateSource::CratesIo,
        Some(s) => match s.strip_prefix("git+") {
            Some(git) => {
                let (url, commit) = git.split_once('#').unwrap_or((git, ""));
                let url = url.split_once('?').map_or(url, |(u, _)| u);
                CrateSource::Git {
                    url: url.to_string(),
                    commit: commit.to_string(),
                }
            }
            None => CrateSource::Registry(s.to_string()),
        },
    }
}

/// `dir` relative to `root`, with `..` where needed; `.` for the root itself.
fn relative_path(root: &Path, dir: &Path) -> String {
    let (r, d): (Vec<Component>, Vec<Component>) =
        (root.components().collect(), dir.components().collect());
    let common = r.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..r.len() {
        out.push("..");
    }
    for c in &d[common..] {
        out.push(c.as_os_str());
    }
    let s = out.to_string_lossy().replace('\\', "/");
    if s.is_empty() { ".".into() } else { s }
}
