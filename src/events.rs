//! The machine-readable event stream of `--message-format json`: one JSON object per line
//! on stdout, each with a `reason`. The wire format is documented message by message in
//! `docs/message-format.schema.json`, which the tests validate real runs against.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One planned image (the `plan` event).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedImage {
    /// Image name.
    pub name: String,
    /// Package.
    pub package: String,
    /// Binary target.
    pub bin: String,
    /// `linux/amd64`, ...
    pub platforms: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// `registry/path` when a repository is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `registry/path:tag` for every tag, when the run pushes (`--push`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push_refs: Vec<String>,
    /// `target/containerize/<image>/`: `image.json`, the SBOMs and `kubernetes.yaml`.
    pub out_dir: String,
}

/// An image pushed (the `image-pushed` event).
#[derive(Debug, Clone, Serialize)]
pub struct PushedEvent {
    /// Image name.
    pub name: String,
    /// `registry/path@sha256:…`.
    pub reference: String,
    /// `registry/path`.
    pub repository: String,
    /// Index or manifest digest.
    pub digest: String,
    /// Tags set.
    pub tags: Vec<String>,
    /// Blob bytes uploaded.
    pub uploaded_bytes: u64,
}

/// An image loaded into a local runtime (the `image-loaded` event).
#[derive(Debug, Clone, Serialize)]
pub struct LoadedEvent {
    /// Image name.
    pub name: String,
    /// `docker`, `podman` or `containerd`.
    pub runtime: String,
    /// The names it was loaded under.
    pub references: Vec<String>,
}

/// A file written next to an image (`sbom-written`, `kube-written`, `compose-written`).
#[derive(Debug, Clone, Serialize)]
pub struct FileEvent {
    /// Image name (absent for files covering the whole run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Platform, for per-platform files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The file.
    pub path: String,
}

/// One finding of the audit (the `audit-finding` event): per image, platform, advisory
/// and crate.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFinding {
    /// Image name.
    pub name: String,
    /// `linux/amd64`, ...
    pub platform: String,
    /// `RUSTSEC-YYYY-NNNN`, or `yanked`.
    pub advisory: String,
    /// CVE and GHSA ids of the advisory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `vulnerability`, `unmaintained`, `unsound`, `notice` or `yanked`.
    pub kind: String,
    /// The crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// Its version.
    pub version: String,
    /// The advisory's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `low` … `critical`, when the advisory has a CVSS score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The CVSS score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvss: Option<f64>,
    /// Versions that fix it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patched: Vec<String>,
    /// From the binary's package down to the crate (empty when it is not linked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// `vulnerable` and `denied` fail the run; `below-threshold`, `warning`, `ignored` and
    /// `not-in-image` do not.
    pub status: String,
    /// Why it is ignored or not in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
}

/// The end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// Whether the run succeeded.
    pub success: bool,
    /// The process exit code.
    pub exit_code: i32,
    /// Images produced.
    pub images: usize,
    /// The error, on failure (what the human output says, without the help text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Event {
    /// What will be built, before building.
    Plan {
        /// The images.
        images: Vec<PlannedImage>,
        /// The OCI layout every image goes to (`target/containerize/oci`).
        layout: String,
        /// Whether the images are pushed.
        push: bool,
    },
    /// An image is in the OCI layout.
    ImageBuilt(ImageSummary),
    /// An image is in the registry.
    ImagePushed(PushedEvent),
    /// An image is in a local container runtime.
    ImageLoaded(LoadedEvent),
    /// An SBOM was written.
    SbomWritten(FileEvent),
    /// An advisory (or a yanked version) matched a crate of an image's resolve.
    AuditFinding(AuditFinding),
    /// A vulnerabilities document (CycloneDX VEX) was written.
    VulnerabilitiesWritten(FileEvent),
    /// Kubernetes YAML was written.
    KubeWritten(FileEvent),
    /// `compose.yaml` was written.
    ComposeWritten(FileEvent),
    /// The run ended.
    Finished(Finished),
}

/// What a run produced, per image (also written as `<image>/image.json`, which
/// `merge --from` reads back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageSummary {
    /// Image name.
    pub name: String,
    /// Tags in the layout.
    pub tags: Vec<String>,
    /// Digest of the index (several platforms) or the manifest (one).
    pub digest: String,
    /// Media type of that document.
    pub media_type: String,
    /// `name:tag@digest`.
    pub reference: String,
    /// Per platform: `linux/amd64` → manifest digest and compressed size.
    pub platforms: Vec<PlatformSummary>,
    /// The push of [`Self::digest`], with `--push`. With `--per-platform` and several
    /// platforms the index is not pushed: each platform's push is in [`Self::platforms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<PushedSummary>,
    /// The names loaded into a local runtime, with `--load`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<String>,
    /// The OCI layout holding the image, relative to this summary's directory
    /// (`../oci`), so the file is the same wherever the workspace is.
    pub layout: PathBuf,
}

/// Where an image was pushed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushedSummary {
    /// `registry/path@sha256:…`.
    pub reference: String,
    /// `registry/path`.
    pub repository: String,
    /// Tags set in the registry.
    pub tags: Vec<String>,
    /// Blob bytes uploaded (0 when the registry had everything).
    pub uploaded_bytes: u64,
}

impl PushedSummary {
    /// The push by its first tag: `registry/path:tag`.
    pub fn tag_ref(&self) -> String {
        format!(
            "{}:{}",
            self.repository,
            self.tags.first().map_or("latest", String::as_str)
        )
    }
}

impl ImageSummary {
    /// The image by its first tag (`--tag-only`): the pushed repository's, else the
    /// local name's.
    pub fn tag_ref(&self) -> String {
        match &self.pushed {
            Some(p) => p.tag_ref(),
            None => format!(
                "{}:{}",
                self.name,
                self.tags.first().map_or("latest", String::as_str)
            ),
        }
    }

    /// The image by digest: the pushed reference, else the local one (what the
    /// Kubernetes YAML and `--image-refs` name; stdout lists loaded names instead).
    pub fn output_ref(&self) -> &str {
        self.pushed
            .as_ref()
            .map_or(&self.reference, |p| &p.reference)
    }

    /// What `--image-refs` and stdout list: the pushed reference (by digest, or with
    /// `tag_only` by its first tag); with `--per-platform` and several platforms, each
    /// platform's; else the local reference.
    pub fn refs(&self, tag_only: bool) -> Vec<String> {
        let platforms: Vec<&PushedSummary> = self
            .platforms
            .iter()
            .filter_map(|p| p.pushed.as_ref())
            .collect();
        match (&self.pushed, platforms.is_empty(), tag_only) {
            (None, false, true) => platforms.into_iter().map(PushedSummary::tag_ref).collect(),
            (None, false, false) => platforms.into_iter().map(|p| p.reference.clone()).collect(),
            (_, _, true) => vec![self.tag_ref()],
            (_, _, false) => vec![self.output_ref().to_string()],
        }
    }
}

/// One platform of an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformSummary {
    /// `linux/amd64`.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Config + layers, compressed.
    pub compressed_size: u64,
    /// With `--per-platform`: this platform's own push (its manifest under `TAG-ARCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<PushedSummary>,
}
