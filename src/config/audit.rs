//! `[*.metadata.containerize.audit]` and the `--audit` flags → [`AuditSettings`] (the
//! run's database, threshold and denials) and [`ImageAudit`] (each image's threshold and
//! ignore list). The advisory database itself is the `audit` stage's business; this
//! module only says where it is and what counts.
//!
//! Ignoring an advisory needs a reason, as cargo-deny asks (`ignore = [{ id = "…",
//! reason = "…" }]`): a bare id is refused, so every exception in a repository says why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Source};

/// The RustSec database cargo-audit clones by default.
pub const DEFAULT_DB_URL: &str = "https://github.com/RustSec/advisory-db.git";

/// A severity threshold, CVSS's qualitative scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9.
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Severity {
    /// Lowercase, as written in the metadata and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What `--deny` turns from a warning into a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deny {
    /// Every warning (`--deny warnings`).
    Warnings,
    /// Unmaintained crates.
    Unmaintained,
    /// Unsound crates.
    Unsound,
    /// Yanked crate versions.
    Yanked,
}

/// `[…containerize.audit]` as written.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditLayer {
    /// Fail only on vulnerabilities at or above this severity.
    pub severity: Option<Severity>,
    /// Advisories that do not fail the run, each with its reason.
    pub ignore: Option<Vec<IgnoreEntry>>,
}

/// One ignored advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoreEntry {
    /// `RUSTSEC-YYYY-NNNN` (or one of its aliases: `CVE-…`, `GHSA-…`).
    pub id: String,
    /// Why it does not apply.
    pub reason: String,
}

impl<'de> Deserialize<'de> for IgnoreEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            id: String,
            reason: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bare(String),
            Table(Table),
            Other(serde::de::IgnoredAny),
        }
        match Written::deserialize(d)? {
            Written::Table(t) => Ok(IgnoreEntry {
                id: t.id,
                reason: t.reason,
            }),
            Written::Bare(id) => Err(D::Error::custom(format!(
                "`\"{id}\"` has no reason: write {{ id = \"{id}\", reason = \"why it does not apply\" }}"
            ))),
            Written::Other(_) => Err(D::Error::custom(
                "expected { id = \"RUSTSEC-…\", reason = \"…\" } (both keys, nothing else)",
            )),
        }
    }
}

/// Why an advisory is ignored, and where that was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The reason given (`--ignore` on the command line gives none).
    pub reason: Option<String>,
    /// The table or flag.
    pub source: String,
}

/// One image's audit policy, resolved from its metadata layers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageAudit {
    /// The lowest severity that fails (`None`: every vulnerability fails).
    pub severity: Option<Severity>,
    /// Advisory id → why it is ignored.
    pub ignore: BTreeMap<String, Ignored>,
}

/// Whether `id` looks like an advisory id this database or its aliases use.
fn valid_id(id: &str) -> bool {
    let upper = id.to_ascii_uppercase();
    let ok_prefix = ["RUSTSEC-", "CVE-", "GHSA-"]
        .iter()
        .any(|p| upper.starts_with(p) && upper.len() > p.len());
    ok_prefix
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Merges the `audit` tables of an image's layers (lowest precedence first): the last
/// `severity` wins, ignore lists add up.
pub fn resolve(layers: &[(&AuditLayer, &Source)]) -> Result<ImageAudit, ConfigError> {
    let mut out = ImageAudit::default();
    for (layer, source) in layers {
        if let Some(s) = layer.severity {
            out.severity = Some(s);
        }
        for (i, entry) in layer.ignore.iter().flatten().enumerate() {
            let key = format!("audit.ignore[{i}]");
            if !valid_id(&entry.id) {
                return Err(source.error(
                    &key,
                    format!(
                        "`{}` is not an advisory id like RUSTSEC-2023-0071 (or its CVE-/GHSA- alias)",
                        entry.id
                    ),
                ));
            }
            if entry.reason.trim().is_empty() {
                return Err(source.error(
                    &key,
                    format!(
                        "the reason for ignoring {} is empty: say why it does not apply",
                        entry.id
                    ),
                ));
            }
            out.ignore.insert(
                entry.id.clone(),
                Ignored {
                    reason: Some(entry.reason.clone()),
                    source: source.to_string(),
                },
            );
        }
    }
    Ok(out)
}

/// The run's audit: asked for with `--audit` or by `cargo containerize audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// `--severity` (over every image's metadata).
    pub severity: Option<Severity>,
    /// `--ignore` ids.
    pub ignore: Vec<String>,
    /// `--deny`.
    pub deny: Vec<Deny>,
    /// `--advisory-db`/`CARGO_CONTAINERIZE_ADVISORY_DB`, else `$CARGO_HOME/advisory-db`.
    pub db: PathBuf,
    /// Where a missing database is cloned from.
    pub db_url: String,
    /// `--offline`/`--frozen`/`CARGO_NET_OFFLINE`: the database is used as it is.
    pub offline: bool,
}

/// Checks `--ignore` ids.
pub fn validate_cli_ignores(ids: &[String]) -> Result<(), ConfigError> {
    match ids.iter().find(|id| !valid_id(id)) {
        Some(id) => Err(ConfigError::BadArg {
            origin: "--ignore".into(),
            message: format!(
                "`{id}` is not an advisory id like RUSTSEC-2023-0071 (or its CVE-/GHSA- alias)"
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(v: serde_json::Value) -> Result<AuditLayer, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn a_bare_id_needs_a_reason() {
        let err = layer(serde_json::json!({ "ignore": ["RUSTSEC-2023-0071"] })).unwrap_err();
        assert!(
            err.to_string()
                .contains("has no reason: write { id = \"RUSTSEC-2023-0071\", reason = "),
            "{err}"
        );
    }

    #[test]
    fn ignore_lists_add_up_and_the_last_severity_wins() {
        let ws = layer(serde_json::json!({
            "severity": "medium",
            "ignore": [{ "id": "RUSTSEC-2023-0071", "reason": "no RSA decryption here" }]
        }))
        .unwrap();
        let pkg = layer(serde_json::json!({
            "severity": "high",
            "ignore": [{ "id": "GHSA-abcd-efgh-ijkl", "reason": "not reachable" }]
        }))
        .unwrap();
        let w = Source::Workspace("Cargo.toml".into());
        let p = Source::Package("api/Cargo.toml".into());
        let r = resolve(&[(&ws, &w), (&pkg, &p)]).unwrap();
        assert_eq!(r.severity, Some(Severity::High));
        assert_eq!(r.ignore.len(), 2);
        assert_eq!(
            r.ignore["RUSTSEC-2023-0071"].reason.as_deref(),
            Some("no RSA decryption here")
        );
    }

    #[test]
    fn bad_ids_and_empty_reasons_are_refused() {
        let w = Source::Workspace("Cargo.toml".into());
        let bad =
            layer(serde_json::json!({ "ignore": [{ "id": "2023-0071", "reason": "x" }] })).unwrap();
        assert!(
            resolve(&[(&bad, &w)])
                .unwrap_err()
                .to_string()
                .contains("audit.ignore[0]")
        );
        let empty =
            layer(serde_json::json!({ "ignore": [{ "id": "RUSTSEC-2023-0071", "reason": " " }] }))
                .unwrap();
        assert!(resolve(&[(&empty, &w)]).is_err());
        assert!(validate_cli_ignores(&["RUSTSEC-2023-0071".into()]).is_ok());
        assert!(validate_cli_ignores(&["nope".into()]).is_err());
    }
}
