//! The error of a whole run: one variant per stage, each carrying its own help text, and
//! the process exit code it maps to.

use crate::build::BuildError;
use crate::config::ConfigError;
use crate::exit;
use crate::fsutil::FsError;
use crate::image::config::AssembleError;
use crate::image::layout::LayoutError;
use crate::plan::PlanError;
use crate::workspace::WorkspaceError;

/// Any error of a run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Command line or environment.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// Reading the workspace.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Planning.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),
    /// Building.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Build(#[from] BuildError),
    /// Writing layers and layouts.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    /// Ctrl-C.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    /// Pushing and pulling.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Packaging layers.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Package(#[from] crate::image::package::PackageError),
    /// Assembling documents.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assemble(#[from] AssembleError),
    /// Making SBOMs.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    /// The vulnerability gate.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// Making attestations (provenance).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Attest(#[from] crate::attest::AttestError),
    /// `verify` found a difference.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Verify(#[from] crate::attest::check::VerifyFailed),
    /// Writing an output (another layout, an archive, a registry).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sink(#[from] crate::image::sink::SinkError),
    /// Kubernetes YAML and `resolve`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] crate::kube::KubeError),
    /// `compose.yaml`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compose(#[from] crate::compose::ComposeError),
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Self {
        Error::Layout(LayoutError::Fs(e))
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        if crate::interrupt::requested() {
            return exit::INTERRUPTED;
        }
        match self {
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Config(_) | Error::Workspace(_) | Error::Plan(_) => exit::CONFIG,
            Error::Build(_) => exit::BUILD,
            Error::Registry(_) => exit::REGISTRY,
            Error::Package(crate::image::package::PackageError::Assets(_)) => exit::CONFIG,
            Error::Layout(_) | Error::Assemble(_) | Error::Package(_) => exit::OUTPUT,
            Error::Sbom(crate::sbom::SbomError::Metadata { .. }) => exit::CONFIG,
            Error::Attest(crate::attest::AttestError::Key(_)) => exit::CONFIG,
            Error::Sbom(_) | Error::Attest(_) => exit::OUTPUT,
            Error::Verify(_) => exit::MISMATCH,
            Error::Audit(crate::audit::AuditError::Vulnerable { .. }) => exit::VULNERABLE,
            Error::Audit(
                crate::audit::AuditError::Fs(_) | crate::audit::AuditError::Assemble(_),
            ) => exit::OUTPUT,
            Error::Audit(_) => exit::CONFIG,
            Error::Kube(e) => e.exit_code(),
            Error::Compose(e) => e.exit_code(),
            Error::Sink(e) => e.exit_code(),
        }
    }
}
