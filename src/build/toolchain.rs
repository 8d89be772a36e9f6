//! Which tools build a static binary for a platform: plain cargo (with rust-lld for
//! aarch64 when there is no C code), musl-gcc, or cargo-zigbuild. The choice is a pure
//! function of what was found ([`Probe`]) so it is unit-tested; [`probe`] does the looking.

use std::path::Path;

use crate::platform::Platform;

/// How cargo is driven for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// `cargo build`.
    Cargo,
    /// `cargo zigbuild` (zig as the C compiler and linker).
    Zigbuild,
}

/// The chosen toolchain for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// cargo or cargo-zigbuild.
    pub driver: Driver,
    /// Extra environment for the build (linker / C compiler selection).
    pub env: Vec<(String, String)>,
    /// One line describing the choice, for `-v`.
    pub describe: String,
}

/// What is installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `rustup target list --installed`, or `None` without rustup.
    pub rustup_targets: Option<Vec<String>>,
    /// `musl-gcc` on PATH (Debian's musl-tools).
    pub musl_gcc: bool,
    /// `aarch64-linux-musl-gcc` on PATH (a musl cross compiler).
    pub aarch64_musl_gcc: bool,
    /// `cargo-zigbuild` on PATH.
    pub zigbuild: bool,
    /// The user set `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER` themselves.
    pub aarch64_linker_set: bool,
}

/// No toolchain can build this platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCompiler {
    /// The platform.
    pub platform: Platform,
    /// Packages that compile C code.
    pub c_packages: Vec<String>,
    /// What to install.
    pub install: &'static str,
}

fn on_path(name: &str, path: Option<&str>) -> bool {
    path.unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| Path::new(d).join(name).is_file())
}

/// Looks for C toolchains on `path` (`$PATH`); `rustup_targets` is what rustup said is
/// installed (`None` without rustup).
pub fn probe(
    path: Option<&str>,
    aarch64_linker_set: bool,
    rustup_targets: Option<Vec<String>>,
) -> Probe {
    Probe {
        rustup_targets,
        musl_gcc: on_path("musl-gcc", path),
        aarch64_musl_gcc: on_path("aarch64-linux-musl-gcc", path),
        zigbuild: on_path("cargo-zigbuild", path),
        aarch64_linker_set,
    }
}

/// Chooses how to build `platform` given whether the graph compiles C code.
pub fn select(
    platform: Platform,
    c_packages: &[String],
    probe: &Probe,
) -> Result<Toolchain, MissingCompiler> {
    let has_c = !c_packages.is_empty();
    let zig = || Toolchain {
        driver: Driver::Zigbuild,
        env: Vec::new(),
        describe: "cargo-zigbuild (zig cc for C code and linking)".into(),
    };
    match platform {
        Platform::LinuxAmd64 => {
            if !has_c || probe.musl_gcc {
                // rustc links x86_64 musl with its self-contained crt objects; cc-rs picks
                // `musl-gcc` for C code by itself.
                Ok(Toolchain {
                    driver: Driver::Cargo,
                    env: Vec::new(),
                    describe: if has_c {
                        "cargo with musl-gcc".into()
                    } else {
                        "cargo".into()
                    },
                })
            } else if probe.zigbuild {
                Ok(zig())
            } else {
                Err(MissingCompiler {
                    platform,
                    c_packages: c_packages.to_vec(),
                    install: "musl-tools (`sudo apt-get install musl-tools`) or cargo-zigbuild (`pipx install cargo-zigbuild`, or `pip install --user cargo-zigbuild`; plain pip fails on PEP 668 systems such as Debian 12)",
                })
            }
        }
        Platform::LinuxArm64 => {
            let linker_var = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER".to_string();
            if has_c && probe.zigbuild {
                Ok(zig())
            } else if has_c && probe.aarch64_musl_gcc {
                let mut env = vec![(
                    "CC_aarch64_unknown_linux_musl".into(),
                    "aarch64-linux-musl-gcc".into(),
                )];
                if !probe.aarch64_linker_set {
                    env.push((linker_var, "aarch64-linux-musl-gcc".into()));
                }
                Ok(Toolchain {
                    driver: Driver::Cargo,
                    env,
                    describe: "cargo with aarch64-linux-musl-gcc".into(),
                })
            } else if has_c {
                Err(MissingCompiler {
                    platform,
                    c_packages: c_packages.to_vec(),
                    install: "cargo-zigbuild (`pipx install cargo-zigbuild`, or `pip install --user cargo-zigbuild`; plain pip fails on PEP 668 systems such as Debian 12) or an aarch64-linux-musl-gcc cross compiler",
                })
            } else {
                // Pure Rust: rustc's bundled lld links against the target's self-contained
                // musl, so no cross C toolchain is needed.
                let env = if probe.aarch64_linker_set {
                    Vec::new()
                } else {
                    vec![(linker_var, "rust-lld".into())]
                };
                Ok(Toolchain {
                    driver: Driver::Cargo,
                    env,
                    describe: "cargo with rust-lld".into(),
                })
            }
        }
    }
}

/// Whether `triple` still has to be added with rustup (`false` without rustup: then the
/// build itself reports a missing target).
pub fn target_missing(probe: &Probe, triple: &str) -> bool {
    probe
        .rustup_targets
        .as_ref()
        .is_some_and(|t| !t.iter().any(|x| x == triple))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Vec<String> {
        vec!["cshim".into()]
    }

    #[test]
    fn pure_rust_needs_no_c_toolchain() {
        let p = Probe::default();
        assert_eq!(
            select(Platform::LinuxAmd64, &[], &p).unwrap().driver,
            Driver::Cargo
        );
        let arm = select(Platform::LinuxArm64, &[], &p).unwrap();
        assert_eq!(
            arm.env,
            [(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER".to_string(),
                "rust-lld".to_string()
            )]
        );
        let user = Probe {
            aarch64_linker_set: true,
            ..Default::default()
        };
        assert!(
            select(Platform::LinuxArm64, &[], &user)
                .unwrap()
                .env
                .is_empty()
        );
    }

    #[test]
    fn c_code_uses_musl_gcc_then_zigbuild_else_names_what_to_install() {
        let gcc = Probe {
            musl_gcc: true,
            ..Default::default()
        };
        assert_eq!(
            select(Platform::LinuxAmd64, &c(), &gcc).unwrap().driver,
            Driver::Cargo
        );
        let zig = Probe {
            zigbuild: true,
            ..Default::default()
        };
        assert_eq!(
            select(Platform::LinuxAmd64, &c(), &zig).unwrap().driver,
            Driver::Zigbuild
        );
        assert_eq!(
            select(Platform::LinuxArm64, &c(), &zig).unwrap().driver,
            Driver::Zigbuild
        );
        let err = select(Platform::LinuxArm64, &c(), &gcc).unwrap_err();
        assert!(err.install.contains("cargo-zigbuild"));
        let err = select(Platform::LinuxAmd64, &c(), &Probe::default()).unwrap_err();
        assert!(err.install.contains("musl-tools"));
    }

    #[test]
    fn missing_targets_are_detected_only_with_rustup() {
        let p = Probe {
            rustup_targets: Some(vec!["x86_64-unknown-linux-gnu".into()]),
            ..Default::default()
        };
        assert!(target_missing(&p, "aarch64-unknown-linux-musl"));
        assert!(!target_missing(
            &Probe::default(),
            "aarch64-unknown-linux-musl"
        ));
    }
}
