//! `verify`'s attestation side: a [`RemoteImage`] (its manifests and referrers) and,
//! with `--key`, a public key → what checks out and what does not:
//!
//! - with a key, every manifest (the index and each platform's) needs a signature bundle
//!   (`https://sigstore.dev/cosign/sign/v1`) that verifies with it and names that digest;
//!   every signed attestation that is there must verify and name its platform manifest;
//! - every SBOM and provenance must be attached to a platform manifest of this image
//!   (its artifact manifest's `subject`), and a provenance statement's subject must be
//!   that manifest's digest.

use super::sign::{self, AnyStatement, BundleError, COSIGN_SIGN};
use crate::image::artifact::{
    CYCLONEDX_JSON, IN_TOTO_JSON, SIGSTORE_BUNDLE, SPDX_JSON, is_vulnerabilities,
};
use crate::registry::inspect::RemoteImage;

/// An SBOM this checkout wrote for one platform: its `artifactType`, its format's name
/// and its bytes.
#[derive(Debug, Clone)]
pub struct LocalSbom {
    /// `application/vnd.cyclonedx+json` or `application/spdx+json`.
    pub artifact_type: &'static str,
    /// `CycloneDX` or `SPDX`.
    pub kind: &'static str,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// The SBOMs attached to the registry's manifest `digest` (of `platform`) against the
/// ones the rebuild wrote: each attached SBOM must be byte for byte the rebuilt one of its
/// format (an exact SBOM is part of the image); a difference names the JSON fields.
pub fn compare_sboms(
    remote: &RemoteImage,
    digest: &str,
    platform: &str,
    ours: &[LocalSbom],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let attached = remote
        .referrers
        .iter()
        .filter(|r| r.listed_for == digest && !is_vulnerabilities(&r.annotations));
    for r in attached {
        let Some(local) = ours.iter().find(|l| l.artifact_type == r.artifact_type) else {
            continue;
        };
        if r.document == local.bytes {
            out.push(Finding {
                ok: true,
                message: format!(
                    "{platform} SBOM ({}) is the one this checkout writes",
                    local.kind
                ),
            });
            continue;
        }
        let mut fields = crate::image::diff::json_differences(&local.bytes, &r.document);
        let more = fields.len().saturating_sub(5);
        fields.truncate(5);
        let mut listed = fields.join(", ");
        if more > 0 {
            listed.push_str(&format!(" and {more} more"));
        }
        out.push(Finding {
            ok: false,
            message: format!(
                "{platform}: the attached SBOM ({}, {}) is not the one this checkout writes; fields that differ: {listed}",
                local.kind, r.digest
            ),
        });
    }
    out
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whether it is a problem (`verify` fails) or a fact checked.
    pub ok: bool,
    /// What was checked, for a status line or an error note.
    pub message: String,
}

/// What the manifests are, for messages: `linux/amd64 sha256:…` or `index sha256:…`.
fn describe(remote: &RemoteImage, digest: &str) -> String {
    match remote
        .platforms
        .iter()
        .find(|p| p.manifest.digest == digest)
    {
        Some(p) => format!("{} manifest {digest}", p.platform),
        None => format!("index {digest}"),
    }
}

/// Checks `remote`'s referrers; `key` is a PEM public key.
pub fn check_referrers(remote: &RemoteImage, key: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut subjects: Vec<&str> = remote
        .platforms
        .iter()
        .map(|p| p.manifest.digest.as_str())
        .collect();
    if remote.index.is_some() {
        subjects.insert(0, remote.digest.as_str());
    }
    let ok = |message: String| Finding { ok: true, message };
    let bad = |message: String| Finding { ok: false, message };
    for referrer in &remote.referrers {
        if referrer.subject.as_deref() != Some(referrer.listed_for.as_str()) {
            out.push(bad(format!(
                "the artifact {} listed for {} names {} as its subject",
                referrer.digest,
                describe(remote, &referrer.listed_for),
                referrer.subject.as_deref().unwrap_or("nothing")
            )));
        }
    }
    // SBOMs and provenance: about a platform manifest of this image.
    for p in &remote.platforms {
        let digest = p.manifest.digest.as_str();
        let mine = || {
            remote
                .referrers
                .iter()
                .filter(move |r| r.listed_for == digest)
        };
        for r in mine().filter(|r| r.artifact_type == IN_TOTO_JSON) {
            match serde_json::from_slice::<AnyStatement>(&r.document) {
                Ok(s) if s.names(digest) => out.push(ok(format!(
                    "provenance ({}) of {} names it as its subject",
                    s.predicate_type,
                    describe(remote, digest)
                ))),
                Ok(_) => out.push(bad(format!(
                    "the provenance attached to {} is about another image",
                    describe(remote, digest)
                ))),
                Err(e) => out.push(bad(format!(
                    "the provenance attached to {} is not an in-toto Statement: {e}",
                    describe(remote, digest)
                ))),
            }
        }
        for r in mine().filter(|r| [CYCLONEDX_JSON, SPDX_JSON].contains(&r.artifact_type.as_str()))
        {
            if is_vulnerabilities(&r.annotations) {
                out.push(ok(format!(
                    "vulnerabilities document (CycloneDX) is attached to {}",
                    describe(remote, digest)
                )));
                continue;
            }
            let kind = if r.artifact_type == SPDX_JSON {
                "SPDX"
            } else {
                "CycloneDX"
            };
            match serde_json::from_slice::<serde_json::Value>(&r.document) {
                Ok(_) => out.push(ok(format!(
                    "SBOM ({kind}) is attached to {}",
                    describe(remote, digest)
                ))),
                Err(e) => out.push(bad(format!(
                    "the {kind} SBOM attached to {} is not JSON: {e}",
                    describe(remote, digest)
                ))),
            }
        }
    }
    let Some(key) = key else {
        return out;
    };
    for subject in &subjects {
        let bundles = remote
            .referrers
            .iter()
            .filter(|r| r.listed_for == *subject && r.artifact_type == SIGSTORE_BUNDLE);
        let mut signed = false;
        let mut reasons = Vec::new();
        for b in bundles {
            match sign::open(&b.document, key, subject) {
                Ok(s) if s.predicate_type == COSIGN_SIGN => signed = true,
                Ok(s) => out.push(ok(format!(
                    "signed attestation ({}) of {} verifies",
                    s.predicate_type,
                    describe(remote, subject)
                ))),
                Err(BundleError::BadSignature) => {
                    reasons.push(format!("bundle {} is not signed by this key", b.digest))
                }
                Err(e) => out.push(bad(format!(
                    "the bundle {} attached to {}: {e}",
                    b.digest,
                    describe(remote, subject)
                ))),
            }
        }
        if signed {
            out.push(ok(format!(
                "signature of {} verifies with the key",
                describe(remote, subject)
            )));
        } else {
            let why = if reasons.is_empty() {
                "no signature bundle is attached".to_string()
            } else {
                reasons.join("; ")
            };
            out.push(bad(format!(
                "{} has no signature by this key ({why})",
                describe(remote, subject)
            )));
        }
    }
    out
}

/// `verify`'s verdict when something does not match.
#[derive(Debug, thiserror::Error)]
#[error("{reference} does not verify: {summary}")]
pub struct VerifyFailed {
    /// The image checked.
    pub reference: String,
    /// How many problems (`1 problem`, `3 problems`), each a note below.
    pub summary: String,
    /// Every problem, one `note:` line each, then what to do.
    pub details: String,
}

impl miette::Diagnostic for VerifyFailed {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("containerize::verify"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.details))
    }
}

impl VerifyFailed {
    /// The verdict over `problems` (each a sentence), with `help`.
    pub fn new(reference: &str, problems: &[String], help: &str) -> Self {
        let mut details: Vec<String> = problems.iter().map(|p| format!("note: {p}")).collect();
        details.push(help.to_string());
        VerifyFailed {
            reference: reference.to_string(),
            summary: match problems.len() {
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            },
            details: details.join("\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::inspect::Referrer;

    fn referrer(artifact_type: &str, document: &[u8], vex: bool) -> Referrer {
        Referrer {
            listed_for: "sha256:aa".into(),
            digest: "sha256:bb".into(),
            artifact_type: artifact_type.into(),
            annotations: if vex {
                crate::image::artifact::vulnerabilities_annotations()
            } else {
                Default::default()
            },
            subject: Some("sha256:aa".into()),
            document: document.to_vec(),
        }
    }

    #[test]
    fn attached_sboms_must_be_the_rebuilt_ones_byte_for_byte() {
        let remote = RemoteImage {
            reference: crate::reference::ImageReference::parse("127.0.0.1:5000/app:latest")
                .unwrap(),
            digest: "sha256:aa".into(),
            index: None,
            platforms: Vec::new(),
            referrers: vec![
                referrer(
                    CYCLONEDX_JSON,
                    br#"{"components":[{"version":"1.0.1"}]}"#,
                    false,
                ),
                referrer(SPDX_JSON, br#"{"spdxVersion":"SPDX-2.3"}"#, false),
                // The audit's document changes with the database: never compared.
                referrer(CYCLONEDX_JSON, br#"{"vulnerabilities":[]}"#, true),
            ],
        };
        let ours = [
            LocalSbom {
                artifact_type: CYCLONEDX_JSON,
                kind: "CycloneDX",
                bytes: br#"{"components":[{"version":"1.0.2"}]}"#.to_vec(),
            },
            LocalSbom {
                artifact_type: SPDX_JSON,
                kind: "SPDX",
                bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
            },
        ];
        let found = compare_sboms(&remote, "sha256:aa", "linux/amd64", &ours);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(!found[0].ok);
        assert!(
            found[0]
                .message
                .ends_with("fields that differ: components[0].version"),
            "{}",
            found[0].message
        );
        assert!(found[1].ok, "{:?}", found[1]);
        assert!(compare_sboms(&remote, "sha256:cc", "linux/amd64", &ours).is_empty());
    }
}
