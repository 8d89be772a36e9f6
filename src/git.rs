//! What git says about the workspace: commit, commit time, dirty state. Optional: a
//! workspace outside git (or without git installed) simply has none of these. When git
//! refuses the repository (a checkout owned by another user: "dubious ownership"), its
//! own message is kept, so the caller can say why the commit tag and labels are missing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{Ended, output_within};

/// The state of the repository holding the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// Full commit hash of HEAD.
    pub commit: Option<String>,
    /// Committer time of HEAD, seconds since 1970.
    pub commit_time: Option<u64>,
    /// Uncommitted changes to tracked files.
    pub dirty: bool,
    /// The tag exactly at HEAD (`git describe --tags --exact-match`), if any.
    pub exact_tag: Option<String>,
    /// git's own message when it refused to read the repository (not for "not a git
    /// repository", which is no error).
    pub refusal: Option<String>,
}

/// The command that makes git trust a checkout owned by another user (what git itself
/// suggests for "dubious ownership").
pub fn safe_directory_fix(root: &Path) -> String {
    format!(
        "git config --global --add safe.directory {}",
        root.display()
    )
}

impl GitInfo {
    /// The short commit (7 hex digits), with `-dirty` when the tree has changes.
    pub fn short_commit(&self) -> Option<String> {
        let c = self.commit.as_ref()?;
        let short = &c[..c.len().min(7)];
        Some(if self.dirty {
            format!("{short}-dirty")
        } else {
            short.to_string()
        })
    }
}

/// How long a question about the local repository may take.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);

/// stdout of a successful git call (in `dir`, if given), else git's stderr, or why it did
/// not run or was stopped after `timeout`. git never prompts for credentials.
pub fn run(dir: Option<&Path>, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args).env("GIT_TERMINAL_PROMPT", "0");
    match output_within(&mut cmd, None, timeout) {
        Ok(Ended::Exited(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(Ended::Exited(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Ok(Ended::TimedOut) => Err(format!(
            "`git {}` did not finish within {} s and was stopped",
            args.join(" "),
            timeout.as_secs()
        )),
        Err(e) => Err(format!("could not run git: {e}")),
    }
}

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    run(Some(root), args, LOCAL_TIMEOUT)
}

/// Reads HEAD's commit and time and whether tracked files changed. Never fails.
pub fn inspect(root: &Path) -> GitInfo {
    // Independent questions, asked at once: the slowest (`status` in a large tree) sets
    // the time, not their sum.
    // The tags on HEAD come with its commit: `describe` is asked only to choose among
    // several.
    let (head, status) = std::thread::scope(|s| {
        let status = s.spawn(|| git(root, &["status", "--porcelain", "--untracked-files=no"]));
        let head = git(
            root,
            &[
                "log",
                "-1",
                "--format=%H %ct %D",
                "--decorate-refs=refs/tags/",
                "HEAD",
            ],
        );
        (head, crate::join(status))
    });
    let head = match head {
        Ok(head) => head,
        Err(message) => {
            // Outside git, or git not installed: nothing to say. Anything else is a refusal.
            let quiet = message.contains("not a git repository")
                || message.starts_with("could not run git")
                || message.contains("does not have any commits");
            return GitInfo {
                refusal: (!quiet).then_some(message),
                ..GitInfo::default()
            };
        }
    };
    let mut fields = head.splitn(3, ' ');
    let (Some(commit), Some(time)) = (fields.next(), fields.next()) else {
        return GitInfo::default();
    };
    let tags: Vec<&str> = fields
        .next()
        .unwrap_or_default()
        .split(", ")
        .filter_map(|d| d.strip_prefix("tag: "))
        .collect();
    let exact_tag = match tags[..] {
        [] => None,
        [tag] => Some(tag.to_string()),
        _ => git(root, &["describe", "--tags", "--exact-match", "HEAD"]).ok(),
    };
    GitInfo {
        commit: Some(commit.to_string()),
        commit_time: time.parse().ok(),
        dirty: status.is_ok_and(|s| !s.is_empty()),
        exact_tag,
        refusal: None,
    }
}

/// Whether the repository is a shallow clone that has no tags (what CI checkouts with
/// `fetch-depth: 1` are): `--tag-from-git` then finds nothing.
pub fn is_shallow_without_tags(root: &Path) -> bool {
    git(root, &["rev-parse", "--is-shallow-repository"]).is_ok_and(|s| s == "true")
        && git(root, &["tag", "--list"]).is_ok_and(|s| s.is_empty())
}

/// Tags for a release from a git tag: `v1.2.3` → `1.2.3`, `1.2`, `1`, `latest`; a
/// pre-release (`v1.2.3-rc.1`) or a tag that is not a version gets only itself.
pub fn release_tags(git_tag: &str) -> Vec<String> {
    let version = git_tag.strip_prefix('v').unwrap_or(git_tag);
    let (core, build) = version.split_once('+').unwrap_or((version, ""));
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !numeric || !build.is_empty() {
        return vec![version.replace('+', "_")];
    }
    vec![
        core.to_string(),
        format!("{}.{}", parts[0], parts[1]),
        parts[0].to_string(),
        "latest".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tags_follow_semver() {
        assert_eq!(release_tags("v1.2.3"), ["1.2.3", "1.2", "1", "latest"]);
        assert_eq!(release_tags("0.4.0"), ["0.4.0", "0.4", "0", "latest"]);
        assert_eq!(release_tags("v1.2.3-rc.1"), ["1.2.3-rc.1"]);
        assert_eq!(release_tags("v2.0.0+build5"), ["2.0.0_build5"]);
        assert_eq!(release_tags("nightly"), ["nightly"]);
    }

    #[test]
    fn inspect_reads_commit_tags_and_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(root)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .env("GIT_COMMITTER_DATE", "1700000000 +0000")
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(root.join("f"), "1").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-q", "-m", "one"]);
        let info = inspect(root);
        assert_eq!(info.commit.as_ref().map(String::len), Some(40));
        assert_eq!(info.commit_time, Some(1_700_000_000));
        assert_eq!(info.exact_tag, None);
        assert!(!info.dirty);

        git(&["tag", "v1.0.0"]);
        assert_eq!(inspect(root).exact_tag.as_deref(), Some("v1.0.0"));
        // Several tags: git describe's choice (an annotated tag over a lightweight one).
        git(&["tag", "-a", "-m", "release", "v1.0.1"]);
        git(&["tag", "other"]);
        assert_eq!(inspect(root).exact_tag.as_deref(), Some("v1.0.1"));

        std::fs::write(root.join("f"), "2").unwrap();
        assert!(inspect(root).dirty);
    }

    #[test]
    fn short_commit_marks_dirty_trees() {
        let g = GitInfo {
            commit: Some("0123456789abcdef".into()),
            dirty: true,
            ..Default::default()
        };
        assert_eq!(g.short_commit().as_deref(), Some("0123456-dirty"));
    }
}
