//! The process exit codes, one place for every command (documented in the README).

/// Exit code for usage and configuration errors.
pub const CONFIG: i32 = 2;
/// Exit code for build failures (cargo, toolchain, non-static binaries).
pub const BUILD: i32 = 3;
/// Exit code for registry failures (auth, network, refused pushes).
pub const REGISTRY: i32 = 4;
/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED: i32 = 130;
/// Exit code for failures writing outputs.
pub const OUTPUT: i32 = 1;
/// Exit code of `verify` when the image does not match (signature, attestation or a
/// rebuilt digest).
pub const MISMATCH: i32 = 5;
/// Exit code of `audit` and `--audit` when an image links a vulnerable crate (or a warning
/// `--deny` names).
pub const VULNERABLE: i32 = 6;
