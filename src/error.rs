//! The error of a whole run: one variant per stage, each carrying its own help text, and
//! the process exit code it maps to.

use crate::build::BuildError;
use crate::config::ConfigError;
use crate::fsutil::FsError;
use crate::image::config::AssembleError;
use crate::image::layout::LayoutError;
use crate::plan::PlanError;
use crate::workspace::WorkspaceError;

/// Exit code for usage and configuration errors.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code for build failures (cargo, toolchain, non-static binaries).
pub const EXIT_BUILD: i32 = 3;
/// Exit code for registry failures (auth, network, refused pushes).
pub const EXIT_REGISTRY: i32 = 4;
/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code for failures writing outputs.
pub const EXIT_OUTPUT: i32 = 1;

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
    /// Kubernetes YAML and `resolve`.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] crate::kube::KubeError),
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
            return EXIT_INTERRUPTED;
        }
        match self {
            Error::Interrupted(_) => EXIT_INTERRUPTED,
            Error::Config(_) | Error::Workspace(_) | Error::Plan(_) => EXIT_CONFIG,
            Error::Build(_) => EXIT_BUILD,
            Error::Registry(_) => EXIT_REGISTRY,
            Error::Package(crate::image::package::PackageError::Assets(_)) => EXIT_CONFIG,
            Error::Layout(_) | Error::Assemble(_) | Error::Package(_) => EXIT_OUTPUT,
            Error::Sbom(crate::sbom::SbomError::Metadata { .. }) => EXIT_CONFIG,
            Error::Sbom(_) => EXIT_OUTPUT,
            Error::Kube(e) => e.exit_code(),
        }
    }
}
