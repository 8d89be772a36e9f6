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

/// An artifact attached to one platform manifest.
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
}

impl Artifact {
    /// Every blob besides the manifest: the empty config and the layer.
    pub fn blobs(&self) -> [JsonBlob; 2] {
        [empty_config(), self.layer.clone()]
    }

    /// The tag-like name used for it in a layout's `index.json`:
    /// `<image>:sha256-<subject hex>.<kind>`, the kind being `sbom` (CycloneDX), `spdx`
    /// or `provenance` (in-toto).
    pub fn ref_name(&self) -> String {
        let kind = match self.artifact_type.as_str() {
            SPDX_JSON => "spdx",
            IN_TOTO_JSON => "provenance",
            _ => "sbom",
        };
        format!("{}:{}.{kind}", self.image, self.subject.replace(':', "-"))
    }

    /// What it is, for status lines: `SBOM (CycloneDX)`, `SBOM (SPDX)`, `provenance`.
    pub fn describe(&self) -> &'static str {
        match self.artifact_type.as_str() {
            SPDX_JSON => "SBOM (SPDX)",
            IN_TOTO_JSON => "provenance",
            _ => "SBOM (CycloneDX)",
        }
    }
}

/// The artifact manifests that attach documents `(image, platform, artifact type, bytes)`
/// to the platform manifests of `set` (documents of other images are left out).
pub fn attach<'a>(
    set: &ImageSet,
    docs: impl Iterator<Item = (&'a str, Platform, &'a str, &'a JsonBlob)>,
) -> Result<Vec<Artifact>, AssembleError> {
    let mut out = Vec::new();
    for (image, platform, artifact_type, blob) in docs.filter(|d| d.0 == set.name) {
        if let Some(subject) = set.images.iter().find(|i| i.platform == platform) {
            out.push(assemble_artifact(image, subject, artifact_type, blob)?);
        }
    }
    Ok(out)
}

/// Wraps `document` (of `artifact_type`) into an artifact manifest about `subject`.
pub fn assemble_artifact(
    image: &str,
    subject: &Image,
    artifact_type: &str,
    document: &JsonBlob,
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
            MediaType::ImageManifest,
            &subject.manifest.digest,
            subject.manifest.size(),
        )?)
        .build()
        .map_err(|e| err(&e))?;
    Ok(Artifact {
        image: image.to_string(),
        artifact_type: artifact_type.to_string(),
        subject: subject.manifest.digest.clone(),
        manifest: to_canonical_json(&manifest).map_err(|e| err(&e))?,
        layer: document.clone(),
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
        let a = assemble_artifact("app", &image, CYCLONEDX_JSON, &doc).unwrap();
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
