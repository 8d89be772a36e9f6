//! What git says about the workspace: commit, commit time, dirty state. Optional: a
//! workspace outside git (or without git installed) simply has none of these.

use std::path::Path;
use std::process::Command;

/// The state of the repository holding the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// Full commit hash of HEAD.
    pub commit: Option<String>,
    /// Committer time of HEAD, seconds since 1970.
    pub commit_time: Option<u64>,
    /// Uncommitted changes to tracked files.
    pub dirty: bool,
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reads HEAD's commit and time and whether tracked files changed. Never fails.
pub fn inspect(root: &Path) -> GitInfo {
    let Some(commit) = git(root, &["rev-parse", "--verify", "-q", "HEAD"]) else {
        return GitInfo::default();
    };
    let commit_time =
        git(root, &["log", "-1", "--format=%ct", "HEAD"]).and_then(|t| t.parse().ok());
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    GitInfo {
        commit: Some(commit),
        commit_time,
        dirty,
    }
}
