//! The RustSec advisory database: found where cargo-audit keeps it (or where the user
//! says), cloned when missing and brought up to date unless the run is offline, then
//! opened with the `rustsec` crate (the library behind cargo-audit).
//!
//! Fetching is done by the `git` command, the way cargo does with
//! `net.git-fetch-with-cli`: the `rustsec` crate's own fetching pulls in gitoxide (a few
//! hundred crates more), and git honours the user's proxies and credentials. Every git
//! call is bounded. A clone goes to a temporary directory beside the database and is
//! renamed into place when complete, so an interrupted clone leaves nothing half made; an
//! update only fast-forwards, so local changes in a clone are never thrown away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustsec::database::Query;

use super::{Advisory, AuditError, Cvss};
use crate::config::audit::{AuditSettings, Severity};
use crate::platform::Platform;
use crate::sbom::resolve::Crate;

/// How long one git call may take (a first clone of advisory-db is about 10 MB).
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// What was done to the database before opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fetched {
    /// Cloned now.
    Cloned,
    /// Updated from its remote.
    Updated,
    /// Used as it is (offline, or not a git clone).
    #[default]
    AsIs,
}

impl Fetched {
    /// `cloned`, `updated`, `as it is`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fetched::Cloned => "cloned",
            Fetched::Updated => "updated",
            Fetched::AsIs => "as it is",
        }
    }
}

/// Where the advisories came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbInfo {
    /// The database directory.
    pub path: PathBuf,
    /// Its HEAD commit, if it is a git clone.
    pub commit: Option<String>,
    /// The commit's date (`YYYY-MM-DD`).
    pub date: Option<String>,
    /// How many advisories it holds.
    pub advisories: usize,
    /// What was done before opening it.
    pub fetched: Fetched,
}

/// An open database.
#[derive(Debug)]
pub struct Database {
    inner: rustsec::Database,
    /// Where it came from.
    pub info: DbInfo,
}

/// A git call about the database: bounded, and giving up on a stalled transfer.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut all = vec![
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        "http.lowSpeedTime=60",
    ];
    all.extend_from_slice(args);
    crate::git::run(dir, &all, GIT_TIMEOUT).map_err(|e| format!("`git {}`: {e}", args.join(" ")))
}

/// Clones `url` into `path` through a temporary sibling directory.
fn clone(url: &str, path: &Path) -> Result<(), AuditError> {
    let fail = |message: String| AuditError::Fetch {
        action: "clone",
        path: path.to_path_buf(),
        url: url.to_string(),
        message,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    crate::fsutil::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map_or("advisory-db".into(), |n| n.to_string_lossy());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let target = partial.to_string_lossy().into_owned();
    let cloned = git(
        None,
        &["clone", "--quiet", "--depth", "1", "--", url, &target],
    );
    let result = cloned.and_then(|_| {
        std::fs::rename(&partial, path)
            .map_err(|e| format!("could not move the clone into place: {e}"))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result.map_err(fail)
}

/// Fast-forwards the clone at `path` to its remote's HEAD; `false` when it has no
/// `origin` to update from (a repository of the user's own, used as it is).
fn update(path: &Path) -> Result<bool, AuditError> {
    let Ok(url) = git(Some(path), &["remote", "get-url", "origin"]) else {
        return Ok(false);
    };
    let fail = |message: String| AuditError::Fetch {
        action: "update",
        path: path.to_path_buf(),
        url: url.clone(),
        message,
    };
    git(Some(path), &["fetch", "--quiet", "origin", "HEAD"]).map_err(fail)?;
    git(Some(path), &["merge", "--ff-only", "--quiet", "FETCH_HEAD"]).map_err(fail)?;
    Ok(true)
}

/// Finds, fetches (unless offline) and opens the database `settings` names.
pub fn open(settings: &AuditSettings) -> Result<Database, AuditError> {
    let path = &settings.db;
    let fetched = if !path.exists() {
        if settings.offline {
            return Err(AuditError::NoDatabase { path: path.clone() });
        }
        clone(&settings.db_url, path)?;
        Fetched::Cloned
    } else if path.join(".git").exists() && !settings.offline && update(path)? {
        Fetched::Updated
    } else {
        Fetched::AsIs
    };
    let inner = rustsec::Database::open(path).map_err(|e| AuditError::Database {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let head = path
        .join(".git")
        .exists()
        .then(|| git(Some(path), &["log", "-1", "--format=%H %cs", "HEAD"]).ok())
        .flatten();
    let (commit, date) = match head.as_deref().and_then(|h| h.split_once(' ')) {
        Some((c, d)) => (Some(c.to_string()), Some(d.to_string())),
        None => (None, None),
    };
    Ok(Database {
        info: DbInfo {
            path: path.clone(),
            commit,
            date,
            advisories: inner.iter().count(),
            fetched,
        },
        inner,
    })
}

fn severity(s: rustsec::advisory::Severity) -> Option<Severity> {
    use rustsec::advisory::Severity as S;
    match s {
        S::None => None,
        S::Low => Some(Severity::Low),
        S::Medium => Some(Severity::Medium),
        S::High => Some(Severity::High),
        S::Critical => Some(Severity::Critical),
    }
}

/// CycloneDX's name for the scoring method of a vector (`CVSS:3.1/…` → `CVSSv31`).
fn method(vector: &str) -> &'static str {
    match vector.split('/').next() {
        Some("CVSS:3.0") => "CVSSv3",
        Some("CVSS:3.1") => "CVSSv31",
        Some("CVSS:4.0") => "CVSSv4",
        _ => "other",
    }
}

fn advisory(a: &rustsec::Advisory) -> Advisory {
    let id = a.id().to_string();
    Advisory {
        url: a
            .id()
            .url()
            .unwrap_or_else(|| format!("https://rustsec.org/advisories/{id}")),
        id,
        aliases: a.metadata.aliases.iter().map(|i| i.to_string()).collect(),
        title: a.title().to_string(),
        description: a.description().to_string(),
        date: a.date().as_str().to_string(),
        cvss: a.metadata.cvss.as_ref().map(|c| {
            let vector = c.to_string();
            Cvss {
                score: c.score(),
                severity: severity(c.severity()),
                method: method(&vector),
                vector,
            }
        }),
        informational: a
            .metadata
            .informational
            .as_ref()
            .map(|i| i.as_str().to_string()),
        patched: a.versions.patched().iter().map(|r| r.to_string()).collect(),
    }
}

impl Database {
    /// The advisories (withdrawn ones left out) that affect `krate`'s version on
    /// `platform`, sorted by id.
    pub fn matching(&self, krate: &Crate, platform: Platform) -> Vec<Advisory> {
        let (Ok(name), Ok(version)) = (krate.name.parse(), rustsec::Version::parse(&krate.version))
        else {
            return Vec::new();
        };
        let arch = match platform {
            Platform::LinuxAmd64 => "x86_64",
            Platform::LinuxArm64 => "aarch64",
        };
        let query = Query::new()
            .collection(rustsec::Collection::Crates)
            .package_name(name)
            .package_version(version)
            .withdrawn(false)
            .target_arch(vec![arch.to_string()])
            .target_os(vec!["linux".to_string()]);
        let mut out: Vec<Advisory> = self.inner.query(&query).into_iter().map(advisory).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
