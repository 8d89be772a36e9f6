//! BuildPlan × CargoOptions × Toolchain → the `cargo build` [`Command`], returned as data
//! so tests check its arguments without running cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::toolchain::{Driver, Toolchain};
use crate::config::{CargoOptions, UserRustflags};
use crate::plan::BuildPlan;

/// Path prefixes rewritten in the binaries so that they do not depend on where the
/// workspace, the cargo home or the target directory are: `(from, to)`, broadest first
/// (rustc applies the last matching remapping).
pub fn remappings(
    workspace_root: &Path,
    target_dir: &Path,
    cargo_home: Option<&Path>,
) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some(home) = cargo_home {
        out.push((home.to_path_buf(), "/cargo"));
    }
    out.push((workspace_root.to_path_buf(), "/workspace"));
    out.push((target_dir.to_path_buf(), "/target"));
    out
}

/// The rustflags this tool adds: one `--remap-path-prefix` per remapping.
pub fn extra_rustflags(remaps: &[(PathBuf, &'static str)]) -> Vec<String> {
    remaps
        .iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect()
}

/// Builds the cargo command for one platform. `epoch` (the plan's: the user's
/// `SOURCE_DATE_EPOCH`, else the last commit time) is exported as `SOURCE_DATE_EPOCH`, so
/// that C compilers run by build scripts (gcc, clang and zig cc honour it for `__DATE__`
/// and `__TIME__`) and build-time stamps (shadow-rs, vergen, built) give the same bytes
/// on every build of a commit.
pub fn build_command(
    build: &BuildPlan,
    opts: &CargoOptions,
    toolchain: &Toolchain,
    target_dir: &Path,
    extra_flags: &[String],
    epoch: u64,
) -> Command {
    let mut cmd = Command::new(&opts.cargo_bin);
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string());
    match toolchain.driver {
        Driver::Cargo => cmd.arg("build"),
        Driver::Zigbuild => cmd.arg("zigbuild"),
    };
    cmd.args(["--target", build.platform.triple()]);
    cmd.args(["--profile", &opts.profile]);
    cmd.arg("--message-format=json-render-diagnostics");
    for p in &build.packages {
        cmd.args(["-p", p]);
    }
    for b in &build.bins {
        cmd.args(["--bin", b]);
    }
    if !opts.features.is_empty() {
        cmd.args(["--features", &opts.features.join(",")]);
    }
    for (flag, on) in [
        ("--all-features", opts.all_features),
        ("--no-default-features", opts.no_default_features),
        ("--locked", opts.locked),
        ("--frozen", opts.frozen),
        ("--offline", opts.offline),
        ("--quiet", opts.quiet),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    for config in &opts.config {
        cmd.arg("--config").arg(config);
    }
    if let Some(j) = opts.jobs {
        cmd.arg(format!("--jobs={j}"));
    }
    if opts.verbose > 1 {
        cmd.arg("--verbose");
    }
    cmd.arg("--target-dir").arg(target_dir);
    match &opts.user_rustflags {
        // The user's RUSTFLAGS win over config files in cargo, so ours are appended to them.
        UserRustflags::Env(user) => {
            let all: Vec<&str> = user
                .iter()
                .map(String::as_str)
                .chain(extra_flags.iter().map(String::as_str))
                .collect();
            cmd.env("CARGO_ENCODED_RUSTFLAGS", all.join("\x1f"));
            cmd.env_remove("RUSTFLAGS");
        }
        // Arrays given with --config are appended to the config files' `build.rustflags`.
        UserRustflags::None => {
            let quoted: Vec<String> = extra_flags.iter().map(|f| toml_string(f)).collect();
            cmd.arg("--config")
                .arg(format!("build.rustflags=[{}]", quoted.join(", ")));
        }
    }
    for (k, v) in &toolchain.env {
        cmd.env(k, v);
    }
    cmd
}

/// `rustc -vV`, run the way cargo runs the compiler: `RUSTC` if set, in the workspace
/// root (so a `rust-toolchain.toml` there picks the same toolchain as the build).
pub fn rustc_version_command(opts: &CargoOptions, root: &Path) -> Command {
    let rustc = opts.cargo_env.get("RUSTC").map_or("rustc", String::as_str);
    let mut cmd = Command::new(rustc);
    cmd.arg("-vV").current_dir(root);
    cmd
}

/// A TOML basic string (JSON string escapes are valid TOML escapes).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The command line as a user would type it, for messages.
pub fn display(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            v.map(|v| {
                format!(
                    "{}={}",
                    k.to_string_lossy(),
                    v.to_string_lossy().replace('\x1f', " ")
                )
            })
        })
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.contains([' ', '"', '[']) {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    #[test]
    fn rustc_version_is_asked_of_the_rustc_cargo_uses() {
        let mut o = opts();
        o.cargo_env
            .insert("RUSTC".into(), "/opt/rust/bin/rustc".into());
        let cmd = rustc_version_command(&o, Path::new("/ws"));
        assert_eq!(display(&cmd), "/opt/rust/bin/rustc -vV");
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/ws")));
        let v = crate::build::RustcVersion::parse(
            "rustc 1.89.0 (29483883e 2025-08-04)\nbinary: rustc\ncommit-hash: 29483883eed69d5fb4db01964cdf2af4d86e9cb2\nhost: x86_64-unknown-linux-gnu\nrelease: 1.89.0\n",
        )
        .unwrap();
        assert_eq!(v.version, "rustc 1.89.0 (29483883e 2025-08-04)");
        assert_eq!(v.release.as_deref(), Some("1.89.0"));
        assert_eq!(v.host.as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert!(crate::build::RustcVersion::parse("error: no such command").is_none());
    }

    fn opts() -> CargoOptions {
        CargoOptions {
            profile: "release".into(),
            cargo_bin: "cargo".into(),
            locked: true,
            jobs: Some(2),
            features: vec!["a".into(), "b".into()],
            ..Default::default()
        }
    }

    fn plan() -> BuildPlan {
        BuildPlan {
            platform: Platform::LinuxArm64,
            packages: vec!["api".into(), "worker".into()],
            bins: vec!["api".into(), "worker".into()],
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn builds_selected_bins_for_the_target_with_remapped_paths() {
        let tc = Toolchain {
            driver: Driver::Cargo,
            env: vec![("L".into(), "rust-lld".into())],
            describe: String::new(),
        };
        let remaps = remappings(
            Path::new("/w"),
            Path::new("/w/target"),
            Some(Path::new("/h/.cargo")),
        );
        let cmd = build_command(
            &plan(),
            &opts(),
            &tc,
            Path::new("/w/target"),
            &extra_rustflags(&remaps),
            1_714_564_800,
        );
        assert_eq!(
            args(&cmd).join(" "),
            "build --target aarch64-unknown-linux-musl --profile release --message-format=json-render-diagnostics \
             -p api -p worker --bin api --bin worker --features a,b --locked --jobs=2 --target-dir /w/target \
             --config build.rustflags=[\"--remap-path-prefix=/h/.cargo=/cargo\", \"--remap-path-prefix=/w=/workspace\", \"--remap-path-prefix=/w/target=/target\"]"
        );
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "L" && v == Some("rust-lld".as_ref()))
        );
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "SOURCE_DATE_EPOCH" && v == Some("1714564800".as_ref())),
            "the plan's epoch reaches build scripts and C compilers"
        );
    }

    /// Issue 17: `--config KEY=VALUE` reaches cargo as given, each once.
    #[test]
    fn r17_config_values_are_passed_to_cargo() {
        let mut o = opts();
        o.config = vec!["net.retry=5".into(), "ci.toml".into()];
        let tc = Toolchain {
            driver: Driver::Cargo,
            env: Vec::new(),
            describe: String::new(),
        };
        let cmd = build_command(&plan(), &o, &tc, Path::new("/t"), &[], 0);
        let line = args(&cmd).join(" ");
        assert!(
            line.contains(
                "--locked --config net.retry=5 --config ci.toml --jobs=2 --target-dir /t"
            ),
            "{line}"
        );
    }

    #[test]
    fn user_rustflags_are_kept_and_ours_appended() {
        let mut o = opts();
        o.user_rustflags = UserRustflags::Env(vec!["-C".into(), "target-cpu=x86-64-v2".into()]);
        let tc = Toolchain {
            driver: Driver::Zigbuild,
            env: vec![],
            describe: String::new(),
        };
        let cmd = build_command(
            &plan(),
            &o,
            &tc,
            Path::new("/t"),
            &["--remap-path-prefix=/w=/workspace".into()],
            0,
        );
        assert_eq!(args(&cmd)[0], "zigbuild");
        let enc = cmd
            .get_envs()
            .find(|(k, _)| *k == "CARGO_ENCODED_RUSTFLAGS")
            .and_then(|(_, v)| v)
            .unwrap();
        assert_eq!(
            enc,
            "-C\x1ftarget-cpu=x86-64-v2\x1f--remap-path-prefix=/w=/workspace"
        );
        assert!(!args(&cmd).contains(&"--config".to_string()));
    }
}
