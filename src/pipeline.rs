//! The stages in order: Settings → Workspace → Plan → BuiltBinary → layers → Image /
//! Index → OCI layout (+ extra layout, tarball) → per-image summary → refs on stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::build;
use crate::canonical::to_canonical_json;
use crate::config::Settings;
use crate::error::Error;
use crate::events::{Event, FileEvent, ImageSummary, PlatformSummary, PushedEvent, PushedSummary};
use crate::fsutil;
use crate::image::ImageSet;
use crate::image::artifact::Artifact;
use crate::image::cache::LayerCache;
use crate::image::config::AssembleError;
use crate::image::layout::{Layout, write_archive};
use crate::image::package::{Base, Packager, PulledPlatform, package_image};
use crate::interrupt::{self, Interrupted};
use crate::output::{Shell, human_size};
use crate::plan;
use crate::platform::Platform;
use crate::registry::{self, PushJob};
use crate::sbom;
use crate::sbom::bom::BaseInfo;
use crate::sbom::resolve::{CrateGraph, FeatureFlags};
use crate::workspace;

/// The binaries of a run and the crate graphs their SBOMs need, built while holding the
/// target directory's lock (released on drop).
struct BuildOutput {
    ws: workspace::Workspace,
    plan: plan::Plan,
    built: Vec<build::BuiltBinary>,
    graphs: BTreeMap<Platform, CrateGraph>,
    _lock: fsutil::FileLock,
}

/// Workspace → plan → lock → `cargo build`, with the SBOMs' crate graphs resolved
/// alongside.
fn build_stage(settings: &Settings, shell: &mut Shell) -> Result<BuildOutput, Error> {
    // rustup's answer is needed only at build time: ask while cargo reads the workspace.
    let (ws, probe) = std::thread::scope(|s| {
        let probe = s.spawn(|| build::probe(settings));
        let ws = workspace::load(settings);
        (ws, crate::join(probe))
    });
    let ws = ws?;
    let plan = plan::plan_images(&ws, settings)?;
    shell.emit(&plan::plan_event(&plan, settings.push));
    // One run at a time per target directory, like cargo's own lock.
    let lock = fsutil::lock_exclusive(&plan.out_dir.join(".lock"), || {
        shell.status(
            "Blocking",
            format!("waiting for file lock on {}", plan.out_dir.display()),
        );
    })?;
    // The SBOM's dependency graphs (`cargo metadata --filter-platform`) resolve while
    // cargo builds.
    let (built, graphs) = std::thread::scope(|s| {
        let graphs = s.spawn(|| sbom::resolve_graphs(&plan, settings));
        let built = build::build_all(&plan, &ws, settings, &probe, shell);
        (built, crate::join(graphs))
    });
    let built = match built {
        // cargo got the same Ctrl-C: say "interrupted", not "cargo failed".
        Err(_) if interrupt::requested() => return Err(Interrupted.into()),
        other => other?,
    };
    interrupt::check()?;
    Ok(BuildOutput {
        ws,
        plan,
        built,
        graphs: graphs?,
        _lock: lock,
    })
}

/// `cargo containerize sbom`: builds the binaries and writes their SBOMs, no images. The
/// built-in base is described without writing it; `--base` is resolved (pulled) as for
/// an image, so the SBOM names the digest the image would be built on.
pub fn sboms_only(settings: &Settings, shell: &mut Shell) -> Result<Vec<sbom::Sbom>, Error> {
    let started = Instant::now();
    let BuildOutput {
        plan,
        built,
        graphs,
        ..
    } = build_stage(settings, shell)?;
    let base = match plan.base {
        None => BaseInfo::Builtin,
        Some(_) => {
            let layout = Layout::open(&plan.layout_dir)?;
            let cache = LayerCache::new(&plan.cache_dir);
            (&resolve_base(&plan, settings, &cache, &layout, shell)?).into()
        }
    };
    let flags = FeatureFlags::from_cargo(&settings.cargo);
    let sboms = sbom::write_sboms(&plan, &built, &graphs, &flags, &base)?;
    report_sboms(&sboms, shell);
    shell.status(
        "Finished",
        format!(
            "{} SBOM(s) in {:.2}s",
            sboms.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(sboms)
}

/// Runs everything. Status goes to `shell`'s stderr, references to its stdout.
pub fn run(settings: &Settings, shell: &mut Shell) -> Result<Vec<ImageSummary>, Error> {
    let started = Instant::now();
    let BuildOutput {
        ws,
        plan,
        built,
        graphs,
        _lock,
    } = build_stage(settings, shell)?;

    let layout = Layout::open(&plan.layout_dir)?;
    let cache = LayerCache::new(&plan.cache_dir);
    let base = resolve_base(&plan, settings, &cache, &layout, shell)?;
    let packager = Packager {
        base: &base,
        epoch: plan.epoch,
        level: plan.compression_level,
        cache: &cache,
        layout: &layout,
    };
    let sets = package_all(&plan, &built, packager, shell)?;
    let flags = FeatureFlags::from_cargo(&settings.cargo);
    let sboms = sbom::write_sboms(&plan, &built, &graphs, &flags, &(&base).into())?;
    report_sboms(&sboms, shell);
    let artifacts = sbom::artifacts(&sets, &sboms)?;

    interrupt::check()?;
    write_layouts(&plan, &layout, &sets, &artifacts, shell)?;
    let mut summaries: Vec<ImageSummary> = sets.iter().map(summarize).collect();
    for summary in &summaries {
        shell.emit(&Event::ImageBuilt(summary.clone()));
    }
    if settings.push {
        interrupt::check()?;
        let pushing = Instant::now();
        push_images(&sets, &plan, &layout, settings, &mut summaries, shell)?;
        push_sboms(&plan, &artifacts, &layout, settings, shell)?;
        shell.verbose(
            "Timing",
            format!(
                "push (images and SBOMs): {:.3}s",
                pushing.elapsed().as_secs_f64()
            ),
        );
    }
    write_summaries(&summaries, &plan, settings)?;
    if !settings.no_kube {
        write_kube(&ws.root, &plan, &summaries, settings, shell)?;
    }
    report_images(&summaries, &sets, shell);
    if let Some(kib) = peak_rss_kib() {
        shell.verbose(
            "Memory",
            format!("peak RSS of this process: {:.1} MiB", kib as f64 / 1024.0),
        );
    }
    shell.status(
        "Finished",
        format!(
            "{} image(s) in {:.2}s",
            sets.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(summaries)
}

/// The built-in base, or `--base` pulled for every platform of the run.
fn resolve_base(
    plan: &plan::Plan,
    settings: &Settings,
    cache: &LayerCache,
    layout: &Layout,
    shell: &mut Shell,
) -> Result<Base, Error> {
    let Some(reference) = &plan.base else {
        return Ok(Base::builtin(plan.compression_level, cache, layout)?);
    };
    let platforms: BTreeSet<Platform> = plan
        .images
        .iter()
        .flat_map(|i| i.settings.platforms.clone())
        .collect();
    let platforms: Vec<Platform> = platforms.into_iter().collect();
    let docs = registry::pull::DocCache::new(plan.cache_dir.join("base"));
    let pulled = registry::pull_base(
        reference,
        &platforms,
        layout,
        &docs,
        &settings.registry,
        shell,
    )?;
    Ok(Base::Pulled {
        name: pulled.name,
        digest: pulled.digest,
        platforms: pulled
            .platforms
            .into_iter()
            .map(|(p, b)| {
                (
                    p,
                    PulledPlatform {
                        layers: b.layers,
                        env: b.env,
                    },
                )
            })
            .collect(),
    })
}

/// Layers and documents of every image, in plan order.
fn package_all(
    plan: &plan::Plan,
    built: &[build::BuiltBinary],
    packager: Packager<'_>,
    shell: &mut Shell,
) -> Result<Vec<ImageSet>, Error> {
    let mut sets = Vec::new();
    for image in &plan.images {
        let binaries = built
            .iter()
            .filter(|b| b.bin == image.bin)
            .map(|b| (b.platform, b.path.clone()))
            .collect();
        sets.push(package_image(image, &binaries, packager, shell)?);
        interrupt::check()?;
    }
    Ok(sets)
}

fn report_sboms(sboms: &[sbom::Sbom], shell: &mut Shell) {
    if !sboms.is_empty() {
        shell.status("Writing", format!("{} SBOM(s), CycloneDX 1.5", sboms.len()));
    }
    for sbom in sboms {
        let event = FileEvent {
            name: Some(sbom.image.clone()),
            platform: Some(sbom.platform.to_string()),
            path: sbom.path.display().to_string(),
        };
        shell.emit(&Event::SbomWritten(event));
    }
}

/// The run's OCI layout (index.json last), then `--oci-layout-path` and `--tarball`.
fn write_layouts(
    plan: &plan::Plan,
    layout: &Layout,
    sets: &[ImageSet],
    artifacts: &[Artifact],
    shell: &mut Shell,
) -> Result<(), Error> {
    shell.status(
        "Writing",
        format!("OCI layout {}", plan.layout_dir.display()),
    );
    layout.put_documents(sets)?;
    layout.put_artifacts(artifacts)?;
    layout.write_index_with(sets, artifacts)?;
    layout.gc()?;
    if let Some(dir) = &plan.oci_layout_path {
        shell.status("Writing", format!("OCI layout {}", dir.display()));
        let extra = Layout::open(dir)?;
        extra.copy_blobs_from(layout, sets)?;
        extra.put_documents(sets)?;
        extra.put_artifacts(artifacts)?;
        extra.write_index_with(sets, artifacts)?;
    }
    if let Some(file) = &plan.tarball {
        shell.status("Writing", format!("OCI archive {}", file.display()));
        write_archive(layout, sets, file)?;
    }
    Ok(())
}

/// Kubernetes YAML next to every image, pinned to the pushed digest if any.
fn write_kube(
    root: &std::path::Path,
    plan: &plan::Plan,
    summaries: &[ImageSummary],
    settings: &Settings,
    shell: &mut Shell,
) -> Result<(), Error> {
    let refs: Vec<crate::kube::ImageRef> = summaries
        .iter()
        .map(|s| crate::kube::ImageRef {
            reference: s.output_ref().to_string(),
            pushed: s.pushed.is_some(),
        })
        .collect();
    let files = crate::kube::write_all(root, plan, &refs, settings.kube_dir.as_deref(), shell)?;
    for path in files {
        shell.emit(&Event::KubeWritten(FileEvent {
            name: None,
            platform: None,
            path: path.display().to_string(),
        }));
    }
    Ok(())
}

fn report_images(summaries: &[ImageSummary], sets: &[ImageSet], shell: &mut Shell) {
    for (summary, set) in summaries.iter().zip(sets) {
        let platforms: Vec<String> = set.images.iter().map(|i| i.platform.to_string()).collect();
        let size = human_size(set.compressed_size());
        shell.status(
            "Image",
            format!(
                "{} {} ({size}, {})",
                summary.reference,
                platforms.join(", "),
                summary.digest
            ),
        );
    }
}

/// This process's peak resident memory (not cargo's or other children's), in KiB.
fn peak_rss_kib() -> Option<i64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF covers this process only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: initialized by the successful call above.
    (rc == 0).then(|| unsafe { usage.assume_init() }.ru_maxrss)
}

/// Pushes every image with a repository and records the result in its summary.
fn push_images(
    sets: &[ImageSet],
    plan: &plan::Plan,
    layout: &Layout,
    settings: &Settings,
    summaries: &mut [ImageSummary],
    shell: &mut Shell,
) -> Result<(), Error> {
    let jobs: Vec<PushJob> = sets
        .iter()
        .zip(&plan.images)
        .filter_map(|(set, image)| {
            Some(PushJob {
                set,
                repository: image.repository.clone()?,
                tags: image.tags.clone(),
            })
        })
        .collect();
    let pushed = registry::push_all(&jobs, layout, &settings.registry, shell)?;
    for (summary, p) in summaries.iter_mut().zip(pushed) {
        let event = PushedEvent {
            name: summary.name.clone(),
            reference: p.reference(),
            repository: p.repository.to_string(),
            digest: p.digest.clone(),
            tags: p.tags.clone(),
            uploaded_bytes: p.uploaded_bytes,
        };
        shell.emit(&Event::ImagePushed(event));
        summary.pushed = Some(PushedSummary {
            reference: p.reference(),
            repository: p.repository.to_string(),
            tags: p.tags.clone(),
            uploaded_bytes: p.uploaded_bytes,
        });
    }
    Ok(())
}

/// `<image>/image.json` for every image, and `--image-refs`.
fn write_summaries(
    summaries: &[ImageSummary],
    plan: &plan::Plan,
    settings: &Settings,
) -> Result<(), Error> {
    if let Some(file) = &settings.image_refs {
        let lines: String = summaries
            .iter()
            .map(|s| format!("{}\n", s.output_ref()))
            .collect();
        fsutil::write_atomic(file, lines.as_bytes())?;
    }
    for (summary, image) in summaries.iter().zip(&plan.images) {
        let json = to_canonical_json(summary)
            .map_err(|e| AssembleError::new("image.json", &summary.name, e))?;
        fsutil::create_dir_all(&image.out_dir)?;
        fsutil::write_atomic(&image.out_dir.join("image.json"), &json.bytes)?;
    }
    Ok(())
}

fn summarize(set: &ImageSet) -> ImageSummary {
    let (top, media_type) = set.top();
    let tag = set.tags.first().cloned().unwrap_or_else(|| "latest".into());
    ImageSummary {
        name: set.name.clone(),
        tags: set.tags.clone(),
        digest: top.digest.clone(),
        media_type: media_type.to_string(),
        reference: format!("{}:{tag}@{}", set.name, top.digest),
        pushed: None,
        platforms: set
            .images
            .iter()
            .map(|i| PlatformSummary {
                platform: i.platform.to_string(),
                digest: i.manifest.digest.clone(),
                compressed_size: i.compressed_size(),
            })
            .collect(),
        layout: PathBuf::from("../oci"),
    }
}

/// Attaches each SBOM to its pushed platform manifest (after the image and its tags).
fn push_sboms(
    plan: &plan::Plan,
    artifacts: &[Artifact],
    layout: &Layout,
    settings: &Settings,
    shell: &mut Shell,
) -> Result<(), Error> {
    let targets: Vec<_> = artifacts
        .iter()
        .filter_map(|a| {
            let image = plan.images.iter().find(|i| i.name == a.image)?;
            Some((image.repository.clone()?, a))
        })
        .collect();
    registry::referrers::push_artifacts(&targets, layout, &settings.registry, shell)?;
    Ok(())
}
