//! `cargo metadata --filter-platform <triple>` + `Cargo.lock` → [`CrateGraph`] (plain data,
//! one per platform), and [`CrateGraph::link`]: which packages are compiled into a binary.
//!
//! Why not take `cargo metadata`'s resolve as it is: its `features` and optional-dependency
//! edges are the dependency resolver's, unified over every kind of dependency
//! (dev-dependencies included), while the real build (resolver 2, edition 2021+) activates
//! features per kind. A dev-dependency that turns on `memchr/logging` puts `log` into
//! `cargo metadata`, not into the binary. So [`CrateGraph::link`] redoes feature activation
//! the way the build does for the target: from the built packages with the command's
//! feature flags, along normal dependencies only, never into proc-macros (compiled for the
//! host) or build-dependencies. `--filter-platform` has already dropped dependencies whose
//! `[target.'cfg(…)']` does not match the platform. The result equals
//! `cargo tree -e normal,no-proc-macro --target <triple>` (tests/testsuite/sbom.rs checks it).
//!
//! Limits (documented in the README): with resolver 1 (`resolver = "1"` or edition 2015/2018
//! without a `resolver` key) the build itself unifies features across kinds, and this
//! resolution may list fewer optional dependencies than are linked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use cargo_metadata::{DependencyKind, Metadata, TargetKind};

use crate::config::CargoOptions;
use crate::metacache::{self, Answer};
use crate::platform::Platform;
use crate::sbom::SbomError;
use crate::sbom::source::CrateSource;
use crate::sbom::source::{crate_source, lock_checksums};

/// One package of the resolve, with what the SBOM says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Origin.
    pub source: CrateSource,
    /// SPDX expression from `package.license`.
    pub license: Option<String>,
    /// `package.description`.
    pub description: Option<String>,
    /// `package.repository`.
    pub repository: Option<String>,
    /// sha256 of the `.crate` file, from `Cargo.lock` (registry packages only).
    pub checksum: Option<String>,
    /// A proc-macro: compiled for the host, never linked into a binary.
    pub proc_macro: bool,
    /// The `[features]` table (with the implicit `dep:` features cargo reports).
    pub features: BTreeMap<String, Vec<String>>,
    /// Normal dependencies that apply to this platform.
    pub deps: Vec<DeclaredDep>,
}

/// A normal dependency as declared in a manifest, with the package it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredDep {
    /// The name features refer to it by: `rename` or the package name.
    pub toml_name: String,
    /// Resolved package id.
    pub package: String,
    /// `optional = true`.
    pub optional: bool,
    /// `default-features` (true unless turned off).
    pub default_features: bool,
    /// `features = […]`.
    pub features: Vec<String>,
}

/// The packages of a workspace's resolve for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateGraph {
    /// The platform it was filtered for.
    pub platform: Platform,
    /// Package id → package.
    pub crates: BTreeMap<String, Crate>,
}

/// Feature flags of a build (`--features`, `--all-features`, `--no-default-features`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureFlags {
    /// `--features`, split on spaces and commas.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all: bool,
    /// `--no-default-features`.
    pub no_default: bool,
}

impl FeatureFlags {
    /// The flags of the build command.
    pub fn from_cargo(cargo: &CargoOptions) -> Self {
        FeatureFlags {
            features: cargo
                .features
                .iter()
                .flat_map(|f| f.split([' ', ',']))
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect(),
            all: cargo.all_features,
            no_default: cargo.no_default_features,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.features.is_empty() {
            out.push("--features".into());
            out.push(self.features.join(","));
        }
        if self.all {
            out.push("--all-features".into());
        }
        if self.no_default {
            out.push("--no-default-features".into());
        }
        out
    }
}

/// Packages compiled into the binaries of one build, and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Linked {
    /// Package id → the ids it links (normal, non-proc-macro, active dependencies).
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl Linked {
    /// Every package reachable from `root` (itself included), sorted by id.
    pub fn reachable_from(&self, root: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![root.to_string()];
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone())
                && let Some(next) = self.edges.get(&id)
            {
                stack.extend(next.iter().cloned());
            }
        }
        seen
    }
}

/// The `cargo metadata` command for `platform`: data, so tests can check it.
pub fn metadata_command(
    cargo: &CargoOptions,
    manifest_path: Option<&Path>,
    platform: Platform,
) -> Command {
    let mut cmd = Command::new(&cargo.cargo_bin);
    cmd.args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(platform.triple());
    if let Some(p) = manifest_path {
        cmd.arg("--manifest-path").arg(p);
    }
    cmd.args(FeatureFlags::from_cargo(cargo).args());
    for config in &cargo.config {
        cmd.arg("--config").arg(config);
    }
    for (flag, on) in [
        ("--locked", cargo.locked),
        ("--frozen", cargo.frozen),
        ("--offline", cargo.offline),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    cmd
}

/// Runs `cargo metadata --filter-platform` once for `platform` (or takes its stored
/// answer) and reads `Cargo.lock`.
pub fn load_graph(
    cargo: &CargoOptions,
    manifest_path: Option<&Path>,
    platform: Platform,
) -> Result<(CrateGraph, Answer), SbomError> {
    let mut cmd = metadata_command(cargo, manifest_path, platform);
    let command = format!("{cmd:?}").replace('"', "");
    let (out, answer, pending) =
        metacache::output(&mut cmd, &cargo.cargo_env, |stdout| Some(stdout.to_vec())).map_err(
            |e| SbomError::Metadata {
                platform,
                command: command.clone(),
                stderr: e.to_string(),
            },
        )?;
    if !out.status.success() {
        return Err(SbomError::Metadata {
            platform,
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        });
    }
    let metadata: Metadata =
        serde_json::from_slice(&out.stdout).map_err(|e| SbomError::Metadata {
            platform,
            command,
            stderr: format!("unreadable output: {e}"),
        })?;
    let lock_path = metadata.workspace_root.as_std_path().join("Cargo.lock");
    let lock = crate::fsutil::read(&lock_path)?;
    let checksums =
        lock_checksums(&String::from_utf8_lossy(&lock)).map_err(|message| SbomError::Lockfile {
            path: lock_path.clone(),
            message,
        })?;
    if let Some(p) = pending {
        p.save();
    }
    Ok((graph_from_metadata(&metadata, &checksums, platform), answer))
}

/// Builds the graph from already-read metadata (unit-testable without cargo).
pub fn graph_from_metadata(
    metadata: &Metadata,
    checksums: &BTreeMap<(String, String, String), String>,
    platform: Platform,
) -> CrateGraph {
    let root = metadata.workspace_root.as_std_path();
    let nodes: BTreeMap<_, _> = metadata
        .resolve
        .iter()
        .flat_map(|r| &r.nodes)
        .map(|n| (&n.id, n))
        .collect();
    let by_id: BTreeMap<_, _> = metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let mut crates = BTreeMap::new();
    for pkg in &metadata.packages {
        // Packages outside the filtered resolve do not exist on this platform.
        let Some(node) = nodes.get(&pkg.id) else {
            continue;
        };
        let mut deps = Vec::new();
        for d in &pkg.dependencies {
            if d.kind != DependencyKind::Normal {
                continue;
            }
            // The resolved package: same name, a version the requirement accepts, and an
            // edge of this kind and platform condition (absent when the condition does not
            // match the platform, or when no feature anywhere activates the optional dep).
            let resolved = node.deps.iter().find(|nd| {
                by_id
                    .get(&nd.pkg)
                    .is_some_and(|p| p.name.as_str() == d.name && d.req.matches(&p.version))
                    && nd
                        .dep_kinds
                        .iter()
                        .any(|k| k.kind == DependencyKind::Normal && k.target == d.target)
            });
            if let Some(nd) = resolved {
                deps.push(DeclaredDep {
                    toml_name: d.rename.clone().unwrap_or_else(|| d.name.clone()),
                    package: nd.pkg.repr.clone(),
                    optional: d.optional,
                    default_features: d.uses_default_features,
                    features: d.features.clone(),
                });
            }
        }
        let dir = pkg
            .manifest_path
            .parent()
            .map(|p| p.as_std_path())
            .unwrap_or(root);
        let source_repr = pkg.source.as_ref().map(|s| s.repr.clone());
        crates.insert(
            pkg.id.repr.clone(),
            Crate {
                name: pkg.name.to_string(),
                version: pkg.version.to_string(),
                source: crate_source(source_repr.as_deref(), dir, root),
                license: pkg.license.clone(),
                description: pkg.description.clone(),
                repository: pkg.repository.clone(),
                checksum: checksums
                    .get(&(
                        pkg.name.to_string(),
                        pkg.version.to_string(),
                        source_repr.unwrap_or_default(),
                    ))
                    .cloned(),
                proc_macro: pkg
                    .targets
                    .iter()
                    .any(|t| t.kind.contains(&TargetKind::ProcMacro)),
                features: pkg.features.clone(),
                deps,
            },
        );
    }
    CrateGraph { platform, crates }
}

/// What a package's activated features turn on.
#[derive(Default)]
struct Activation {
    /// Optional dependencies switched on (by `toml_name`).
    optional: BTreeSet<String>,
    /// Features asked of dependencies: `toml_name` → features (`dep/feat`).
    dep_features: BTreeMap<String, BTreeSet<String>>,
    /// Weak ones (`dep?/feat`), applied only if the dependency is on anyway.
    weak: BTreeMap<String, BTreeSet<String>>,
}

fn activate(krate: &Crate, requested: &BTreeSet<String>) -> Activation {
    let optional_names: BTreeSet<&str> = krate
        .deps
        .iter()
        .filter(|d| d.optional)
        .map(|d| d.toml_name.as_str())
        .collect();
    let mut act = Activation::default();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = requested.iter().cloned().collect();
    while let Some(f) = stack.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        if let Some(dep) = f.strip_prefix("dep:") {
            act.optional.insert(dep.to_string());
        } else if let Some((dep, feat)) = f.split_once('/') {
            match dep.strip_suffix('?') {
                Some(weak) => {
                    act.weak
                        .entry(weak.to_string())
                        .or_default()
                        .insert(feat.to_string());
                }
                None => {
                    if optional_names.contains(dep) {
                        act.optional.insert(dep.to_string());
                    }
                    act.dep_features
                        .entry(dep.to_string())
                        .or_default()
                        .insert(feat.to_string());
                }
            }
        } else if let Some(values) = krate.features.get(&f) {
            stack.extend(values.iter().cloned());
        } else if optional_names.contains(f.as_str()) {
            // The implicit feature of an optional dependency (edition 2021 without `dep:`).
            act.optional.insert(f);
        }
    }
    act
}

impl CrateGraph {
    /// The id of the workspace package named `name`.
    pub fn package_id(&self, name: &str) -> Option<&str> {
        self.crates
            .iter()
            .find(|(_, c)| c.name == name && matches!(c.source, CrateSource::Path(_)))
            .map(|(id, _)| id.as_str())
    }

    /// Activates features from `roots` (the packages one `cargo build` compiles, with its
    /// feature flags) and returns the edges of what gets linked.
    pub fn link(&self, roots: &[&str], flags: &FeatureFlags) -> Linked {
        let mut requested: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for name in roots {
            let Some(id) = self.package_id(name) else {
                continue;
            };
            let krate = &self.crates[id];
            let mut fs = BTreeSet::new();
            if !flags.no_default {
                fs.insert("default".to_string());
            }
            if flags.all {
                fs.extend(krate.features.keys().cloned());
                fs.extend(
                    krate
                        .deps
                        .iter()
                        .filter(|d| d.optional)
                        .map(|d| d.toml_name.clone()),
                );
            }
            for f in &flags.features {
                // `member/feat` names a workspace member; plain names apply to every root
                // that has them (resolver 2).
                match f.split_once('/') {
                    Some((pkg, feat)) if pkg == *name => {
                        fs.insert(feat.to_string());
                    }
                    Some((pkg, _)) if roots.contains(&pkg) => {}
                    _ => {
                        fs.insert(f.clone());
                    }
                }
            }
            requested.insert(id.to_string(), fs);
        }
        // Fixpoint: features only grow, so this ends.
        loop {
            let mut changed = false;
            let snapshot = requested.clone();
            for (id, fs) in &snapshot {
                let Some(krate) = self.crates.get(id) else {
                    continue;
                };
                let act = activate(krate, fs);
                for dep in self.active_deps(krate, &act) {
                    let mut want: BTreeSet<String> = dep.features.iter().cloned().collect();
                    if dep.default_features {
                        want.insert("default".into());
                    }
                    want.extend(
                        act.dep_features
                            .get(&dep.toml_name)
                            .into_iter()
                            .flatten()
                            .cloned(),
                    );
                    want.extend(act.weak.get(&dep.toml_name).into_iter().flatten().cloned());
                    match requested.get_mut(&dep.package) {
                        Some(have) => {
                            let before = have.len();
                            have.extend(want);
                            changed |= have.len() != before;
                        }
                        None => {
                            requested.insert(dep.package.clone(), want);
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut linked = Linked::default();
        for (id, fs) in &requested {
            let Some(krate) = self.crates.get(id) else {
                continue;
            };
            let act = activate(krate, fs);
            let deps = self
                .active_deps(krate, &act)
                .map(|d| d.package.clone())
                .collect();
            linked.edges.insert(id.clone(), deps);
        }
        linked
    }

    /// Dependencies of `krate` that are on and linked (not proc-macros).
    fn active_deps<'a>(
        &'a self,
        krate: &'a Crate,
        act: &'a Activation,
    ) -> impl Iterator<Item = &'a DeclaredDep> + 'a {
        krate.deps.iter().filter(move |d| {
            (!d.optional || act.optional.contains(&d.toml_name))
                && self.crates.get(&d.package).is_some_and(|c| !c.proc_macro)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::source::CRATES_IO;

    fn krate(name: &str, deps: Vec<DeclaredDep>, features: &[(&str, &[&str])]) -> Crate {
        Crate {
            name: name.into(),
            version: "1.0.0".into(),
            source: if name == "app" {
                CrateSource::Path(".".into())
            } else {
                CrateSource::CratesIo
            },
            license: None,
            description: None,
            repository: None,
            checksum: None,
            proc_macro: name.ends_with("_derive"),
            features: features
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            deps,
        }
    }

    fn dep(name: &str, optional: bool, features: &[&str]) -> DeclaredDep {
        DeclaredDep {
            toml_name: name.into(),
            package: name.into(),
            optional,
            default_features: true,
            features: features.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn graph(crates: Vec<Crate>) -> CrateGraph {
        CrateGraph {
            platform: Platform::LinuxAmd64,
            crates: crates.into_iter().map(|c| (c.name.clone(), c)).collect(),
        }
    }

    fn linked_names(g: &CrateGraph, flags: &FeatureFlags) -> Vec<String> {
        g.link(&["app"], flags)
            .reachable_from("app")
            .into_iter()
            .collect()
    }

    #[test]
    fn optional_dependencies_follow_features_and_proc_macros_are_not_linked() {
        let g = graph(vec![
            krate(
                "app",
                vec![
                    dep("lib", false, &[]),
                    dep("fnv", true, &[]),
                    dep("serde_derive", false, &[]),
                ],
                &[("fast", &["dep:fnv", "lib/extra"])],
            ),
            krate(
                "lib",
                vec![dep("log", true, &[]), dep("weak", true, &[])],
                &[("extra", &["log", "weak?/x"]), ("default", &[])],
            ),
            krate("fnv", vec![], &[]),
            krate("log", vec![], &[]),
            krate("weak", vec![], &[]),
            krate("serde_derive", vec![dep("syn", false, &[])], &[]),
            krate("syn", vec![], &[]),
        ]);
        assert_eq!(linked_names(&g, &FeatureFlags::default()), ["app", "lib"]);
        let fast = FeatureFlags {
            features: vec!["fast".into()],
            ..Default::default()
        };
        assert_eq!(linked_names(&g, &fast), ["app", "fnv", "lib", "log"]);
        let all = FeatureFlags {
            all: true,
            ..Default::default()
        };
        assert_eq!(linked_names(&g, &all), ["app", "fnv", "lib", "log"]);
    }

    #[test]
    fn member_prefixed_features_and_no_default() {
        let g = graph(vec![
            krate("app", vec![dep("fnv", true, &[])], &[("default", &["fnv"])]),
            krate("fnv", vec![], &[]),
        ]);
        assert_eq!(linked_names(&g, &FeatureFlags::default()), ["app", "fnv"]);
        let none = FeatureFlags {
            no_default: true,
            ..Default::default()
        };
        assert_eq!(linked_names(&g, &none), ["app"]);
        let prefixed = FeatureFlags {
            features: vec!["app/fnv".into()],
            no_default: true,
            ..Default::default()
        };
        assert_eq!(linked_names(&g, &prefixed), ["app", "fnv"]);
    }

    #[test]
    fn sources_never_carry_absolute_paths() {
        let root = Path::new("/work/ws");
        assert_eq!(
            crate_source(None, Path::new("/work/ws"), root),
            CrateSource::Path(".".into())
        );
        assert_eq!(
            crate_source(None, Path::new("/work/ws/crates/a"), root),
            CrateSource::Path("crates/a".into())
        );
        assert_eq!(
            crate_source(None, Path::new("/work/shared/b"), root),
            CrateSource::Path("../shared/b".into())
        );
        assert_eq!(
            crate_source(Some(CRATES_IO[1]), root, root),
            CrateSource::CratesIo
        );
        assert_eq!(
            crate_source(
                Some("git+https://example.com/r.git?rev=abc#abcdef0123"),
                root,
                root
            ),
            CrateSource::Git {
                url: "https://example.com/r.git".into(),
                commit: "abcdef0123".into()
            }
        );
    }

    #[test]
    fn lockfile_checksums_by_name_version_source() {
        let sums = lock_checksums(
            r#"
version = 4
[[package]]
name = "itoa"
version = "1.0.19"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abc"

[[package]]
name = "app"
version = "0.1.0"
"#,
        )
        .unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(
            sums[&(
                "itoa".to_string(),
                "1.0.19".to_string(),
                CRATES_IO[0].to_string()
            )],
            "abc"
        );
    }
}
