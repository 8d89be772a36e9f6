//! A document about an image (the SBOM) → an OCI 1.1 artifact manifest whose `subject` is
//! the image's platform manifest: `artifactType` set, the empty config
//! (`application/vnd.oci.empty.v1+json`, the 2-byte `{}`), one layer holding the document.
//! This is what the referrers API (and its `sha256-<hex>` tag fallback) lists, so oras,
//! cosign and scanners find the SBOM from the image digest. See
//! <https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage>.

use oci_spec::image::{ImageManifestBuilder, MediaType};
use sha2::{Digest, Sha256};

use crate::canonical::{JsonBlob, sha256_digest, to_canonical_json};
use crate::image::config::AssembleError;
use crate::image::manifest::descriptor;
use crate::image::{Image, ImageSet};
use crate::platform::Platform;

/// Media type (and `artifactType`) of a CycloneDX JSON document.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// Media type (and `artifactType`) of an SPDX JSON document.
pub const SPDX_JSON: &str = "application/spdx+json";
/// Media type (and `artifactType`) of an in-toto Statement (unsigned; a signed one would
/// be a DSSE envelope around the same bytes).
pub const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";

/// The empty config blob `{}`.
pub fn empty_config() -> JsonBlob {
    let bytes = b"{}".to_vec();
    let digest = sha256_digest(Sha256::digest(&bytes));
    JsonBlob { bytes, digest }
}

/// Media type (and `artifactType`) of a Sigstore bundle (signature or signed attestation).
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The manifest annotation naming the predicate type inside a bundle (what its ref name
/// and status line say it signs).
pub const BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// The predicate type of a CycloneDX SBOM attestation (cosign's `--type cyclonedx`).
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";
/// The predicate type of an SPDX SBOM attestation (cosign's `--type spdxjson`).
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// The predicate type of SLSA provenance v1.
pub const SLSA_PREDICATE: &str = "https://slsa.dev/provenance/v1";

/// The artifact manifest annotation that tells CycloneDX documents apart: a
/// vulnerabilities document (the audit's VEX) carries it, an SBOM does not.
pub const CONTENT_ANNOTATION: &str = "dev.cargo-containerize.content";
/// [`CONTENT_ANNOTATION`]'s value on a vulnerabilities document.
pub const VULNERABILITIES_CONTENT: &str = "vulnerabilities";

/// Whether an artifact manifest with these annotations is the audit's vulnerabilities
/// document rather than an SBOM.
pub fn is_vulnerabilities(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    annotations.get(CONTENT_ANNOTATION).map(String::as_str) == Some(VULNERABILITIES_CONTENT)
}

/// The annotations that mark the audit's vulnerabilities document.
pub fn vulnerabilities_annotations() -> std::collections::BTreeMap<String, String> {
    [(
        CONTENT_ANNOTATION.to_string(),
        VULNERABILITIES_CONTENT.to_string(),
    )]
    .into()
}

/// What an artifact is about: a platform manifest or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its media type.
    pub media_type: MediaType,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

impl Subject {
    /// The document `blob` of `media_type`.
    pub fn new(media_type: MediaType, blob: &JsonBlob) -> Self {
        Subject {
            media_type,
            digest: blob.digest.clone(),
            size: blob.size(),
        }
    }

    /// A platform image's manifest.
    pub fn of_image(image: &Image) -> Self {
        Subject::new(MediaType::ImageManifest, &image.manifest)
    }
}

/// An artifact attached to one platform manifest (or, for a signature, an index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The image name it belongs to.
    pub image: String,
    /// `artifactType`.
    pub artifact_type: String,
    /// The subject manifest's digest.
    pub subject: String,
    /// The artifact manifest.
    pub manifest: JsonBlob,
    /// The document (its only layer).
    pub layer: JsonBlob,
    /// The artifact manifest's annotations (also in its referrers-index entry).
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Artifact {
    /// Every blob besides the manifest: the empty config and the layer.
    pub fn blobs(&self) -> [JsonBlob; 2] {
        [empty_config(), self.layer.clone()]
    }

    /// The tag-like name used for it in a layout's `index.json`:
    /// `<image>:sha256-<subject hex>.<kind>`, the kind being `sbom` (CycloneDX), `spdx`,
    /// `provenance` (in-toto) or `vulnerabilities` (the audit's CycloneDX VEX), and for bundles `sig` (the signature) or `<kind>.sig`
    /// (a signed attestation).
    pub fn ref_name(&self) -> String {
        if self.is_vulnerabilities() {
            return format!("{}.vulnerabilities", self.plain_ref());
        }
        let kind = match self.artifact_type.as_str() {
            SPDX_JSON => "spdx",
            IN_TOTO_JSON => "provenance",
            SIGSTORE_BUNDLE => match self.signed_kind() {
                Some(kind) => return format!("{}.{kind}.sig", self.plain_ref()),
                None => "sig",
            },
            _ => "sbom",
        };
        format!("{}.{kind}", self.plain_ref())
    }

    /// Whether this is the audit's vulnerabilities document (not an SBOM).
    pub fn is_vulnerabilities(&self) -> bool {
        is_vulnerabilities(&self.annotations)
    }

    fn plain_ref(&self) -> String {
        format!("{}:{}", self.image, self.subject.replace(':', "-"))
    }

    /// For a bundle over an attestation, the attestation's kind (`sbom`, `spdx`,
    /// `provenance`); `None` for a signature or any other artifact.
    fn signed_kind(&self) -> Option<&'static str> {
        let predicate = self.annotations.get(BUNDLE_PREDICATE_TYPE)?;
        match predicate.as_str() {
            CYCLONEDX_PREDICATE => Some("sbom"),
            SPDX_PREDICATE => Some("spdx"),
            SLSA_PREDICATE => Some("provenance"),
            _ => None,
        }
    }

    /// What it is, for status lines: `SBOM (CycloneDX)`, `SBOM (SPDX)`, `provenance`,
    /// `signature`, `signed SBOM (CycloneDX)`….
    pub fn describe(&self) -> &'static str {
        if self.is_vulnerabilities() {
            return "vulnerabilities (CycloneDX)";
        }
        match (self.artifact_type.as_str(), self.signed_kind()) {
            (SPDX_JSON, _) => "SBOM (SPDX)",
            (IN_TOTO_JSON, _) => "provenance",
            (SIGSTORE_BUNDLE, Some("sbom")) => "signed SBOM (CycloneDX)",
            (SIGSTORE_BUNDLE, Some("spdx")) => "signed SBOM (SPDX)",
            (SIGSTORE_BUNDLE, Some(_)) => "signed provenance",
            (SIGSTORE_BUNDLE, None) => "signature",
            _ => "SBOM (CycloneDX)",
        }
    }
}

/// The artifact manifests that attach documents `(image, platform, artifact type, bytes)`
/// to the platform manifests of `set` (documents of other images are left out), each
/// manifest carrying `annotations`.
pub fn attach<'a>(
    set: &ImageSet,
    docs: impl Iterator<Item = (&'a str, Platform, &'a str, &'a JsonBlob)>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Artifact>, AssembleError> {
    let mut out = Vec::new();
    for (image, platform, artifact_type, blob) in docs.filter(|d| d.0 == set.name) {
        if let Some(subject) = set.images.iter().find(|i| i.platform == platform) {
            out.push(assemble_artifact(
                image,
                &Subject::of_image(subject),
                artifact_type,
                blob,
                annotations.clone(),
            )?);
        }
    }
    Ok(out)
}

/// Wraps `document` (of `artifact_type`) into an artifact manifest about `subject`.
pub fn assemble_artifact(
    image: &str,
    subject: &Subject,
    artifact_type: &str,
    document: &JsonBlob,
    annotations: std::collections::BTreeMap<String, String>,
) -> Result<Artifact, AssembleError> {
    let err = |e: &dyn std::fmt::Display| AssembleError::new("artifact manifest", image, e);
    let kind = MediaType::Other(artifact_type.to_string());
    let config = empty_config();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(kind.clone())
        .config(descriptor(
            MediaType::EmptyJSON,
            &config.digest,
            config.size(),
        )?)
        .layers(vec![descriptor(kind, &document.digest, document.size())?])
        .subject(descriptor(
            subject.media_type.clone(),
            &subject.digest,
            subject.size,
        )?);
    let manifest = if annotations.is_empty() {
        manifest
    } else {
        manifest.annotations(
            annotations
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
    };
    let manifest = manifest.build().map_err(|e| err(&e))?;
    Ok(Artifact {
        image: image.to_string(),
        artifact_type: artifact_type.to_string(),
        subject: subject.digest.clone(),
        manifest: to_canonical_json(&manifest).map_err(|e| err(&e))?,
        layer: document.clone(),
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn blob(s: &str) -> JsonBlob {
        JsonBlob {
            bytes: s.as_bytes().to_vec(),
            digest: crate::canonical::sha256_digest(Sha256::digest(s.as_bytes())),
        }
    }

    #[test]
    fn artifact_manifest_has_empty_config_subject_and_type() {
        assert_eq!(
            empty_config().digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let image = Image {
            platform: Platform::LinuxAmd64,
            config: blob("{\"c\":1}"),
            manifest: blob("{\"m\":1}"),
            layers: Vec::new(),
        };
        let doc = blob("{\"bomFormat\":\"CycloneDX\"}");
        let a = assemble_artifact(
            "app",
            &Subject::of_image(&image),
            CYCLONEDX_JSON,
            &doc,
            Default::default(),
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(m["artifactType"], CYCLONEDX_JSON);
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(m["config"]["size"], 2);
        assert_eq!(m["layers"][0]["mediaType"], CYCLONEDX_JSON);
        assert_eq!(m["layers"][0]["digest"], doc.digest.as_str());
        assert_eq!(m["subject"]["digest"], image.manifest.digest.as_str());
        assert_eq!(
            m["subject"]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert!(a.ref_name().starts_with("app:sha256-"));
        assert!(a.ref_name().ends_with(".sbom"));
    }
}
