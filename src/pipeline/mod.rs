//! The only place that knows the order of the stages:
//! Settings → Workspace → Plan → BuiltBinary → layers → Image / Index → the run's OCI
//! layout → sinks (extra layout, tarball, registry) → SBOM, `image.json`, Kubernetes YAML
//! → per-image summary. [`Mode`] says how far a run goes; after planning every stage reads
//! the [`Plan`], not the settings.
//!
//! `run` reads top to bottom. What only some modes do sits beside it: `auditing` (`audit`
//! and `--audit`), `merging` (`merge`), `verifying` (`verify`); `outputs` writes the files
//! a run leaves next to its images and the summaries they are made from.

mod auditing;
mod merging;
mod outputs;
mod verifying;

use std::time::Instant;

use crate::attest;
use crate::audit;
use crate::build;
use crate::config::Settings;
use crate::error::Error;
use crate::events::{Event, ImageSummary};
use crate::fsutil;
use crate::image::ImageSet;
use crate::image::artifact::Artifact;
use crate::image::cache::LayerCache;
use crate::image::layer::Codec;
use crate::image::layout::Layout;
use crate::image::package::{Base, Packager, PulledPlatform, package_image};
use crate::image::sink::{Delivered, LayoutSink, Packaged, Sink, TarballSink};
use crate::interrupt::{self, Interrupted};
use crate::load::LoadSink;
use crate::metacache::Answer;
use crate::output::{Shell, count};
use crate::plan::{self, ImagePlan, Plan};
use crate::registry;
use crate::registry::sink::RegistrySink;
use crate::sbom;
use crate::sbom::bom::BaseInfo;
use crate::workspace;
use auditing::{announce_fetch, audit_only, gate};
use merging::merge;
use outputs::{
    report_images, summarize, write_compose, write_kube, write_layout, write_provenance,
    write_sboms, write_summaries,
};
pub use verifying::verify;

/// How far a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything: build, package, write, push (with `--push`), YAML.
    Build,
    /// `plan` / `--dry-run`: read the workspace and plan; nothing is built or written.
    Plan,
    /// `sbom`: build the binaries and write their SBOMs; no images.
    SbomOnly,
    /// `merge`: nothing is built; each image's per-platform manifests, pushed by
    /// `--per-platform` runs of the same commit, are joined into its index, which is
    /// pushed and tagged; then `image.json` and the YAML, as after a push.
    Merge,
    /// `verify`: as [`Mode::Build`] without signing, ending with the plan and summaries
    /// for the comparison with the registry's image.
    Verify,
    /// `audit`: nothing is built; each image's linked crates (from `cargo metadata`) are
    /// checked against the advisory database and the vulnerabilities documents written.
    Audit,
}

/// What a run produced.
#[derive(Debug)]
pub enum Outcome {
    /// [`Mode::Plan`]: the plan.
    Planned(Box<Plan>),
    /// [`Mode::SbomOnly`]: the SBOMs written.
    Sboms(Vec<sbom::Sbom>),
    /// [`Mode::Build`]: one summary per image, in plan order.
    Images(Vec<ImageSummary>),
    /// [`Mode::Verify`]: the plan and its images' summaries.
    Rebuilt(Box<Plan>, Vec<ImageSummary>),
    /// [`Mode::Audit`]: the vulnerabilities documents written.
    Audited(Vec<audit::Written>),
}

/// One image as it flows through packaging, the sinks and the summary: never kept in
/// parallel vectors.
struct ImageResult<'p> {
    plan: &'p ImagePlan,
    set: ImageSet,
    artifacts: Vec<Artifact>,
    delivered: Vec<Delivered>,
}

/// An image and its summary, once every sink has run.
type Summarized<'r, 'p> = (&'r ImageResult<'p>, ImageSummary);

impl ImageResult<'_> {
    fn packaged(&self) -> Packaged<'_> {
        Packaged {
            plan: self.plan,
            set: &self.set,
            artifacts: &self.artifacts,
        }
    }
}

/// Runs the stages `mode` asks for. Status goes to `shell`'s stderr, events to its stdout.
pub fn run(settings: &Settings, mode: Mode, shell: &mut Shell) -> Result<Outcome, Error> {
    let started = Instant::now();
    let ws = workspace::load(settings)?;
    metadata_status(shell, "cargo metadata", ws.metadata);
    for warning in &ws.warnings {
        shell.warn(warning);
    }
    let plan = plan::plan_images(&ws, settings)?;
    // `cargo metadata`'s answer is stored once the configuration proved valid; a plan
    // writes nothing, not even that.
    if mode != Mode::Plan
        && let Some(entry) = &ws.metadata_entry
    {
        entry.clone().save();
    }
    shell.emit(&plan::plan_event(&plan));
    if mode == Mode::Merge {
        let signer = attest::signing_identity(&plan)?;
        return merge(&ws.root, &plan, signer.as_ref(), started, shell);
    }
    if mode == Mode::Audit {
        return audit_only(&plan, started, shell);
    }
    if mode == Mode::Plan {
        return Ok(Outcome::Planned(Box::new(plan)));
    }
    // rustup's answer is needed only at build time, and is stored next to the workspace's
    // other cached answers (once the configuration proved valid, like them).
    let (probe, answer) = build::probe(
        &settings.cargo,
        &ws.target_dir.join("containerize/cache/metadata"),
    );
    match answer {
        Some(Answer::Cached) => shell.verbose(
            "Fresh",
            "`rustup target list --installed` (stored answer, inputs unchanged)",
        ),
        Some(Answer::Ran) => shell.verbose("Resolved", "`rustup target list --installed`"),
        None => {}
    }
    let signer = match mode {
        Mode::Build => attest::signing_identity(&plan)?,
        _ => None,
    };

    // One run at a time per target directory, like cargo's own lock.
    let _lock = lock_out_dir(&plan, shell)?;
    announce_fetch(&plan, shell);
    // The SBOM's dependency graphs (`cargo metadata --filter-platform`) resolve, the
    // provenance's compiler version is asked, and with --audit the advisory database is
    // fetched, while cargo builds.
    let (built, graphs, rustc, database) = std::thread::scope(|s| {
        let graphs = s.spawn(|| sbom::resolve_graphs(&plan));
        let database = s.spawn(|| plan.audit.as_ref().map(audit::db::open).transpose());
        let rustc = s.spawn(|| {
            let wanted = plan
                .images
                .iter()
                .any(|i| i.platforms.iter().any(|p| p.provenance.is_some()));
            (wanted && matches!(mode, Mode::Build | Mode::Verify))
                .then(|| build::rustc_version(&plan.cargo, &ws.root))
                .flatten()
        });
        let built = build::build_all(&plan, &ws, &probe, shell);
        (
            built,
            crate::join(graphs),
            crate::join(rustc),
            crate::join(database),
        )
    });
    let built = match built {
        // cargo got the same Ctrl-C: say "interrupted", not "cargo failed".
        Err(_) if interrupt::requested() => return Err(Interrupted.into()),
        other => other?,
    };
    interrupt::check()?;
    let graphs = graphs?;
    graph_statuses(shell, &graphs);
    // The gate: a vulnerable image is neither written nor pushed.
    let vulnerabilities = match database? {
        Some(database) => gate(&plan, &graphs, &database, shell)?,
        None => {
            audit::remove_stale(&plan, &[])?;
            Vec::new()
        }
    };
    // The binaries the images get carry their dependency list (and the SBOM hashes those).
    let built = sbom::auditable::embed_all(&plan, built, &graphs)?;

    let cache = LayerCache::new(&plan.cache_dir);
    if mode == Mode::SbomOnly {
        // The built-in base is described without writing it; `--base` is resolved as for
        // an image, so the SBOM names the digest the image would be built on.
        let base = match plan.base {
            None => BaseInfo::Builtin,
            Some(_) => {
                let layout = Layout::open(&plan.layout_dir)?;
                (&resolve_base(&plan, &cache, &layout, shell)?).into()
            }
        };
        let sboms = write_sboms(&plan, &built, &graphs, &base, shell)?;
        finished(shell, started, count(sboms.len(), "SBOM", "SBOMs"));
        return Ok(Outcome::Sboms(sboms));
    }

    let layout = Layout::open(&plan.layout_dir)?;
    let base = resolve_base(&plan, &cache, &layout, shell)?;
    let packager = Packager {
        base: &base,
        epoch: plan.epoch,
        codec: codec(&plan),
        cache: &cache,
        layout: &layout,
    };
    let mut results = package_all(&plan, &built, packager, shell)?;
    let base_info: BaseInfo = (&base).into();
    let sboms = write_sboms(&plan, &built, &graphs, &base_info, shell)?;
    let sets: Vec<&ImageSet> = results.iter().map(|r| &r.set).collect();
    let attestations = write_provenance(&plan, &sets, rustc.as_ref(), &base_info, shell)?;
    for result in &mut results {
        result.artifacts = sbom::artifacts(&result.set, &sboms)?;
        let provenance = attest::artifacts(&result.set, &attestations)?;
        result.artifacts.extend(provenance);
        result
            .artifacts
            .extend(audit::artifacts(&result.set, &vulnerabilities)?);
        if let Some(signer) = &signer {
            let bundles = attest::sign_image(
                &plan,
                result.plan,
                &result.set,
                &result.artifacts,
                signer,
                false,
            )?;
            result.artifacts.extend(bundles);
        }
    }
    if signer.is_some() {
        let bundles: usize = results
            .iter()
            .flat_map(|r| &r.artifacts)
            .filter(|a| a.artifact_type == crate::image::artifact::SIGSTORE_BUNDLE)
            .count();
        shell.status(
            "Signing",
            format!(
                "{} (Sigstore bundle v0.3, key {})",
                count(bundles, "signature bundle", "signature bundles"),
                plan.outputs
                    .sign
                    .as_ref()
                    .map_or_else(String::new, |s| s.key.display().to_string())
            ),
        );
    }

    interrupt::check()?;
    write_layout(&plan, &layout, &results, shell)?;
    for result in &results {
        // image.json keeps the layout relative (the same file wherever the workspace
        // is); the event, like every path in the stream, is absolute.
        let mut event = summarize(result, false);
        event.layout = plan.layout_dir.clone();
        shell.emit(&Event::ImageBuilt(event));
    }
    let pushing = Instant::now();
    for sink in sinks(&plan) {
        interrupt::check()?;
        let packaged: Vec<Packaged> = results.iter().map(ImageResult::packaged).collect();
        let delivered = sink.write(&layout, &packaged, shell)?;
        for d in delivered {
            shell.emit(&match &d {
                Delivered::Pushed(e) => Event::ImagePushed(e.clone()),
                Delivered::Loaded(e) => Event::ImageLoaded(e.clone()),
            });
            if let Some(r) = results.iter_mut().find(|r| r.plan.name == d.image()) {
                r.delivered.push(d);
            }
        }
    }
    if plan.outputs.push {
        shell.verbose(
            "Timing",
            format!(
                "push (images and SBOMs): {:.3}s",
                pushing.elapsed().as_secs_f64()
            ),
        );
    }
    // One summary per image, made once its deliveries are in.
    let per_platform = plan.outputs.per_platform;
    let done: Vec<Summarized> = results
        .iter()
        .map(|r| (r, summarize(r, per_platform)))
        .collect();
    write_summaries(&plan, &done)?;
    write_kube(&ws.root, &plan, &done, shell)?;
    write_compose(&plan, &done, shell)?;
    report_images(&done, shell);
    if let Some(kib) = peak_rss_kib() {
        shell.verbose(
            "Memory",
            format!("peak RSS of this process: {:.1} MiB", kib as f64 / 1024.0),
        );
    }
    finished(shell, started, count(done.len(), "image", "images"));
    let summaries = done.into_iter().map(|(_, s)| s).collect();
    if mode == Mode::Verify {
        return Ok(Outcome::Rebuilt(Box::new(plan), summaries));
    }
    Ok(Outcome::Images(summaries))
}

/// The outputs besides the run's layout, in the order they are written: the plan decides
/// which; a new kind of output is a sink and one line here.
fn sinks(plan: &Plan) -> Vec<Box<dyn Sink>> {
    let o = &plan.outputs;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(dir) = &o.oci_layout_path {
        sinks.push(Box::new(LayoutSink(dir.clone())));
    }
    if let Some(file) = &o.tarball {
        sinks.push(Box::new(TarballSink {
            path: file.clone(),
            platform: o.tarball_platform,
        }));
    }
    if o.push {
        sinks.push(Box::new(RegistrySink {
            settings: plan.registry.clone(),
            per_platform: o.per_platform,
        }));
    }
    if let Some(target) = &o.load {
        sinks.push(Box::new(LoadSink {
            target: target.clone(),
            platform: crate::platform::Platform::host(),
        }));
    }
    sinks
}

/// How this run's layers are compressed.
fn codec(plan: &Plan) -> Codec {
    Codec {
        compression: plan.compression,
        level: plan.compression_level,
    }
}

fn finished(shell: &mut Shell, started: Instant, what: String) {
    shell.status(
        "Finished",
        format!("{what} in {:.2}s", started.elapsed().as_secs_f64()),
    );
}

/// The built-in base, or `--base` pulled for every platform of the run.
fn resolve_base(
    plan: &Plan,
    cache: &LayerCache,
    layout: &Layout,
    shell: &mut Shell,
) -> Result<Base, Error> {
    let Some(reference) = &plan.base else {
        return Ok(Base::builtin(codec(plan), cache, layout)?);
    };
    let docs = registry::pull::DocCache::new(plan.cache_dir.join("base"));
    let pulled = registry::pull_base(
        reference,
        &plan.platforms(),
        layout,
        &docs,
        &plan.registry,
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
fn package_all<'p>(
    plan: &'p Plan,
    built: &[build::BuiltBinary],
    packager: Packager<'_>,
    shell: &mut Shell,
) -> Result<Vec<ImageResult<'p>>, Error> {
    let mut results = Vec::new();
    for image in &plan.images {
        let binaries = built
            .iter()
            .filter(|b| b.bin == image.bin)
            .map(|b| (b.platform, b.path.clone()))
            .collect();
        results.push(ImageResult {
            plan: image,
            set: package_image(image, &binaries, packager, shell)?,
            artifacts: Vec::new(),
            delivered: Vec::new(),
        });
        interrupt::check()?;
    }
    Ok(results)
}

/// `-v`: whether `what` ran or its stored answer was still valid.
/// One run at a time per target directory, like cargo's own lock.
fn lock_out_dir(plan: &Plan, shell: &mut Shell) -> Result<fsutil::FileLock, Error> {
    Ok(fsutil::lock_exclusive(&plan.out_dir.join(".lock"), || {
        shell.status(
            "Blocking",
            format!("waiting for file lock on {}", plan.out_dir.display()),
        );
    })?)
}

/// How each platform's `cargo metadata --filter-platform` was answered (with `-v`).
fn graph_statuses(shell: &mut Shell, graphs: &sbom::Graphs) {
    for (platform, answer) in &graphs.answers {
        let what = format!("cargo metadata --filter-platform {}", platform.triple());
        metadata_status(shell, &what, *answer);
    }
}

fn metadata_status(shell: &mut Shell, what: &str, answer: Answer) {
    match answer {
        Answer::Cached => shell.verbose(
            "Fresh",
            format!("`{what}` (stored answer, inputs unchanged)"),
        ),
        Answer::Ran => shell.verbose("Resolved", format!("`{what}` (ran cargo)")),
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
