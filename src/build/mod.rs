//! Plan → [`BuiltBinary`] per image and platform: runs cargo once per platform, finds the
//! executables in its JSON messages, and refuses any binary that is not static. Knows
//! nothing about OCI.

pub mod command;
pub mod elf;
pub mod toolchain;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{Message, TargetKind};

use crate::config::CargoOptions;
use crate::metacache::Answer;
use crate::output::Shell;
use crate::plan::Plan;
use crate::platform::Platform;
use crate::workspace::Workspace;

/// A static executable ready to package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltBinary {
    /// The `[[bin]]` name.
    pub bin: String,
    /// Its package.
    pub package: String,
    /// Its platform.
    pub platform: Platform,
    /// The executable cargo wrote.
    pub path: PathBuf,
}

/// The compiler the binaries are built with, as `rustc -vV` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RustcVersion {
    /// The first line: `rustc 1.89.0 (29483883e 2025-08-04)`.
    pub version: String,
    /// `release: 1.89.0`.
    pub release: Option<String>,
    /// `commit-hash: …`: the rust-lang/rust commit it was built from.
    pub commit_hash: Option<String>,
    /// `host: x86_64-unknown-linux-gnu`.
    pub host: Option<String>,
}

impl RustcVersion {
    /// Parses `rustc -vV` output.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let version = lines.next()?.trim().to_string();
        if !version.starts_with("rustc ") {
            return None;
        }
        let mut out = RustcVersion {
            version,
            ..RustcVersion::default()
        };
        for line in lines {
            let Some((k, v)) = line.split_once(": ") else {
                continue;
            };
            let v = Some(v.trim().to_string());
            match k.trim() {
                "release" => out.release = v,
                "commit-hash" => out.commit_hash = v,
                "host" => out.host = v,
                _ => {}
            }
        }
        Some(out)
    }
}

/// What `rustc -vV` says in the workspace, or `None` when it cannot be run (the build
/// itself then reports the missing compiler).
pub fn rustc_version(cargo: &CargoOptions, root: &std::path::Path) -> Option<RustcVersion> {
    let out = command::rustc_version_command(cargo, root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| RustcVersion::parse(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

/// Build failures; each says what to do next.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    /// The musl target is not installed and could not be added.
    #[error("the Rust target `{triple}` is not installed")]
    #[diagnostic(code(containerize::build), help("run: {command}"))]
    MissingTarget {
        /// The target triple.
        triple: String,
        /// `rustup target add TRIPLE`, with `--toolchain` of the active toolchain when
        /// one is selected (`cargo +nightly` sets RUSTUP_TOOLCHAIN).
        command: String,
    },
    /// Packages compile C code and no musl C compiler is available for the platform.
    #[error("{} compile{} C code, and there is no C toolchain for static {platform} binaries", packages.join(", "), if packages.len() == 1 { "s" } else { "" })]
    #[diagnostic(code(containerize::build), help("install {install}"))]
    MissingCompiler {
        /// The platform.
        platform: Platform,
        /// The packages with C code.
        packages: Vec<String>,
        /// What to install.
        install: &'static str,
    },
    /// cargo could not be started.
    #[error("failed to run `{command}`: {source}")]
    #[diagnostic(
        code(containerize::build),
        help("is cargo (or cargo-zigbuild) on PATH?")
    )]
    Spawn {
        /// The command line.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// cargo failed; its diagnostics were shown above.
    #[error("`cargo build` for {platform} failed ({status})\ncommand: {command}")]
    #[diagnostic(code(containerize::build), help("{help}"))]
    CargoFailed {
        /// The platform.
        platform: Platform,
        /// The exit status.
        status: String,
        /// The command line.
        command: String,
        /// The next step.
        help: String,
    },
    /// cargo succeeded but did not produce a wanted binary.
    #[error("cargo did not produce binary `{bin}` for {platform}")]
    #[diagnostic(
        code(containerize::build),
        help("check the target's `required-features`; pass them with --features")
    )]
    MissingArtifact {
        /// The binary.
        bin: String,
        /// The platform.
        platform: Platform,
    },
    /// The binary is not static.
    #[error("refusing to package `{}` for {platform}: {reason}", path.display())]
    #[diagnostic(
        code(containerize::build),
        help(
            "distroless images need static binaries; check for a linker or target override in .cargo/config.toml and RUSTFLAGS (e.g. `-C target-feature=-crt-static`)"
        )
    )]
    NotStatic {
        /// The binary.
        path: PathBuf,
        /// The platform.
        platform: Platform,
        /// Why.
        reason: elf::NotStatic,
    },
}

/// Adds a missing rustup target (status line) unless offline, where it says what to run.
fn ensure_target(
    probe: &Probe,
    triple: &str,
    cargo: &CargoOptions,
    shell: &mut Shell,
) -> Result<(), BuildError> {
    if !toolchain::target_missing(probe, triple) {
        return Ok(());
    }
    let command = match cargo.cargo_env.get("RUSTUP_TOOLCHAIN") {
        Some(t) => format!("rustup target add {triple} --toolchain {t}"),
        None => format!("rustup target add {triple}"),
    };
    let missing = || BuildError::MissingTarget {
        triple: triple.to_string(),
        command: command.clone(),
    };
    if cargo.offline || cargo.frozen {
        return Err(missing());
    }
    shell.status("Installing", format!("Rust target {triple} ({command})"));
    let ok = Command::new("rustup")
        .args(["target", "add", triple])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok { Ok(()) } else { Err(missing()) }
}

pub use toolchain::Probe;

/// Asks rustup which targets are installed (its answer is kept in `cache_dir` while
/// rustup's settings, toolchains and their components and the `rust-toolchain` files
/// around the working directory are unchanged: a no-op run does not wait for rustup) and
/// looks for C toolchains on `PATH`.
/// Also says whether rustup ran (`None` without rustup).
pub fn probe(cargo: &CargoOptions, cache_dir: &Path) -> (Probe, Option<Answer>) {
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "list", "--installed"]);
    let answer = crate::metacache::output_in(
        &mut cmd,
        &cargo.cargo_env,
        &crate::metacache::toolchain_inputs(
            &std::env::current_dir().unwrap_or_default(),
            &cargo.cargo_env,
        ),
        cache_dir,
    )
    .ok()
    .filter(|(o, _)| o.status.success());
    let targets = answer.as_ref().map(|(o, _)| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    });
    let probe = toolchain::probe(cargo.path.as_deref(), cargo.aarch64_linker_set, targets);
    (probe, answer.map(|(_, a)| a))
}

/// Builds every binary of the plan for every platform.
pub fn build_all(
    plan: &Plan,
    ws: &Workspace,
    probe: &Probe,
    shell: &mut Shell,
) -> Result<Vec<BuiltBinary>, BuildError> {
    let remaps = command::remappings(&ws.root, &ws.target_dir, plan.cargo.cargo_home.as_deref());
    let flags = command::extra_rustflags(&remaps);
    let mut built = Vec::new();
    for build in &plan.builds {
        let platform = build.platform;
        let triple = platform.triple();
        let tc = toolchain::select(platform, &ws.c_packages, probe).map_err(|m| {
            BuildError::MissingCompiler {
                platform,
                packages: m.c_packages,
                install: m.install,
            }
        })?;
        ensure_target(probe, triple, &plan.cargo, shell)?;
        let mut cmd =
            command::build_command(build, &plan.cargo, &tc, &ws.target_dir, &flags, plan.epoch);
        cmd.current_dir(&ws.root);
        let shown = command::display(&cmd);
        shell.status(
            "Building",
            format!("{} for {platform} ({triple})", build.bins.join(", ")),
        );
        shell.verbose("Running", format!("`{shown}` ({})", tc.describe));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| BuildError::Spawn {
                command: shown.clone(),
                source,
            })?;
        let mut found = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            for msg in Message::parse_stream(BufReader::new(stdout)).flatten() {
                if let Message::CompilerArtifact(a) = msg {
                    let is_bin = a.target.kind.contains(&TargetKind::Bin);
                    if let (true, Some(exe)) = (is_bin, a.executable) {
                        found.push((a.target.name.clone(), exe.into_std_path_buf()));
                    }
                }
            }
        }
        let status = child.wait().map_err(|source| BuildError::Spawn {
            command: shown.clone(),
            source,
        })?;
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(2) {
            // The terminal's Ctrl-C reached cargo too.
            crate::interrupt::mark();
        }
        if !status.success() {
            let help = if ws.c_packages.iter().any(|p| p == "openssl-sys") {
                // musl targets have no system OpenSSL; a C compiler does not help.
                "fix the errors cargo printed above; if openssl-sys failed: musl targets have no system OpenSSL, so build it from source with `openssl = { version = \"0.10\", features = [\"vendored\"] }` in [dependencies], or switch the crate that pulls it in to rustls (`cargo containerize doctor` names it)".to_string()
            } else if ws.c_packages.is_empty() {
                "fix the errors cargo printed above, then run again".to_string()
            } else {
                format!(
                    "fix the errors cargo printed above; {} compile C code for {triple}: if the C compiler failed, install musl-tools (x86_64) or cargo-zigbuild (`pipx install cargo-zigbuild`; plain pip fails on PEP 668 systems)",
                    ws.c_packages.join(", ")
                )
            };
            return Err(BuildError::CargoFailed {
                platform,
                status: status.to_string(),
                command: shown,
                help,
            });
        }
        for bin in &build.bins {
            let Some((_, path)) = found.iter().find(|(name, _)| name == bin) else {
                return Err(BuildError::MissingArtifact {
                    bin: bin.clone(),
                    platform,
                });
            };
            elf::check_static(path, platform).map_err(|reason| BuildError::NotStatic {
                path: path.clone(),
                platform,
                reason,
            })?;
            let package = plan
                .images
                .iter()
                .find(|i| &i.bin == bin)
                .map(|i| i.package.clone())
                .unwrap_or_default();
            built.push(BuiltBinary {
                bin: bin.clone(),
                package,
                platform,
                path: path.clone(),
            });
        }
    }
    Ok(built)
}
