//! The files a run leaves next to its images (SBOMs, provenance, the OCI layout,
//! `image.json`, `--image-refs`, Kubernetes YAML, compose.yaml) and the summaries and
//! status lines they are made from.

use std::path::PathBuf;

use super::{ImageResult, Summarized};
use crate::attest;
use crate::build;
use crate::canonical::to_canonical_json;
use crate::config::SbomFormat;
use crate::error::Error;
use crate::events::{Event, FileEvent, ImageSummary, PlatformSummary, PushedSummary};
use crate::fsutil;
use crate::image::ImageSet;
use crate::image::artifact::Artifact;
use crate::image::config::AssembleError;
use crate::image::layout::Layout;
use crate::image::sink::Delivered;
use crate::output::{Shell, count, human_size};
use crate::plan::Plan;
use crate::sbom;
use crate::sbom::bom::BaseInfo;
use crate::sbom::resolve::FeatureFlags;

/// The SBOM of every image and platform the plan gives one, with their events.
pub(super) fn write_sboms(
    plan: &Plan,
    built: &[build::BuiltBinary],
    graphs: &sbom::Graphs,
    base: &BaseInfo,
    shell: &mut Shell,
) -> Result<Vec<sbom::Sbom>, Error> {
    let flags = FeatureFlags::from_cargo(&plan.cargo);
    let sboms = sbom::write_sboms(plan, built, graphs, &flags, base)?;
    if !sboms.is_empty() {
        let formats: Vec<&str> = plan
            .outputs
            .sbom
            .iter()
            .map(|f| match f {
                SbomFormat::CycloneDx => "CycloneDX 1.6",
                SbomFormat::Spdx => "SPDX 2.3",
            })
            .collect();
        shell.status(
            "Writing",
            format!(
                "{}, {}",
                count(sboms.len(), "SBOM", "SBOMs"),
                formats.join(" and ")
            ),
        );
    }
    for sbom in &sboms {
        let event = FileEvent {
            name: Some(sbom.image.clone()),
            platform: Some(sbom.platform.to_string()),
            path: sbom.path.display().to_string(),
        };
        shell.emit(&Event::SbomWritten(event));
    }
    Ok(sboms)
}

/// The provenance of every image and platform the plan gives one.
pub(super) fn write_provenance(
    plan: &Plan,
    sets: &[&ImageSet],
    rustc: Option<&build::RustcVersion>,
    base: &BaseInfo,
    shell: &mut Shell,
) -> Result<Vec<attest::Attestation>, Error> {
    let built = attest::Built { rustc, base };
    let attestations = attest::write_provenance(plan, sets, built)?;
    if !attestations.is_empty() {
        shell.status(
            "Writing",
            format!(
                "{} provenance statement(s), SLSA v1 (builder {})",
                attestations.len(),
                plan.provenance.builder_id
            ),
        );
    }
    Ok(attestations)
}

/// The run's OCI layout: documents, artifacts, then index.json last; unreferenced blobs
/// of earlier runs are collected.
pub(super) fn write_layout(
    plan: &Plan,
    layout: &Layout,
    results: &[ImageResult<'_>],
    shell: &mut Shell,
) -> Result<(), Error> {
    shell.status(
        "Writing",
        format!("OCI layout {}", plan.layout_dir.display()),
    );
    let sets: Vec<ImageSet> = results.iter().map(|r| r.set.clone()).collect();
    let artifacts: Vec<Artifact> = results
        .iter()
        .flat_map(|r| r.artifacts.iter().cloned())
        .collect();
    layout.put_documents(&sets)?;
    layout.put_artifacts(&artifacts)?;
    layout.write_index_with(&sets, &artifacts)?;
    layout.gc()?;
    Ok(())
}

/// Kubernetes YAML next to every image (unless `--no-kube`), pinned to the pushed digest
/// if any.
pub(super) fn write_kube(
    root: &std::path::Path,
    plan: &Plan,
    done: &[Summarized<'_, '_>],
    shell: &mut Shell,
) -> Result<(), Error> {
    let refs: Vec<crate::kube::ImageRef> = done
        .iter()
        .map(|(_, s)| crate::kube::ImageRef {
            reference: s.output_ref().to_string(),
            pushed: s.pushed.is_some(),
        })
        .collect();
    let files = crate::kube::write_all(root, plan, &refs, shell)?;
    for path in files {
        shell.emit(&Event::KubeWritten(FileEvent {
            name: None,
            platform: None,
            path: path.display().to_string(),
        }));
    }
    Ok(())
}

/// `compose.yaml` (unless `--no-compose`): each service runs the loaded `name:tag`, or the
/// pushed digest.
pub(super) fn write_compose(
    plan: &Plan,
    done: &[Summarized<'_, '_>],
    shell: &mut Shell,
) -> Result<(), Error> {
    let refs: Vec<(String, bool)> = done
        .iter()
        .map(|(_, s)| match &s.pushed {
            Some(p) => (p.reference.clone(), true),
            None => (
                format!(
                    "{}:{}",
                    s.name,
                    s.tags.first().map_or("latest", String::as_str)
                ),
                false,
            ),
        })
        .collect();
    if let Some(path) = crate::compose::write(plan, &refs, shell)? {
        shell.emit(&Event::ComposeWritten(FileEvent {
            name: None,
            platform: None,
            path: path.display().to_string(),
        }));
    }
    Ok(())
}

pub(super) fn report_images(done: &[Summarized<'_, '_>], shell: &mut Shell) {
    for (result, summary) in done {
        let set = &result.set;
        let platforms: Vec<String> = set.images.iter().map(|i| i.platform.to_string()).collect();
        let size = human_size(set.compressed_size());
        shell.status(
            "Image",
            format!("{} {} ({size})", summary.reference, platforms.join(", "),),
        );
    }
}

/// `<image>/image.json` for every image, and `--image-refs`.
pub(super) fn write_summaries(plan: &Plan, done: &[Summarized<'_, '_>]) -> Result<(), Error> {
    if let Some(file) = &plan.outputs.image_refs {
        let lines: String = done
            .iter()
            .flat_map(|(_, s)| s.refs(plan.outputs.tag_only))
            .map(|r| r + "\n")
            .collect();
        fsutil::write_output(file, lines.as_bytes())?;
    }
    for (result, summary) in done {
        let json = to_canonical_json(summary)
            .map_err(|e| AssembleError::new("image.json", &summary.name, e))?;
        let dir = &result.plan.out_dir;
        fsutil::create_dir_all(dir)?;
        fsutil::write_atomic(&dir.join("image.json"), &json.bytes)?;
    }
    Ok(())
}

/// `per_platform`: each platform was pushed on its own (`--per-platform`).
pub(super) fn summarize(result: &ImageResult<'_>, per_platform: bool) -> ImageSummary {
    let set = &result.set;
    let (top, media_type) = set.top();
    // The push of one document of this image, by its digest.
    let pushed = |digest: &str| {
        result.delivered.iter().find_map(|d| match d {
            Delivered::Pushed(e) if e.digest == *digest => Some(PushedSummary {
                reference: e.reference.clone(),
                repository: e.repository.clone(),
                tags: e.tags.clone(),
                uploaded_bytes: e.uploaded_bytes,
            }),
            _ => None,
        })
    };
    let tag = set.tags.first().cloned().unwrap_or_else(|| "latest".into());
    ImageSummary {
        name: set.name.clone(),
        tags: set.tags.clone(),
        digest: top.digest.clone(),
        media_type: media_type.to_string(),
        reference: format!("{}:{tag}@{}", set.name, top.digest),
        loaded: result
            .delivered
            .iter()
            .filter_map(|d| match d {
                Delivered::Loaded(e) => Some(e.references.clone()),
                Delivered::Pushed(_) => None,
            })
            .flatten()
            .collect(),
        pushed: pushed(&top.digest),
        platforms: set
            .images
            .iter()
            .map(|i| PlatformSummary {
                platform: i.platform.to_string(),
                digest: i.manifest.digest.clone(),
                compressed_size: i.compressed_size(),
                pushed: per_platform.then(|| pushed(&i.manifest.digest)).flatten(),
            })
            .collect(),
        layout: PathBuf::from("../oci"),
    }
}
