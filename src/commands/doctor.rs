//! `cargo containerize doctor`: reads `cargo metadata` (and so Cargo.lock) of the
//! workspace and reports the musl pitfalls it finds, each with its fix: openssl-sys
//! without `vendored` (naming the chain that pulls it in), C-compiling crates without a
//! musl C toolchain, missing rustup targets for the active toolchain, musl's slow
//! allocator, and git states that drop tags. Findings are a typed list; with
//! `--message-format json` each is a `doctor-finding` event.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;

use cargo_metadata::{Metadata, MetadataCommand, PackageId};
use serde::Serialize;

use crate::cli::BuildArgs;
use crate::commands::{Error, Outcome};
use crate::config::{CargoOptions, Env, Settings};
use crate::output::{MessageFormat, Shell, count};
use crate::platform::Platform;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The build will fail (or the images lose something) until it is fixed.
    Warning,
    /// Worth knowing; nothing fails.
    Note,
}

/// What doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// openssl-sys is built from source against the system's OpenSSL, which musl
    /// targets do not have.
    OpensslNotVendored {
        /// `app → reqwest → native-tls → openssl-sys`.
        chain: Vec<String>,
    },
    /// A crate compiles C code, and a platform has no musl C compiler.
    NoMuslCompiler {
        /// The crates that compile C (build-depend on `cc` or `cmake`).
        packages: Vec<String>,
        /// `linux/arm64`.
        platform: String,
        /// The compiler cc-rs looks for.
        compiler: String,
    },
    /// A crate compiles C code; this platform's musl C compiler is there.
    CCompiler {
        /// The crates that compile C.
        packages: Vec<String>,
        /// `linux/amd64`.
        platform: String,
        /// What builds them: `musl-gcc`, `aarch64-linux-musl-gcc` or `cargo-zigbuild`.
        tool: String,
    },
    /// The active toolchain lacks a platform's Rust target.
    MissingTarget {
        /// `aarch64-unknown-linux-musl`.
        target: String,
        /// `RUSTUP_TOOLCHAIN` (`cargo +nightly` sets it), if any.
        toolchain: Option<String>,
    },
    /// No global allocator crate is in the graph: musl's malloc serves every allocation.
    MuslAllocator,
    /// git refuses the repository (another user's checkout).
    GitRefused {
        /// git's message.
        message: String,
        /// The command that fixes it.
        fix: String,
    },
    /// A shallow clone without tags: `--tag-from-git` finds none.
    ShallowClone,
}

/// A finding as printed and as the `doctor-finding` event.
#[derive(Debug, Clone, Serialize)]
struct FindingEvent<'a> {
    reason: &'static str,
    severity: Severity,
    #[serde(flatten)]
    finding: &'a Finding,
    message: String,
    fix: String,
}

/// Crates that replace musl's allocator when set as `#[global_allocator]`.
const ALLOCATORS: &[&str] = &[
    "mimalloc",
    "tikv-jemallocator",
    "jemallocator",
    "snmalloc-rs",
    "rpmalloc",
];

impl Finding {
    /// How much it matters.
    pub fn severity(&self) -> Severity {
        match self {
            Finding::MuslAllocator | Finding::CCompiler { .. } => Severity::Note,
            _ => Severity::Warning,
        }
    }

    /// What is wrong, in one line.
    pub fn message(&self) -> String {
        match self {
            Finding::OpensslNotVendored { chain } => format!(
                "openssl-sys is built without `vendored`, and musl targets have no system OpenSSL: {}",
                chain.join(" → ")
            ),
            Finding::NoMuslCompiler {
                packages,
                platform,
                compiler,
            } => format!(
                "{} compile{} C code, and {platform} has no `{compiler}` or cargo-zigbuild",
                packages.join(", "),
                if packages.len() == 1 { "s" } else { "" }
            ),
            Finding::CCompiler {
                packages,
                platform,
                tool,
            } => format!(
                "{} compile{} C code: {platform} builds {} with `{tool}`",
                packages.join(", "),
                if packages.len() == 1 { "s" } else { "" },
                if packages.len() == 1 { "it" } else { "them" }
            ),
            Finding::MissingTarget { target, toolchain } => match toolchain {
                Some(t) => format!("the toolchain `{t}` has no rustup target `{target}`"),
                None => format!("no rustup target `{target}`"),
            },
            Finding::MuslAllocator => "no global allocator crate in the graph: musl's malloc is several times slower than glibc's for allocation-heavy programs".into(),
            Finding::GitRefused { message, .. } => format!(
                "git refuses the repository, so images get no commit tag or revision label: {}",
                message.lines().next().unwrap_or_default()
            ),
            Finding::ShallowClone => {
                "a shallow clone without tags: --tag-from-git finds no tag".into()
            }
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            Finding::OpensslNotVendored { chain } => match chain.get(1) {
                // A dependency of a dependency: vendor it, or leave openssl for rustls.
                Some(via) if chain.len() > 2 => format!(
                    "add `openssl = {{ version = \"0.10\", features = [\"vendored\"] }}` to [dependencies], or switch `{via}` to its rustls feature (e.g. reqwest's `rustls-tls` with default-features = false)"
                ),
                _ => "enable its `vendored` feature: `openssl-sys = { version = \"0.9\", features = [\"vendored\"] }` (or `openssl = { version = \"0.10\", features = [\"vendored\"] }`), or use rustls instead".into(),
            },
            Finding::NoMuslCompiler { platform, .. } => {
                let apt = if platform == "linux/amd64" {
                    "apt-get install musl-tools (gives musl-gcc), or "
                } else {
                    ""
                };
                format!(
                    "{apt}pipx install cargo-zigbuild (or pip install --user cargo-zigbuild, or a venv; plain pip fails on PEP 668 systems such as Debian 12 and Ubuntu 24.04)"
                )
            }
            Finding::CCompiler { .. } => "none needed".into(),
            Finding::MissingTarget { target, toolchain } => match toolchain {
                Some(t) => format!("run: rustup target add {target} --toolchain {t}"),
                None => format!("run: rustup target add {target}"),
            },
            Finding::MuslAllocator => "add `mimalloc = \"0.1\"` to [dependencies] and `#[global_allocator] static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;` to main.rs (or tikv-jemallocator)".into(),
            Finding::GitRefused { fix, .. } => format!("if you trust this checkout, run: {fix}"),
            Finding::ShallowClone => {
                "fetch the tags: git fetch --tags --unshallow (actions/checkout: fetch-depth: 0)"
                    .into()
            }
        }
    }
}

/// The names on the shortest dependency path from a workspace member to `target`.
fn chain_to(metadata: &Metadata, target: &PackageId) -> Vec<String> {
    let Some(resolve) = &metadata.resolve else {
        return Vec::new();
    };
    let deps: BTreeMap<&PackageId, Vec<&PackageId>> = resolve
        .nodes
        .iter()
        .map(|n| (&n.id, n.deps.iter().map(|d| &d.pkg).collect()))
        .collect();
    let name = |id: &PackageId| {
        metadata
            .packages
            .iter()
            .find(|p| &p.id == id)
            .map_or_else(|| id.to_string(), |p| p.name.to_string())
    };
    let mut parent: BTreeMap<&PackageId, &PackageId> = BTreeMap::new();
    let mut queue: VecDeque<&PackageId> = metadata.workspace_members.iter().collect();
    let mut seen: BTreeSet<&PackageId> = queue.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if id == target {
            let mut path = vec![name(id)];
            let mut at = id;
            while let Some(p) = parent.get(at) {
                path.push(name(p));
                at = p;
            }
            path.reverse();
            return path;
        }
        for dep in deps.get(id).into_iter().flatten() {
            if seen.insert(dep) {
                parent.insert(dep, id);
                queue.push_back(dep);
            }
        }
    }
    vec![name(target)]
}

/// The findings about the dependency graph, for `platforms` (no processes run).
pub fn graph_findings(
    metadata: &Metadata,
    platforms: &[Platform],
    path: Option<&str>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let features: BTreeMap<&PackageId, &Vec<cargo_metadata::FeatureName>> = metadata
        .resolve
        .iter()
        .flat_map(|r| &r.nodes)
        .map(|n| (&n.id, &n.features))
        .collect();
    let in_graph = |name: &'static str| {
        metadata
            .packages
            .iter()
            .filter(move |p| p.name.as_str() == name)
    };
    let vendored = ["openssl-sys", "openssl"].into_iter().any(|n| {
        in_graph(n).any(|p| {
            features
                .get(&p.id)
                .is_some_and(|f| f.iter().any(|f| f.as_str() == "vendored"))
        })
    });
    if let Some(ssl) = in_graph("openssl-sys").next()
        && !vendored
    {
        out.push(Finding::OpensslNotVendored {
            chain: chain_to(metadata, &ssl.id),
        });
    }
    let mut c_packages: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| {
            p.dependencies.iter().any(|d| {
                d.kind == cargo_metadata::DependencyKind::Build
                    && matches!(d.name.as_str(), "cc" | "cmake")
            })
        })
        .map(|p| p.name.to_string())
        .collect();
    c_packages.sort();
    c_packages.dedup();
    if !c_packages.is_empty() {
        let on_path = |tool: &str| {
            path.into_iter()
                .flat_map(std::env::split_paths)
                .any(|d| d.join(tool).is_file())
        };
        for &platform in platforms {
            let compiler = match platform {
                Platform::LinuxAmd64 => "musl-gcc",
                Platform::LinuxArm64 => "aarch64-linux-musl-gcc",
            };
            let tool = [compiler, "cargo-zigbuild"]
                .into_iter()
                .find(|t| on_path(t));
            out.push(match tool {
                Some(tool) => Finding::CCompiler {
                    packages: c_packages.clone(),
                    platform: platform.to_string(),
                    tool: tool.into(),
                },
                None => Finding::NoMuslCompiler {
                    packages: c_packages.clone(),
                    platform: platform.to_string(),
                    compiler: compiler.into(),
                },
            });
        }
    }
    if !ALLOCATORS.iter().any(|a| in_graph(a).next().is_some()) {
        out.push(Finding::MuslAllocator);
    }
    out
}

/// Rust targets of `platforms` the active toolchain lacks (`rustup target list
/// --installed`; nothing when rustup is not there).
fn target_findings(cargo: &CargoOptions, platforms: &[Platform]) -> Vec<Finding> {
    let toolchain = cargo.cargo_env.get("RUSTUP_TOOLCHAIN").cloned();
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "list", "--installed"]);
    if let Some(t) = &toolchain {
        cmd.args(["--toolchain", t]);
    }
    let Ok(out) = cmd.output() else {
        return Vec::new();
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    platforms
        .iter()
        .filter(|p| !installed.lines().any(|l| l.trim() == p.triple()))
        .map(|p| Finding::MissingTarget {
            target: p.triple().into(),
            toolchain: toolchain.clone(),
        })
        .collect()
}

/// git states that lose tags or labels.
fn git_findings(root: &Path) -> Vec<Finding> {
    let info = crate::git::inspect(root);
    let mut out = Vec::new();
    if let Some(message) = info.refusal {
        out.push(Finding::GitRefused {
            message,
            fix: crate::git::safe_directory_fix(root),
        });
    } else if crate::git::is_shallow_without_tags(root) {
        out.push(Finding::ShallowClone);
    }
    out
}

/// Every finding for the workspace `settings` select.
pub fn diagnose(settings: &Settings) -> Result<Vec<Finding>, Error> {
    let mut cmd = MetadataCommand::new();
    if let Some(p) = &settings.manifest_path {
        cmd.manifest_path(p);
    }
    let metadata = cmd.exec().map_err(|e| Error::Usage {
        message: format!("`cargo metadata` failed: {e}"),
        help: "run this inside a Cargo workspace, or pass --manifest-path PATH/Cargo.toml".into(),
    })?;
    let platforms = settings
        .platforms
        .clone()
        .unwrap_or_else(|| vec![Platform::LinuxAmd64]);
    let mut findings = target_findings(&settings.cargo, &platforms);
    findings.extend(graph_findings(
        &metadata,
        &platforms,
        settings.cargo.path.as_deref(),
    ));
    findings.extend(git_findings(metadata.workspace_root.as_std_path()));
    Ok(findings)
}

/// Prints each finding (`warning:`/`note:` with its `help:`), or one event each.
pub fn report(findings: &[Finding], shell: &mut Shell) {
    for finding in findings {
        let event = FindingEvent {
            reason: "doctor-finding",
            severity: finding.severity(),
            finding,
            message: finding.message(),
            fix: finding.fix(),
        };
        if shell.format() == MessageFormat::Json {
            shell.emit(&event);
            continue;
        }
        let text = match finding {
            Finding::CCompiler { .. } => event.message.clone(),
            _ => format!("{}\nhelp: {}", event.message, event.fix),
        };
        match event.severity {
            Severity::Warning => shell.warn(text),
            Severity::Note => shell.note(text),
        }
    }
}

/// After a failed build: the problems doctor finds, as a likely explanation (nothing when
/// it finds none, or cannot look).
pub fn explain_failure(settings: &Settings, shell: &mut Shell) {
    let Ok(findings) = diagnose(settings) else {
        return;
    };
    let problems: Vec<Finding> = findings
        .into_iter()
        .filter(|f| f.severity() == Severity::Warning)
        .collect();
    if !problems.is_empty() {
        shell.note("the build failed, and `cargo containerize doctor` finds what may explain it");
        report(&problems, shell);
    }
}

/// `cargo containerize doctor`.
pub fn exec(args: BuildArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    let settings = super::build_settings(args, env, shell)?;
    let findings = diagnose(&settings)?;
    report(&findings, shell);
    let problems = findings
        .iter()
        .filter(|f| f.severity() == Severity::Warning)
        .count();
    shell.status(
        "Finished",
        format!(
            "doctor: {}, {}",
            count(problems, "problem", "problems"),
            count(findings.len() - problems, "note", "notes")
        ),
    );
    Ok(Outcome::default())
}
