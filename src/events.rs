//! The machine-readable event stream of `--message-format json`: one JSON object per line
//! on stdout, each with a `reason`. The wire format is documented message by message in
//! `docs/message-format.schema.json`, which the tests validate real runs against.

use serde::Serialize;

use crate::pipeline::ImageSummary;
use crate::plan::{ImagePlan, Plan};

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

impl PlannedImage {
    /// The event form of a planned image; `push` says whether the run pushes it.
    pub fn new(image: &ImagePlan, push: bool) -> Self {
        let push_refs = match (&image.repository, push) {
            (Some(repo), true) => image.tags.iter().map(|t| format!("{repo}:{t}")).collect(),
            _ => Vec::new(),
        };
        PlannedImage {
            name: image.name.clone(),
            package: image.package.clone(),
            bin: image.bin.clone(),
            platforms: image
                .settings
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect(),
            tags: image.tags.clone(),
            repository: image.repository.as_ref().map(ToString::to_string),
            push_refs,
            out_dir: image.out_dir.display().to_string(),
        }
    }
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
        /// The OCI layout every image goes to (`target/containerize/oci`).
        layout: String,
        /// Whether the images are pushed.
        push: bool,
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

impl Event {
    /// The `plan` event of a plan; `push` is `--push`.
    pub fn plan(plan: &Plan, push: bool) -> Event {
        Event::Plan {
            images: plan
                .images
                .iter()
                .map(|i| PlannedImage::new(i, push))
                .collect(),
            layout: plan.layout_dir.display().to_string(),
            push,
        }
    }
}
