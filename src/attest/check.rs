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
use crate::image::artifact::{CYCLONEDX_JSON, IN_TOTO_JSON, SIGSTORE_BUNDLE, SPDX_JSON};
use crate::registry::inspect::RemoteImage;

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
