//! The machine-readable event stream of `--message-format json`: one JSON object per line
//! on stdout, each with a `reason`. The wire format is documented message by message in
//! `docs/message-format.schema.json`, which the tests validate real runs against.

use serde::Serialize;

use crate::pipeline::ImageSummary;

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

/// A file written next to an image (`sbom-written`, `kube-written`).
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
    },
    /// An image is in the OCI layout.
    ImageBuilt(ImageSummary),
    /// An image is in the registry.
    ImagePushed(PushedEvent),
    /// An SBOM was written.
    SbomWritten(FileEvent),
    /// Kubernetes YAML was written.
    KubeWritten(FileEvent),
    /// The run ended.
    Finished(Finished),
}
