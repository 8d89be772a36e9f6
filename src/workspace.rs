//! `cargo metadata` → [`Workspace`]: the selected binary targets with their configuration
//! tables. Never builds anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, MetadataCommand, PackageId, TargetKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{self, ConfigError, ImageLayer, PackageConfig, Selection, Settings};
use crate::git::{self, GitInfo};
use crate::metacache::{self, Answer};

/// The part of `cargo metadata`'s answer read here. A no-op run waits for this parse: on a
/// few hundred packages it takes under half the time of `cargo_metadata::Metadata`, which
/// also reads every dependency requirement, feature table and target path.
#[derive(Debug, Deserialize, Serialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<PackageId>,
    /// Absent before cargo 1.71: then every member is a default member.
    #[serde(default)]
    workspace_default_members: Option<Vec<PackageId>>,
    resolve: Option<Resolve>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
    /// `[workspace.metadata]`.
    #[serde(default, rename = "metadata")]
    workspace_metadata: Value,
}

#[derive(Debug, Deserialize, Serialize)]
struct Package {
    id: PackageId,
    name: String,
    version: String,
    manifest_path: PathBuf,
    repository: Option<String>,
    description: Option<String>,
    license: Option<String>,
    /// `[package.metadata]`.
    #[serde(default)]
    metadata: Value,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Target {
    name: String,
    kind: Vec<TargetKind>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Node {
    id: PackageId,
    deps: Vec<NodeDep>,
}

#[derive(Debug, Deserialize, Serialize)]
struct NodeDep {
    pkg: PackageId,
    dep_kinds: Vec<DepKind>,
}

#[derive(Debug, Deserialize, Serialize)]
struct DepKind {
    /// `null` for a normal dependency.
    kind: Option<DependencyKind>,
}

/// Errors reading or selecting from the workspace.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WorkspaceError {
    /// `cargo metadata` failed.
    #[error("`cargo metadata` failed:\n{stderr}")]
    #[diagnostic(
        code(containerize::workspace),
        help("run this inside a Cargo workspace, or pass --manifest-path PATH/Cargo.toml")
    )]
    Metadata {
        /// cargo's error output.
        stderr: String,
    },
    /// `-p` named something that is not a workspace member.
    #[error("package `{name}` is not a member of this workspace")]
    #[diagnostic(code(containerize::usage), help("workspace members: {members}"))]
    UnknownPackage {
        /// The name given.
        name: String,
        /// The members, comma-separated.
        members: String,
    },
    /// `--bin` named something no selected package has.
    #[error("no binary target named `{name}` in the selected packages")]
    #[diagnostic(code(containerize::usage), help("{}", binaries_help(available)))]
    UnknownBin {
        /// The name given.
        name: String,
        /// The binaries found, comma-separated.
        available: String,
    },
    /// A `[package.metadata.containerize.bin.<name>]` table for a binary that does not exist.
    #[error(
        "[package.metadata.containerize.bin.{name}] in {manifest} names no binary of package `{package}`"
    )]
    #[diagnostic(
        code(containerize::config),
        help("{}", bin_table_help(package, available))
    )]
    UnknownBinTable {
        /// The table's name.
        name: String,
        /// The package.
        package: String,
        /// Its Cargo.toml.
        manifest: String,
        /// Its binaries.
        available: String,
    },
    /// Nothing to package.
    #[error("no binary targets selected")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "the selected packages have no [[bin]] targets; select others with -p, --workspace or --manifest-path"
        )
    )]
    NoBins,
    /// Two selected binaries would make the same image.
    #[error("two selected binaries are named `{name}` (in packages `{first}` and `{second}`)")]
    #[diagnostic(
        code(containerize::usage),
        help("select one of them with -p or --exclude")
    )]
    DuplicateBin {
        /// The binary name.
        name: String,
        /// One package.
        first: String,
        /// The other.
        second: String,
    },
    /// A metadata table did not parse.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
}

/// The binaries `--bin` could name; a library-only selection says so instead of listing
/// nothing.
fn binaries_help(available: &str) -> String {
    if available.is_empty() {
        "the selected packages have no binary targets (src/main.rs, src/bin/*.rs or [[bin]]): select a package that has one with -p, --workspace or --manifest-path".into()
    } else {
        format!("binaries: {available}")
    }
}

fn bin_table_help(package: &str, available: &str) -> String {
    if available.is_empty() {
        format!("`{package}` has no binary targets: remove the table, or add the binary")
    } else {
        format!("binaries of `{package}`: {available}")
    }
}

/// One binary target to package.
#[derive(Debug, Clone)]
pub struct BinTarget {
    /// The `[[bin]]` name (also the image name).
    pub name: String,
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// The package's directory.
    pub package_dir: PathBuf,
    /// Its Cargo.toml, relative to the workspace root, for messages.
    pub manifest_display: String,
    /// `package.repository`.
    pub repository: Option<String>,
    /// `package.description`.
    pub description: Option<String>,
    /// `package.license`.
    pub license: Option<String>,
    /// `[package.metadata.containerize]`.
    pub package_config: ImageLayer,
    /// `[package.metadata.containerize.bin.<name>]`, if any.
    pub bin_config: Option<ImageLayer>,
}

/// The workspace as far as packaging is concerned.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Workspace root directory.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// Root Cargo.toml relative display name (`Cargo.toml`).
    pub root_manifest_display: String,
    /// `[workspace.metadata.containerize]`.
    pub config: ImageLayer,
    /// Selected binaries, in package then target order.
    pub bins: Vec<BinTarget>,
    /// Packages in the selected dependency graph that compile C code (build-depend on
    /// `cc` or `cmake`), sorted.
    pub c_packages: Vec<String>,
    /// The repository state.
    pub git: GitInfo,
    /// What the configuration looks wrong about, for warnings (misspelt tables).
    pub warnings: Vec<String>,
    /// Whether `cargo metadata` ran or its stored answer was still valid.
    pub metadata: Answer,
    /// The answer to store, when cargo ran (saved once the configuration proved valid).
    pub metadata_entry: Option<metacache::Pending>,
}

/// Runs `cargo metadata` (or takes its stored answer; a new one is in
/// [`Workspace::metadata_entry`], for the caller to save once the plan stands) and selects binaries as cargo would for `cargo build`.
pub fn load(settings: &Settings) -> Result<Workspace, WorkspaceError> {
    // git is asked about the directory the workspace most likely is in (the manifest's,
    // else the current one) while cargo answers: on a no-op re-run both take tens of
    // milliseconds. Its answer is kept only when that directory is in the workspace
    // root's repository; otherwise git is asked again about the root.
    let guess = match &settings.manifest_path {
        Some(p) => std::path::absolute(p)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
        None => std::env::current_dir().ok(),
    };
    std::thread::scope(|s| {
        let early = guess.map(|dir| {
            s.spawn(move || {
                let info = git::inspect(&dir);
                (dir, info)
            })
        });
        let metadata = read_metadata(settings);
        let early = early.map(crate::join);
        let (metadata, answer, pending) = metadata?;
        let mut ws = from_metadata(&metadata, settings, |root| match early {
            Some((dir, info)) if same_repository(&dir, root) => info,
            _ => git::inspect(root),
        })?;
        // Freeing a few hundred packages' strings takes milliseconds: not on the way to
        // cargo's build.
        std::thread::spawn(move || drop(metadata));
        ws.metadata = answer;
        ws.metadata_entry = pending;
        Ok(ws)
    })
}

/// Whether git run in `dir` answers about the repository of the workspace `root`: `dir`
/// is the root or below it, with no other repository (`.git`) in between.
fn same_repository(dir: &Path, root: &Path) -> bool {
    let (Ok(dir), Ok(root)) = (dir.canonicalize(), root.canonicalize()) else {
        return false;
    };
    dir.starts_with(&root)
        && dir
            .ancestors()
            .take_while(|a| *a != root)
            .all(|a| !a.join(".git").exists())
}

/// `cargo metadata` (or its stored answer), parsed.
fn read_metadata(
    settings: &Settings,
) -> Result<(Metadata, Answer, Option<metacache::Pending>), WorkspaceError> {
    let mut cmd = MetadataCommand::new();
    if let Some(p) = &settings.manifest_path {
        cmd.manifest_path(p);
    }
    let mut opts = Vec::new();
    for (flag, on) in [
        ("--locked", settings.cargo.locked),
        ("--frozen", settings.cargo.frozen),
        ("--offline", settings.cargo.offline),
    ] {
        if on {
            opts.push(flag.to_string());
        }
    }
    for config in &settings.cargo.config {
        opts.extend(["--config".to_string(), config.clone()]);
    }
    cmd.other_options(opts);
    let (out, answer, pending) =
        metacache::output(&mut cmd.cargo_command(), &settings.cargo.cargo_env, distill).map_err(
            |e| WorkspaceError::Metadata {
                stderr: format!("could not run cargo: {e}"),
            },
        )?;
    if !out.status.success() {
        return Err(WorkspaceError::Metadata {
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        });
    }
    let metadata = parse_metadata(&out.stdout).map_err(|e| WorkspaceError::Metadata {
        stderr: format!("unreadable `cargo metadata` output: {e}"),
    })?;
    Ok((metadata, answer, pending))
}

/// [`Metadata`] from `cargo metadata`'s stdout (its JSON line), or from a stored answer.
fn parse_metadata(stdout: &[u8]) -> serde_json::Result<Metadata> {
    let json = stdout
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(b"{"))
        .unwrap_or_default();
    serde_json::from_slice(json)
}

/// What is stored of `cargo metadata`'s answer: the fields [`Metadata`] reads, a quarter of
/// the whole on a large workspace.
fn distill(stdout: &[u8]) -> Option<Vec<u8>> {
    serde_json::to_vec(&parse_metadata(stdout).ok()?).ok()
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Selects binaries from already-read metadata, with `git` saying what the repository at
/// the workspace root is.
fn from_metadata(
    metadata: &Metadata,
    settings: &Settings,
    git: impl FnOnce(&Path) -> GitInfo,
) -> Result<Workspace, WorkspaceError> {
    let root = metadata.workspace_root.clone();
    let root_manifest_display = "Cargo.toml".to_string();
    let config =
        config::parse_workspace_config(&metadata.workspace_metadata, &root_manifest_display)
            .map_err(|e| e.located(&root))?;
    let packages = select_packages(metadata, &settings.selection)?;
    let mut warnings = config::misspelt_tables(
        &metadata.workspace_metadata,
        &config::Source::Workspace(root_manifest_display.clone()),
    );

    let mut bins = Vec::new();
    for pkg in &packages {
        let manifest_display = relative(&root, &pkg.manifest_path);
        warnings.extend(config::misspelt_tables(
            &pkg.metadata,
            &config::Source::Package(manifest_display.clone()),
        ));
        let PackageConfig {
            package: package_config,
            bins: bin_tables,
        } = config::parse_package_config(&pkg.metadata, &manifest_display)
            .map_err(|e| e.located(&root))?;
        let pkg_bins: Vec<&str> = pkg
            .targets
            .iter()
            .filter(|t| t.kind.contains(&TargetKind::Bin))
            .map(|t| t.name.as_str())
            .collect();
        if let Some(name) = bin_tables.keys().find(|n| !pkg_bins.contains(&n.as_str())) {
            return Err(WorkspaceError::UnknownBinTable {
                name: name.clone(),
                package: pkg.name.to_string(),
                manifest: manifest_display,
                available: pkg_bins.join(", "),
            });
        }
        for bin in pkg_bins {
            bins.push(BinTarget {
                name: bin.to_string(),
                package: pkg.name.to_string(),
                version: pkg.version.to_string(),
                package_dir: pkg
                    .manifest_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.clone()),
                manifest_display: manifest_display.clone(),
                repository: pkg.repository.clone(),
                description: pkg.description.clone(),
                license: pkg.license.clone(),
                package_config: package_config.clone(),
                bin_config: bin_tables.get(bin).cloned(),
            });
        }
    }

    if !settings.selection.bins.is_empty() {
        let available: Vec<String> = bins.iter().map(|b| b.name.clone()).collect();
        for wanted in &settings.selection.bins {
            if !available.contains(wanted) {
                return Err(WorkspaceError::UnknownBin {
                    name: wanted.clone(),
                    available: available.join(", "),
                });
            }
        }
        bins.retain(|b| settings.selection.bins.contains(&b.name));
    }
    if bins.is_empty() {
        return Err(WorkspaceError::NoBins);
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for b in &bins {
        if let Some(first) = seen.insert(&b.name, &b.package) {
            return Err(WorkspaceError::DuplicateBin {
                name: b.name.clone(),
                first: first.to_string(),
                second: b.package.clone(),
            });
        }
    }

    let target_dir = match &settings.cargo.target_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => std::env::current_dir()
            .map(|c| c.join(dir))
            .unwrap_or_else(|_| dir.clone()),
        None => metadata.target_directory.clone(),
    };
    let c_packages = c_packages(metadata, &packages);
    let git = git(&root);
    warnings.extend(git_warnings(&git, &root, &bins, settings.tag_from_git));
    Ok(Workspace {
        root,
        target_dir,
        root_manifest_display,
        config,
        bins,
        c_packages,
        git,
        warnings,
        metadata: Answer::Ran,
        metadata_entry: None,
    })
}

/// What the repository state leaves out, said instead of dropped silently: tags and
/// labels git refused to give, and a `--tag-from-git` version that is not the crate's.
fn git_warnings(git: &GitInfo, root: &Path, bins: &[BinTarget], tag_from_git: bool) -> Vec<String> {
    let mut out = Vec::new();
    match (&git.refusal, tag_from_git) {
        // `--tag-from-git` fails on it in the plan, with the same fix.
        (Some(_), true) => {}
        (Some(refusal), false) => out.push(format!(
            "git refused to read the repository, so the images get no commit tag and no revision label:\n{}\nhelp: if you trust this checkout, run: {}",
            refusal
                .lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            git::safe_directory_fix(root)
        )),
        (None, _) => {}
    }
    if tag_from_git && let Some(tag) = &git.exact_tag {
        let version = tag.strip_prefix('v').unwrap_or(tag);
        let mut seen = BTreeSet::new();
        for bin in bins.iter().filter(|b| b.version != version) {
            if seen.insert(&bin.package) {
                out.push(format!(
                    "--tag-from-git: the tag `{tag}` is not the version of `{}` ({})\nhelp: bump `version` in {} or tag the commit v{}",
                    bin.package, bin.version, bin.manifest_display, bin.version
                ));
            }
        }
    }
    out
}

fn select_packages<'m>(
    metadata: &'m Metadata,
    sel: &Selection,
) -> Result<Vec<&'m Package>, WorkspaceError> {
    let is_member = |p: &&Package| metadata.workspace_members.contains(&p.id);
    let members: Vec<&Package> = metadata.packages.iter().filter(is_member).collect();
    for name in sel.packages.iter().chain(&sel.exclude) {
        if !members.iter().any(|p| p.name == *name) {
            let mut names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            return Err(WorkspaceError::UnknownPackage {
                name: name.clone(),
                members: names.join(", "),
            });
        }
    }
    // As `cargo build` selects: `-p` names members; `--workspace` (or `--exclude`) takes
    // every member; nothing takes the default members.
    let selected = members.into_iter().filter(|p| {
        let base = if !sel.packages.is_empty() {
            sel.packages.contains(&p.name)
        } else if sel.workspace || !sel.exclude.is_empty() {
            true
        } else {
            metadata
                .workspace_default_members
                .as_ref()
                .is_none_or(|d| d.contains(&p.id))
        };
        base && !sel.exclude.contains(&p.name)
    });
    Ok(selected.collect())
}

/// Names of packages reachable from `roots` that build C code: they have a build
/// dependency on `cc` or `cmake`. Such graphs need a musl C toolchain.
fn c_packages(metadata: &Metadata, roots: &[&Package]) -> Vec<String> {
    let Some(resolve) = &metadata.resolve else {
        return Vec::new();
    };
    let nodes: BTreeMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let names: BTreeMap<_, _> = metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<_> = roots.iter().map(|p| &p.id).collect();
    let mut out = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let is_build = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == Some(DependencyKind::Build));
            let is_c_tool = names
                .get(&dep.pkg)
                .is_some_and(|p| matches!(p.name.as_str(), "cc" | "cmake"));
            if is_build
                && is_c_tool
                && let Some(p) = names.get(id)
            {
                out.insert(p.name.to_string());
            }
            let only_dev = dep
                .dep_kinds
                .iter()
                .all(|k| k.kind == Some(DependencyKind::Development));
            if !only_dev {
                stack.push(&dep.pkg);
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    /// A stored answer is what this module reads of the whole one: parsing it gives the
    /// same workspace as parsing cargo's.
    #[test]
    fn the_distilled_answer_parses_as_the_whole_one() {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--manifest-path",
            ])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let whole = super::parse_metadata(&out.stdout).unwrap();
        let kept = super::distill(&out.stdout).unwrap();
        assert!(kept.len() < out.stdout.len() / 2);
        let stored = super::parse_metadata(&kept).unwrap();
        assert_eq!(format!("{whole:?}"), format!("{stored:?}"));
        assert!(whole.packages.len() > 100 && whole.resolve.is_some());
    }

    #[test]
    fn git_asked_below_the_root_answers_for_it_unless_another_repository_is_between() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ws");
        let member = root.join("crates/api");
        let vendored = root.join("vendor/lib");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::create_dir_all(vendored.join(".git")).unwrap();
        assert!(super::same_repository(&root, &root));
        assert!(super::same_repository(&member, &root));
        assert!(!super::same_repository(&vendored, &root));
        assert!(!super::same_repository(tmp.path(), &root));
    }
}
