//! `cargo containerize`: Cargo workspace → static musl binaries → distroless OCI images.
//!
//! The data flows through one stage per module, in this order (see [`pipeline`]):
//!
//! ```text
//! cli::Args ──config──▶ Settings ──workspace──▶ Workspace ──plan──▶ Plan
//!    ──build──▶ BuiltBinary ──image::layer──▶ LayerBlob ──image──▶ Image / Index
//!    ──image::layout──▶ OCI layout (+ tarball) ──output──▶ refs on stdout
//! ```
//!
//! Each stage takes plain values and returns plain values: `workspace` and `plan` never
//! build, `build` knows nothing about OCI, and `image` never touches the network.
//! Only [`output`] prints.
#![deny(missing_docs)]

pub mod build;
pub mod canonical;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod exit;
pub mod fsutil;
pub mod git;
pub mod image;
pub mod interrupt;
pub mod kube;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod registry;
pub mod sbom;
pub mod workspace;

/// The tool's version, recorded in the built-in base layer and in layer cache keys.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The tool's name as users type it.
pub const TOOL_NAME: &str = "cargo-containerize";

/// Waits for a scoped helper thread (side-by-side subprocesses, parallel work) and passes
/// a panic on as if it had happened on the caller's thread.
pub(crate) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
