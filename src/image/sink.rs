//! Where finished images go. The run's OCI layout (`target/containerize/oci`) holds every
//! blob; each other output reads from it through one interface, [`Sink`]: another OCI
//! layout and an OCI archive here, a registry in `registry::sink`, and the same way any
//! new output (a local container runtime, say). As ko's `publish.Interface` and its tee
//! (`pkg/publish/multi.go`): the pipeline runs the sinks the plan lists, in order.

use std::fmt;
use std::path::PathBuf;

use crate::events::{LoadedEvent, PushedEvent};
use crate::exit;
use crate::image::ImageSet;
use crate::image::archive::{DockerEntry, docker_entry, pick_platform};
use crate::image::artifact::Artifact;
use crate::image::layout::{Layout, write_archive};
use crate::output::Shell;
use crate::plan::ImagePlan;
use crate::platform::Platform;

/// One finished image as the sinks see it: its plan, its documents, and the artifacts
/// (SBOMs) that refer to its platform manifests.
#[derive(Debug, Clone, Copy)]
pub struct Packaged<'a> {
    /// What was planned for it (repository, tags, output directory).
    pub plan: &'a ImagePlan,
    /// Its manifests, configs and index.
    pub set: &'a ImageSet,
    /// Artifacts whose subject is one of its manifests.
    pub artifacts: &'a [Artifact],
}

/// An image delivered somewhere it can be pulled or run from by reference: what its
/// event says.
#[derive(Debug, Clone)]
pub enum Delivered {
    /// In a registry.
    Pushed(PushedEvent),
    /// In a local container runtime.
    Loaded(LoadedEvent),
}

impl Delivered {
    /// The image's name.
    pub fn image(&self) -> &str {
        match self {
            Delivered::Pushed(e) => &e.name,
            Delivered::Loaded(e) => &e.name,
        }
    }
}

/// An output of a run.
pub trait Sink {
    /// Writes `images` (whose blobs are all in `source`); returns what it delivered by
    /// reference, if anything.
    fn write(
        &self,
        source: &Layout,
        images: &[Packaged<'_>],
        shell: &mut Shell,
    ) -> Result<Vec<Delivered>, SinkError>;
}

/// A sink's failure: its own error (with its help text) and the exit code it maps to.
pub struct SinkError {
    error: Box<dyn miette::Diagnostic + Send + Sync>,
    exit_code: i32,
}

impl SinkError {
    /// Wraps a sink's error with the exit code it means.
    pub fn new(error: impl miette::Diagnostic + Send + Sync + 'static, exit_code: i32) -> Self {
        SinkError {
            error: Box::new(error),
            exit_code,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }
}

impl fmt::Debug for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl miette::Diagnostic for SinkError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.error.code()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.error.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.error.url()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.error.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.error.diagnostic_source()
    }
}

impl From<crate::image::layout::LayoutError> for SinkError {
    fn from(e: crate::image::layout::LayoutError) -> Self {
        SinkError::new(e, exit::OUTPUT)
    }
}

fn sets<'a>(images: &[Packaged<'a>]) -> Vec<ImageSet> {
    images.iter().map(|p| p.set.clone()).collect()
}

fn artifacts(images: &[Packaged<'_>]) -> Vec<Artifact> {
    images
        .iter()
        .flat_map(|p| p.artifacts.iter().cloned())
        .collect()
}

/// `--oci-layout-path`: a second OCI layout with the same images and artifacts.
#[derive(Debug, Clone)]
pub struct LayoutSink(pub PathBuf);

impl Sink for LayoutSink {
    fn write(
        &self,
        source: &Layout,
        images: &[Packaged<'_>],
        shell: &mut Shell,
    ) -> Result<Vec<Delivered>, SinkError> {
        shell.status("Writing", format!("OCI layout {}", self.0.display()));
        let (sets, artifacts) = (sets(images), artifacts(images));
        let extra = Layout::open(&self.0)?;
        extra.copy_blobs_from(source, &sets)?;
        extra.put_documents(&sets)?;
        extra.put_artifacts(&artifacts)?;
        extra.write_index_with(&sets, &artifacts)?;
        Ok(Vec::new())
    }
}

/// `--tarball`: the images as one OCI archive that `docker load` and `podman load` also
/// take: docker's `manifest.json` names each image's `platform` manifest `<image>:<tag>`
/// for every tag.
#[derive(Debug, Clone)]
pub struct TarballSink {
    /// The archive.
    pub path: PathBuf,
    /// The platform `manifest.json` describes (the host's).
    pub platform: Option<Platform>,
}

/// `<image>:<tag>` for every tag of `set`.
pub fn local_names(set: &ImageSet) -> Vec<String> {
    set.tags
        .iter()
        .map(|t| format!("{}:{t}", set.name))
        .collect()
}

impl Sink for TarballSink {
    fn write(
        &self,
        source: &Layout,
        images: &[Packaged<'_>],
        shell: &mut Shell,
    ) -> Result<Vec<Delivered>, SinkError> {
        shell.status("Writing", format!("OCI archive {}", self.path.display()));
        let docker: Vec<DockerEntry> = images
            .iter()
            .map(|p| docker_entry(pick_platform(p.set, self.platform), local_names(p.set)))
            .collect();
        write_archive(source, &sets(images), &docker, &self.path)?;
        Ok(Vec::new())
    }
}
