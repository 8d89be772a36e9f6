//! Plan + built binaries → one CycloneDX SBOM per image and platform, written to
//! `target/containerize/<image>/sbom.<os>-<arch>.cdx.json`.
//!
//! Two steps, so cargo runs at a known point and only once per platform:
//! [`resolve_graphs`] runs `cargo metadata --filter-platform` for each platform of the
//! plan and reads `Cargo.lock` ([`resolve`]); [`write_sboms`] then only reads those values,
//! the binaries' bytes (for their sha256) and the base, and assembles the documents
//! ([`bom`]). Attaching them to the images (layout and registry) is the image and registry
//! stages' job: see `image::artifact` and `registry::referrers`.

pub mod auditable;
pub mod bom;
pub mod cyclonedx;
pub mod resolve;
pub mod source;
pub mod spdx;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::build::BuiltBinary;
use crate::canonical::JsonBlob;
use crate::config::SbomFormat;
use crate::fsutil::{self, FsError};
use crate::image::ImageSet;
use crate::image::artifact::{Artifact, CYCLONEDX_JSON, SPDX_JSON, attach};
use crate::image::cache::LayerCache;
use crate::image::config::AssembleError;
use crate::metacache::Answer;
use crate::plan::Plan;
use crate::platform::Platform;
use bom::{BaseInfo, BomInput};
use resolve::{CrateGraph, FeatureFlags, Linked};

/// Errors making SBOMs.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SbomError {
    /// The dependency list could not be added to a binary.
    #[error("could not add the dependency list to `{}`: {reason}", binary.display())]
    #[diagnostic(
        code(containerize::auditable),
        help(
            "the executable is not an ELF file this tool can rewrite; set auditable = false in [package.metadata.containerize] (or pass --auditable=false) and report the binary's `file` output"
        )
    )]
    Auditable {
        /// The executable.
        binary: PathBuf,
        /// What the ELF rewriter said.
        reason: String,
    },
    /// `cargo metadata --filter-platform` failed.
    #[error("`{command}` failed for {platform}:\n{stderr}")]
    #[diagnostic(
        code(containerize::sbom),
        help(
            "the SBOM needs the dependency graph for the platform; run the command above to see why it fails, or pass --sbom none"
        )
    )]
    Metadata {
        /// The platform.
        platform: Platform,
        /// The command line.
        command: String,
        /// cargo's error output.
        stderr: String,
    },
    /// `Cargo.lock` does not parse.
    #[error("failed to read the checksums in `{}`: {message}", path.display())]
    #[diagnostic(
        code(containerize::sbom),
        help("regenerate it with `cargo generate-lockfile`")
    )]
    Lockfile {
        /// Its path.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// The binary's package is missing from the platform's resolve.
    #[error("package `{package}` is not in the {platform} dependency graph")]
    #[diagnostic(
        code(containerize::sbom),
        help("this is a bug; --sbom none skips the SBOM")
    )]
    MissingPackage {
        /// The package.
        package: String,
        /// The platform.
        platform: Platform,
    },
    /// The document could not be assembled.
    #[error("failed to assemble the SBOM: {message}")]
    #[diagnostic(
        code(containerize::sbom),
        help("this is a bug; --sbom none skips the SBOM")
    )]
    Assemble {
        /// What failed.
        message: String,
    },
    /// Reading a binary or writing the file.
    #[error(transparent)]
    #[diagnostic(
        code(containerize::sbom),
        help("check that the directory is writable and the disk is not full")
    )]
    Fs(#[from] FsError),
}

impl SbomError {
    fn assemble(message: impl Into<String>) -> Self {
        SbomError::Assemble {
            message: message.into(),
        }
    }
}

/// One written SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// Image name.
    pub image: String,
    /// Platform.
    pub platform: Platform,
    /// Its format.
    pub format: SbomFormat,
    /// The file.
    pub path: PathBuf,
    /// Its bytes and digest.
    pub blob: JsonBlob,
}

/// The `artifactType` (and media type) of an SBOM format, and the format's name.
pub fn artifact_type(format: SbomFormat) -> (&'static str, &'static str) {
    match format {
        SbomFormat::CycloneDx => (CYCLONEDX_JSON, "CycloneDX"),
        SbomFormat::Spdx => (SPDX_JSON, "SPDX"),
    }
}

/// The artifact manifests that attach an image's SBOMs to its platform manifests
/// (SBOMs of other images are left out).
pub fn artifacts(set: &ImageSet, sboms: &[Sbom]) -> Result<Vec<Artifact>, AssembleError> {
    let docs = sboms.iter().map(|s| {
        (
            s.image.as_str(),
            s.platform,
            artifact_type(s.format).0,
            &s.blob,
        )
    });
    attach(set, docs, &Default::default())
}

/// The dependency graph of each platform, and whether its `cargo metadata` ran.
#[derive(Debug, Default)]
pub struct Graphs {
    /// Platform → its graph.
    pub by_platform: BTreeMap<Platform, CrateGraph>,
    /// Platform → whether cargo ran or the stored answer was used.
    pub answers: BTreeMap<Platform, Answer>,
    /// Platform → what its `cargo build` links (features unified over the build's
    /// packages), computed once for the SBOMs and the auditable binaries.
    pub linked: BTreeMap<Platform, Linked>,
}

/// One dependency graph per platform of the plan (empty with `--sbom none` and no
/// auditable binary): one
/// `cargo metadata` run each, unless its stored answer is still valid.
pub fn resolve_graphs(plan: &Plan) -> Result<Graphs, SbomError> {
    let mut out = Graphs::default();
    let auditable = plan.images.iter().any(|i| i.settings.auditable);
    if plan.outputs.sbom.is_empty() && !auditable && plan.audit.is_none() {
        return Ok(out);
    }
    // One `cargo metadata --filter-platform` per platform, run side by side.
    let graphs = std::thread::scope(|s| {
        let workers: Vec<_> = plan
            .builds
            .iter()
            .map(|build| {
                s.spawn(move || {
                    let graph = resolve::load_graph(
                        &plan.cargo,
                        plan.manifest_path.as_deref(),
                        build.platform,
                    );
                    graph.map(|(g, answer)| (build.platform, g, answer))
                })
            })
            .collect();
        workers.into_iter().map(crate::join).collect::<Vec<_>>()
    });
    for graph in graphs {
        let (platform, graph, answer) = graph?;
        out.by_platform.insert(platform, graph);
        out.answers.insert(platform, answer);
    }
    let flags = FeatureFlags::from_cargo(&plan.cargo);
    for build in &plan.builds {
        if let Some(graph) = out.by_platform.get(&build.platform) {
            // Features are unified over everything one `cargo build` compiles.
            let roots: Vec<&str> = build.packages.iter().map(String::as_str).collect();
            out.linked
                .insert(build.platform, graph.link(&roots, &flags));
        }
    }
    Ok(out)
}

/// Writes the SBOM of every built binary (nothing when `graphs` is empty).
pub fn write_sboms(
    plan: &Plan,
    built: &[BuiltBinary],
    graphs: &Graphs,
    flags: &FeatureFlags,
    base: &BaseInfo,
) -> Result<Vec<Sbom>, SbomError> {
    let mut out = Vec::new();
    let hashes = LayerCache::new(&plan.cache_dir);
    for build in &plan.builds {
        let (Some(graph), Some(linked)) = (
            graphs.by_platform.get(&build.platform),
            graphs.linked.get(&build.platform),
        ) else {
            continue;
        };
        for image in &plan.images {
            let planned = image
                .platforms
                .iter()
                .find(|p| p.platform == build.platform);
            let Some(planned) = planned.filter(|p| !p.sboms.is_empty()) else {
                continue;
            };
            let Some(binary) = built
                .iter()
                .find(|b| b.bin == image.bin && b.platform == build.platform)
            else {
                continue;
            };
            let package_id =
                graph
                    .package_id(&image.package)
                    .ok_or_else(|| SbomError::MissingPackage {
                        package: image.package.clone(),
                        platform: build.platform,
                    })?;
            // Remembered across runs by the file's identity, as the layer cache does.
            let sha = hashes.file_sha256(&binary.path)?;
            let sha512 = hashes.file_sha512(&binary.path)?;
            let inventory = bom::assemble_inventory(&BomInput {
                graph,
                linked,
                package_id,
                bin: &image.bin,
                binary_sha256: &sha,
                binary_sha512: &sha512,
                platform: build.platform,
                features: flags,
                epoch: plan.epoch,
                base,
            })
            .map_err(SbomError::assemble)?;
            fsutil::create_dir_all(&image.out_dir)?;
            for file in &planned.sboms {
                let blob = match file.format {
                    SbomFormat::CycloneDx => cyclonedx::to_json(&cyclonedx::render(&inventory))?,
                    SbomFormat::Spdx => spdx::to_json(&spdx::render(&inventory, &image.name))?,
                };
                fsutil::write_atomic(&file.path, &blob.bytes)?;
                out.push(Sbom {
                    image: image.name.clone(),
                    platform: build.platform,
                    format: file.format,
                    path: file.path.clone(),
                    blob,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.image, a.platform, a.format).cmp(&(&b.image, b.platform, b.format)));
    remove_stale(plan, &out)?;
    Ok(out)
}

/// Deletes SBOM files of earlier runs that this run did not write (another platform set,
/// `--sbom none`): a file next to an image must describe that image.
fn remove_stale(plan: &Plan, written: &[Sbom]) -> Result<(), SbomError> {
    let keep: Vec<&std::path::Path> = written.iter().map(|s| s.path.as_path()).collect();
    for image in &plan.images {
        fsutil::remove_stale(
            &image.out_dir,
            |name| {
                name.starts_with("sbom.")
                    && (name.ends_with(".cdx.json") || name.ends_with(".spdx.json"))
            },
            &keep,
        )?;
    }
    Ok(())
}
