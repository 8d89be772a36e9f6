//! Packaged images + their attestations + a [`SigningIdentity`] → Sigstore bundles
//! (`application/vnd.dev.sigstore.bundle.v0.3+json`, the format cosign v3 writes), each an
//! OCI 1.1 artifact whose `subject` is what it signs, so cosign, the sigstore clients and
//! `cargo containerize verify` find them through the referrers API (or its tag fallback):
//!
//! - every platform manifest and the index get a signature: a DSSE envelope around an
//!   in-toto Statement with predicate type `https://sigstore.dev/cosign/sign/v1` whose
//!   subject is the manifest's digest (what `cosign sign --new-bundle-format` pushes);
//! - every attestation (SBOM, provenance) gets a DSSE envelope around an in-toto
//!   Statement whose subject is its platform manifest and whose predicate is the document
//!   (the provenance already is such a Statement; an SBOM becomes the predicate of one,
//!   typed `https://cyclonedx.org/bom` or `https://spdx.dev/Document`, as `cosign attest`
//!   types them).
//!
//! DSSE signs `PAE(payloadType, payload)`
//! (<https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>). Signatures are
//! RFC 6979 (deterministic), so the bundles, like everything else, are the same bytes on
//! every run. A bundle carries only the key's hint, no certificate and no transparency-log
//! entry: it is verified with the public key (`verify --key`, `cosign verify --key`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_spec::image::MediaType;
use serde::{Deserialize, Serialize};

use super::key::{KeyPair, SigningIdentity};
use super::provenance::STATEMENT_TYPE;
use crate::canonical::{JsonBlob, to_canonical_json};
use crate::image::ImageSet;
use crate::image::artifact::{
    Artifact, BUNDLE_PREDICATE_TYPE, CYCLONEDX_JSON, CYCLONEDX_PREDICATE, IN_TOTO_JSON,
    SIGSTORE_BUNDLE, SPDX_JSON, SPDX_PREDICATE, Subject, assemble_artifact,
};
use crate::image::config::AssembleError;

/// The predicate type of a signature over an image (cosign's).
pub const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
/// Artifact-manifest annotation: what the bundle holds (`dsse-envelope`).
pub const BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";

/// A Sigstore bundle v0.3 with a DSSE envelope and a public-key hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// [`SIGSTORE_BUNDLE`].
    pub media_type: String,
    /// How to verify: the key hint, no log entries.
    pub verification_material: VerificationMaterial,
    /// The signed statement.
    pub dsse_envelope: Envelope,
}

/// A bundle's verification material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// Which key signed.
    pub public_key: PublicKeyHint,
    /// Transparency-log entries: none (a key, no Rekor).
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

/// A public key named by its hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyHint {
    /// base64 of the SHA-256 of the key's DER.
    pub hint: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// base64 of the payload.
    pub payload: String,
    /// [`IN_TOTO_JSON`].
    pub payload_type: String,
    /// One signature.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// base64 of the DER signature over the PAE.
    pub sig: String,
    /// Left empty, as cosign leaves it: the bundle's hint names the key.
    #[serde(default)]
    pub keyid: String,
}

/// An in-toto Statement v1 with any predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnyStatement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What it is about.
    pub subject: Vec<SubjectDigest>,
    /// The predicate's type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

impl AnyStatement {
    /// Whether one of its subjects is `digest` (`sha256:<hex>`).
    pub fn names(&self, digest: &str) -> bool {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.subject
            .iter()
            .any(|s| s.digest.get(algorithm).is_some_and(|h| h == hex))
    }
}

/// A Statement subject, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDigest {
    /// The name.
    #[serde(default)]
    pub name: String,
    /// Algorithm → hex.
    pub digest: BTreeMap<String, String>,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A bundle signing `payload` (an in-toto Statement) with `key`.
pub fn seal(key: &KeyPair, payload: &[u8]) -> Bundle {
    let sig = key.sign(&pae(IN_TOTO_JSON, payload));
    Bundle {
        media_type: SIGSTORE_BUNDLE.to_string(),
        verification_material: VerificationMaterial {
            public_key: PublicKeyHint {
                hint: key.hint.clone(),
            },
            tlog_entries: Vec::new(),
        },
        dsse_envelope: Envelope {
            payload: STANDARD.encode(payload),
            payload_type: IN_TOTO_JSON.to_string(),
            signatures: vec![EnvelopeSignature {
                sig: STANDARD.encode(sig),
                keyid: String::new(),
            }],
        },
    }
}

/// The Statement `{subject: name@digest, predicateType, predicate}`'s canonical bytes.
fn statement(
    name: &str,
    digest: &str,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> Result<JsonBlob, serde_json::Error> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    to_canonical_json(&AnyStatement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: vec![SubjectDigest {
            name: name.to_string(),
            digest: [(algorithm.to_string(), hex.to_string())].into(),
        }],
        predicate_type: predicate_type.to_string(),
        predicate,
    })
}

/// The predicate type an attestation is signed under, and the Statement to sign: the
/// provenance as it is, an SBOM as the predicate of a new Statement about `subject`.
fn attestation_statement(
    name: &str,
    artifact: &Artifact,
) -> Result<Option<(String, JsonBlob)>, serde_json::Error> {
    // The audit's vulnerabilities document changes with the advisory database, not
    // with the image: it is attached, not signed.
    if artifact.is_vulnerabilities() {
        return Ok(None);
    }
    let predicate_type = match artifact.artifact_type.as_str() {
        IN_TOTO_JSON => {
            let s: AnyStatement = serde_json::from_slice(&artifact.layer.bytes)?;
            return Ok(Some((s.predicate_type, artifact.layer.clone())));
        }
        CYCLONEDX_JSON => CYCLONEDX_PREDICATE,
        SPDX_JSON => SPDX_PREDICATE,
        _ => return Ok(None),
    };
    let predicate = serde_json::from_slice(&artifact.layer.bytes)?;
    let blob = statement(name, &artifact.subject, predicate_type, predicate)?;
    Ok(Some((predicate_type.to_string(), blob)))
}

/// Which documents of an image set get a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// Each platform manifest (and its attestations).
    pub manifests: bool,
    /// The index, if there is one.
    pub index: bool,
}

/// The bundles that sign `set` (what `which` says) and `attestations` (its SBOM and
/// provenance artifacts, with the manifests), as artifacts; `name` is the Statement
/// subjects' name (where the image is pushed).
pub fn sign_image(
    set: &ImageSet,
    attestations: &[Artifact],
    identity: &SigningIdentity,
    name: &str,
    which: Signed,
) -> Result<Vec<Artifact>, AssembleError> {
    let SigningIdentity::Key(key) = identity;
    let err = |e: &dyn std::fmt::Display| AssembleError::new("signature bundle", &set.name, e);
    let mut subjects: Vec<Subject> = match which.manifests {
        true => set.images.iter().map(Subject::of_image).collect(),
        false => Vec::new(),
    };
    if let (true, Some(blob)) = (which.index, &set.index) {
        subjects.push(Subject::new(MediaType::ImageIndex, blob));
    }
    let mut out = Vec::new();
    let mut push = |subject: &Subject, predicate_type: &str, payload: &JsonBlob| {
        let bundle = to_canonical_json(&seal(key, &payload.bytes)).map_err(|e| err(&e))?;
        let annotations = BTreeMap::from([
            (BUNDLE_CONTENT.to_string(), "dsse-envelope".to_string()),
            (
                BUNDLE_PREDICATE_TYPE.to_string(),
                predicate_type.to_string(),
            ),
        ]);
        out.push(assemble_artifact(
            &set.name,
            subject,
            SIGSTORE_BUNDLE,
            &bundle,
            annotations,
        )?);
        Ok::<(), AssembleError>(())
    };
    for subject in &subjects {
        let payload = statement(
            name,
            &subject.digest,
            COSIGN_SIGN,
            serde_json::Value::Object(Default::default()),
        )
        .map_err(|e| err(&e))?;
        push(subject, COSIGN_SIGN, &payload)?;
    }
    for artifact in attestations.iter().filter(|a| a.image == set.name) {
        let Some(subject) = subjects.iter().find(|s| s.digest == artifact.subject) else {
            continue;
        };
        if let Some((predicate_type, payload)) =
            attestation_statement(name, artifact).map_err(|e| err(&e))?
        {
            push(subject, &predicate_type, &payload)?;
        }
    }
    Ok(out)
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle this tool reads.
    #[error("not a Sigstore bundle v0.3 with a DSSE envelope: {0}")]
    Malformed(String),
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the given public key")]
    BadSignature,
    /// Signed, but about something else.
    #[error("it signs {found}, not {expected}")]
    OtherSubject {
        /// The digest expected.
        expected: String,
        /// The digests the statement names.
        found: String,
    },
}

/// Checks `bundle` with `public` (a PEM public key) and that its Statement is about
/// `subject`; returns the Statement.
pub fn open(bundle: &[u8], public: &str, subject: &str) -> Result<AnyStatement, BundleError> {
    use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier as _};
    use p256::pkcs8::DecodePublicKey as _;
    let malformed = |e: &dyn std::fmt::Display| BundleError::Malformed(e.to_string());
    let bundle: Bundle = serde_json::from_slice(bundle).map_err(|e| malformed(&e))?;
    if bundle.media_type != SIGSTORE_BUNDLE {
        return Err(malformed(&format!("media type {}", bundle.media_type)));
    }
    let env = &bundle.dsse_envelope;
    let payload = STANDARD.decode(&env.payload).map_err(|e| malformed(&e))?;
    let key = VerifyingKey::from_public_key_pem(public).map_err(|e| malformed(&e))?;
    let message = pae(&env.payload_type, &payload);
    let verified = env.signatures.iter().any(|s| {
        STANDARD
            .decode(&s.sig)
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .is_some_and(|sig| key.verify(&message, &sig).is_ok())
    });
    if !verified {
        return Err(BundleError::BadSignature);
    }
    let statement: AnyStatement = serde_json::from_slice(&payload).map_err(|e| malformed(&e))?;
    if !statement.names(subject) {
        return Err(BundleError::OtherSubject {
            expected: subject.to_string(),
            found: statement
                .subject
                .iter()
                .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn sealed_bundles_open_with_their_key_and_subject_only() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("k.pem");
        std::fs::write(&pem, super::super::key::TEST_KEY).unwrap();
        let SigningIdentity::Key(key) = super::super::key::load_key(&pem, None).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let payload = statement("r/x", &digest, COSIGN_SIGN, serde_json::json!({})).unwrap();
        let bundle = to_canonical_json(&seal(&key, &payload.bytes)).unwrap();
        let s = open(&bundle.bytes, &key.public_pem, &digest).unwrap();
        assert_eq!(s.predicate_type, COSIGN_SIGN);
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(matches!(
            open(&bundle.bytes, &key.public_pem, &other),
            Err(BundleError::OtherSubject { .. })
        ));
        // A payload changed by one byte no longer verifies.
        let mut b: Bundle = serde_json::from_slice(&bundle.bytes).unwrap();
        let mut p = STANDARD.decode(&b.dsse_envelope.payload).unwrap();
        p[10] ^= 1;
        b.dsse_envelope.payload = STANDARD.encode(p);
        let tampered = serde_json::to_vec(&b).unwrap();
        assert_eq!(
            open(&tampered, &key.public_pem, &digest).unwrap_err(),
            BundleError::BadSignature
        );
    }
}
