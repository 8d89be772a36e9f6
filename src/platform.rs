//! The platforms images are built for, and their Rust target triples.

use std::fmt;
use std::str::FromStr;

/// A supported image platform. Each maps to exactly one static musl target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// `linux/amd64` ↔ `x86_64-unknown-linux-musl`
    LinuxAmd64,
    /// `linux/arm64` ↔ `aarch64-unknown-linux-musl`
    LinuxArm64,
}

impl Platform {
    /// Every supported platform, in output order (what `--platform all` means).
    pub const ALL: [Platform; 2] = [Platform::LinuxAmd64, Platform::LinuxArm64];

    /// The platform of the machine this runs on, when it is one the tool builds for.
    pub fn host() -> Option<Platform> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Platform::LinuxAmd64),
            "aarch64" => Some(Platform::LinuxArm64),
            _ => None,
        }
    }

    /// The Rust target triple that produces static binaries for this platform.
    pub fn triple(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "x86_64-unknown-linux-musl",
            Platform::LinuxArm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The OCI `architecture` value.
    pub fn arch(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
        }
    }

    /// The OCI `os` value.
    pub fn os(self) -> &'static str {
        "linux"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os(), self.arch())
    }
}

/// A platform string that is not one this tool builds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported platform `{0}` (supported: linux/amd64, linux/arm64, all)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "linux/amd64" | "amd64" | "x86_64-unknown-linux-musl" => Ok(Platform::LinuxAmd64),
            "linux/arm64" | "linux/arm64/v8" | "arm64" | "aarch64-unknown-linux-musl" => {
                Ok(Platform::LinuxArm64)
            }
            other => Err(UnknownPlatform(other.to_string())),
        }
    }
}

/// Parses a list of platform strings (each may itself be comma-separated, or `all`) into
/// a sorted, de-duplicated list.
pub fn parse_platforms<S: AsRef<str>>(items: &[S]) -> Result<Vec<Platform>, UnknownPlatform> {
    let mut out = Vec::new();
    for item in items {
        for part in item.as_ref().split(',').filter(|p| !p.trim().is_empty()) {
            if part.trim() == "all" {
                out.extend(Platform::ALL);
            } else {
                out.push(part.parse()?);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        assert_eq!(
            parse_platforms(&["linux/arm64,linux/amd64", "linux/amd64"]).unwrap(),
            vec![Platform::LinuxAmd64, Platform::LinuxArm64]
        );
        assert_eq!(parse_platforms(&["all"]).unwrap(), Platform::ALL.to_vec());
        assert_eq!(
            parse_platforms(&["linux/s390x"]).unwrap_err().to_string(),
            "unsupported platform `linux/s390x` (supported: linux/amd64, linux/arm64, all)"
        );
    }
}
