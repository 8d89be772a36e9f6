//! Which crate versions crates.io has yanked, read offline from the index cache cargo
//! keeps under `$CARGO_HOME/registry/index/*/.cache/` (refreshed whenever cargo
//! resolves against the network). cargo-audit asks crates.io instead; reading cargo's
//! own copy keeps the audit offline and as current as the last `cargo update` or
//! `cargo generate-lockfile`.
//!
//! The cache file format (cargo `src/cargo/sources/registry/index/cache.rs`): a version
//! byte, a 4-byte index schema version, the index file's version and a NUL, then for each
//! published version `semver NUL json NUL`, the JSON line being the index entry (with
//! `"yanked": true` for a yanked version).

use std::path::{Path, PathBuf};

/// The index caches of one cargo home.
#[derive(Debug, Clone, Default)]
pub struct Yanked {
    caches: Vec<PathBuf>,
}

/// Where the index of a crate lives under an index directory (cargo's `make_dep_path`).
fn relative_path(name: &str) -> PathBuf {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => PathBuf::from("1").join(&name),
        2 => PathBuf::from("2").join(&name),
        3 => PathBuf::from("3").join(&name[..1]).join(&name),
        _ => PathBuf::from(&name[..2]).join(&name[2..4]).join(&name),
    }
}

/// Whether `version` is marked yanked in a cache file's bytes.
fn yanked_in(bytes: &[u8], version: &str) -> Option<bool> {
    // version (1) + schema version (4), then the index file's version up to NUL.
    let rest = bytes.get(5..)?;
    let start = rest.iter().position(|b| *b == 0)? + 1;
    let mut fields = rest[start..].split(|b| *b == 0);
    while let (Some(v), Some(json)) = (fields.next(), fields.next()) {
        if v == version.as_bytes() {
            #[derive(serde::Deserialize)]
            struct Entry {
                #[serde(default)]
                yanked: bool,
            }
            return serde_json::from_slice::<Entry>(json).ok().map(|e| e.yanked);
        }
    }
    None
}

impl Yanked {
    /// The crates.io index caches under `cargo_home` (none when it has none).
    pub fn new(cargo_home: Option<&Path>) -> Self {
        let Some(index) = cargo_home.map(|h| h.join("registry").join("index")) else {
            return Yanked::default();
        };
        let mut caches: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(index)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("index.crates.io-") || n.starts_with("github.com-")
            })
            .map(|e| e.path().join(".cache"))
            .filter(|p| p.is_dir())
            .map(|p| {
                let t = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect();
        // The most recently used index first (cargo's sparse index, normally).
        caches.sort_by(|a, b| b.cmp(a));
        Yanked {
            caches: caches.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// Whether cargo's cache says `name` `version` is yanked (`false` when it does not
    /// know the crate).
    pub fn is_yanked(&self, name: &str, version: &str) -> bool {
        let rel = relative_path(name);
        self.caches
            .iter()
            .find_map(|c| {
                std::fs::read(c.join(&rel))
                    .ok()
                    .and_then(|b| yanked_in(&b, version))
            })
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_file(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![3u8, 2, 0, 0, 0];
        b.extend_from_slice(b"etag: \"abc\"\0");
        for (v, json) in entries {
            b.extend_from_slice(v.as_bytes());
            b.push(0);
            b.extend_from_slice(json.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn reads_the_yanked_flag_of_one_version() {
        let b = cache_file(&[
            ("1.0.0", r#"{"name":"x","vers":"1.0.0","yanked":false}"#),
            ("1.0.1", r#"{"name":"x","vers":"1.0.1","yanked":true}"#),
        ]);
        assert_eq!(yanked_in(&b, "1.0.0"), Some(false));
        assert_eq!(yanked_in(&b, "1.0.1"), Some(true));
        assert_eq!(yanked_in(&b, "2.0.0"), None);
        assert_eq!(yanked_in(b"\x03", "1.0.0"), None);
    }

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(relative_path("a"), PathBuf::from("1/a"));
        assert_eq!(relative_path("ab"), PathBuf::from("2/ab"));
        assert_eq!(relative_path("abc"), PathBuf::from("3/a/abc"));
        assert_eq!(relative_path("Itoa"), PathBuf::from("it/oa/itoa"));
    }

    #[test]
    fn a_cache_dir_is_found_under_cargo_home() {
        let home = tempfile::tempdir().unwrap();
        let dir = home
            .path()
            .join("registry/index/index.crates.io-1949cf8c6b5b557f/.cache/it/oa");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("itoa"),
            cache_file(&[("1.0.19", r#"{"vers":"1.0.19","yanked":true}"#)]),
        )
        .unwrap();
        let y = Yanked::new(Some(home.path()));
        assert!(y.is_yanked("itoa", "1.0.19"));
        assert!(!y.is_yanked("itoa", "1.0.18"));
        assert!(!y.is_yanked("memchr", "2.0.0"));
    }
}
