//! The only place that knows the order of the stages:
//! Settings → Workspace → Plan → BuiltBinary → layers → Image / Index → the run's OCI
//! layout → sinks (extra layout, tarball, registry) → SBOM, `image.json`, Kubernetes YAML
//! → per-image summary. [`Mode`] says how far a run goes; after planning every stage reads
//! the [`Plan`], not the settings.

use std::path::PathBuf;
use std::time::Instant;

use crate::attest;
use crate::audit;
use crate::build;
use crate::canonical::to_canonical_json;
use crate::config::{SbomFormat, Settings};
use crate::error::Error;
use crate::events::{Event, FileEvent, ImageSummary, PlatformSummary, PushedSummary};
use crate::fsutil;
use crate::image::ImageSet;
use crate::image::artifact::Artifact;
use crate::image::cache::LayerCache;
use crate::image::config::AssembleError;
use crate::image::layer::Codec;
use crate::image::layout::Layout;
use crate::image::package::{Base, Packager, PulledPlatform, package_image};
use crate::image::sink::{Delivered, LayoutSink, Packaged, Sink, TarballSink};
use crate::interrupt::{self, Interrupted};
use crate::load::LoadSink;
use crate::metacache::Answer;
use crate::output::{Shell, count, human_size};
use crate::plan::{self, ImagePlan, Plan};
use crate::registry;
use crate::registry::sink::RegistrySink;
use crate::sbom;
use crate::sbom::bom::BaseInfo;
use crate::sbom::resolve::FeatureFlags;
use crate::workspace;

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
        let mut event = summarize(result);
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
    let done: Vec<Summarized> = results.iter().map(|r| (r, summarize(r))).collect();
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

/// `audit`: the platforms' crate graphs (no build) against the advisory database, fetched
/// meanwhile; the report, the vulnerabilities documents, then the verdict.
fn audit_only(plan: &Plan, started: Instant, shell: &mut Shell) -> Result<Outcome, Error> {
    let _lock = lock_out_dir(plan, shell)?;
    let Some(settings) = &plan.audit else {
        unreachable!("the audit command always audits")
    };
    announce_fetch(plan, shell);
    let (graphs, database) = std::thread::scope(|s| {
        let database = s.spawn(|| audit::db::open(settings));
        let graphs = sbom::resolve_graphs(plan);
        (graphs, crate::join(database))
    });
    let graphs = graphs?;
    graph_statuses(shell, &graphs);
    let written = gate(plan, &graphs, &database?, shell)?;
    finished(
        shell,
        started,
        format!(
            "audit: {}",
            count(
                written.len(),
                "vulnerabilities document",
                "vulnerabilities documents"
            )
        ),
    );
    Ok(Outcome::Audited(written))
}

/// Says that the advisory database is about to be cloned (the first `--audit` of a
/// machine), which takes a while.
fn announce_fetch(plan: &Plan, shell: &mut Shell) {
    if let Some(settings) = &plan.audit
        && !settings.offline
        && !settings.db.exists()
    {
        shell.status(
            "Fetching",
            format!("advisory database from {}", settings.db_url),
        );
    }
}

/// Audits the plan's images, prints the findings (events with `--message-format json`),
/// writes the vulnerabilities documents and fails when a finding fails the run.
fn gate(
    plan: &Plan,
    graphs: &sbom::Graphs,
    database: &audit::db::Database,
    shell: &mut Shell,
) -> Result<Vec<audit::Written>, Error> {
    let info = &database.info;
    let at = match (&info.commit, &info.date) {
        (Some(c), Some(d)) => format!(", commit {} of {d}", &c[..c.len().min(7)]),
        _ => String::new(),
    };
    shell.status(
        "Auditing",
        format!(
            "{} against {} ({}{at}, {})",
            count(plan.images.len(), "image", "images"),
            count(info.advisories, "advisory", "advisories"),
            info.path.display(),
            info.fetched.as_str()
        ),
    );
    let yanked = audit::yanked::Yanked::new(plan.cargo.cargo_home.as_deref());
    let report = audit::audit(plan, graphs, database, &yanked);
    for finding in &report.findings {
        shell.emit(&Event::AuditFinding(audit::event(finding)));
    }
    let groups = audit::group(&report);
    for group in &groups {
        let (level, text) = audit::describe(group);
        shell.message(level, text);
    }
    let written = audit::write_documents(plan, graphs, &report)?;
    for w in &written {
        shell.verbose("Writing", w.path.display());
        shell.emit(&Event::VulnerabilitiesWritten(FileEvent {
            name: Some(w.image.clone()),
            platform: Some(w.platform.to_string()),
            path: w.path.display().to_string(),
        }));
    }
    shell.status("Audited", audit::summary(&groups));
    audit::verdict(&groups)?;
    Ok(written)
}

/// `verify`: the registry's image and its referrers are read and checked (signatures
/// with `key`, the attestations' subjects), then this checkout is built for the same
/// platforms and each platform's manifest compared; a difference names the first layer
/// and file, and the config fields. Returns the verified reference, by digest.
pub fn verify(
    mut settings: Settings,
    target: &crate::reference::ImageReference,
    key: Option<&str>,
    shell: &mut Shell,
) -> Result<String, Error> {
    let docs =
        tempfile::tempdir().map_err(|e| fsutil::FsError::new("create", std::env::temp_dir(), e))?;
    let cache = registry::pull::DocCache::new(docs.path().to_path_buf());
    shell.status("Reading", target.to_string());
    let remote = registry::inspect::inspect(target, &settings.registry, &cache, shell)?;
    let pinned = format!("{}@{}", target.repository, remote.digest);
    let mut problems = Vec::new();
    for finding in attest::check::check_referrers(&remote, key) {
        if finding.ok {
            shell.status("Checked", &finding.message);
        } else {
            problems.push(finding.message);
        }
    }
    if key.is_none() {
        shell.note("signatures were not checked: give the public key with --key");
    }
    if settings.platforms.is_none() {
        settings.platforms = Some(remote.platforms.iter().map(|p| p.platform).collect());
    }
    settings.push = false;
    let Outcome::Rebuilt(plan, summaries) = run(&settings, Mode::Verify, shell)? else {
        unreachable!("Mode::Verify ends with the rebuilt images")
    };
    let repo = target.repository.to_string();
    let index = plan
        .images
        .iter()
        .position(|i| i.repository.as_ref().is_some_and(|r| r.to_string() == repo))
        .or((plan.images.len() == 1).then_some(0));
    let Some(index) = index else {
        let names: Vec<String> = plan
            .images
            .iter()
            .map(|i| match &i.repository {
                Some(r) => format!("{} ({r})", i.name),
                None => i.name.clone(),
            })
            .collect();
        return Err(attest::check::VerifyFailed::new(
            &pinned,
            &[format!("no image of this checkout is pushed to {repo}; it builds {}", names.join(", "))],
            "select the image with -p/--bin and give the repository it is pushed to with --repo (or the metadata's `repository`)",
        )
        .into());
    };
    let summary = &summaries[index];
    let local = Layout::open(&plan.layout_dir)?;
    let scratch = Layout::open(&plan.cache_dir.join("verify"))?;
    for theirs in &remote.platforms {
        let platform = theirs.platform.to_string();
        let Some(ours) = summary.platforms.iter().find(|p| p.platform == platform) else {
            problems.push(format!("{platform}: this checkout does not build it"));
            continue;
        };
        let planned = plan.images[index]
            .platforms
            .iter()
            .find(|p| p.platform == theirs.platform);
        let local_sboms: Vec<attest::check::LocalSbom> = planned
            .into_iter()
            .flat_map(|p| &p.sboms)
            .filter_map(|s| {
                let (artifact_type, kind) = sbom::artifact_type(s.format);
                Some(attest::check::LocalSbom {
                    artifact_type,
                    kind,
                    bytes: std::fs::read(&s.path).ok()?,
                })
            })
            .collect();
        for finding in
            attest::check::compare_sboms(&remote, &theirs.manifest.digest, &platform, &local_sboms)
        {
            if finding.ok {
                shell.status("Verified", &finding.message);
            } else {
                problems.push(finding.message);
            }
        }
        if ours.digest == theirs.manifest.digest {
            shell.status(
                "Verified",
                format!(
                    "{platform} manifest {} is the one this checkout builds",
                    ours.digest
                ),
            );
            continue;
        }
        let read =
            |digest: &str| std::fs::read(crate::image::blob_path(&local.blobs_dir(), digest));
        let our_manifest = read(&ours.digest).unwrap_or_default();
        let d = crate::image::diff::compare_manifests(&our_manifest, &theirs.manifest.bytes);
        problems.push(format!(
            "{platform}: the registry's manifest is {}, this checkout builds {}",
            theirs.manifest.digest, ours.digest
        ));
        if let Some((a, b)) = &d.first_layer {
            problems.push(layer_difference(
                &platform,
                a.as_ref(),
                b.as_ref(),
                &local,
                &scratch,
                target,
                &settings,
                shell,
            )?);
        }
        if d.config {
            let our_config: serde_json::Value =
                serde_json::from_slice(&our_manifest).unwrap_or_default();
            let our_config = our_config["config"]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let fields = crate::image::diff::json_differences(
                &read(&our_config).unwrap_or_default(),
                &theirs.config.bytes,
            );
            if !fields.is_empty() {
                problems.push(format!(
                    "{platform}: config fields that differ: {}",
                    fields.join(", ")
                ));
            }
        }
        if !d.annotations.is_empty() {
            problems.push(format!(
                "{platform}: manifest annotations that differ: {}",
                d.annotations.join(", ")
            ));
        }
    }
    if remote.index.is_some() && summary.digest != remote.digest && problems.is_empty() {
        problems.push(format!(
            "the registry's index is {}, this checkout builds {} over the same manifests",
            remote.digest, summary.digest
        ));
    }
    if !problems.is_empty() {
        return Err(attest::check::VerifyFailed::new(
            &pinned,
            &problems,
            "rebuild from the commit the image names (its org.opencontainers.image.revision annotation), with the same --platform, --profile, features and SOURCE_DATE_EPOCH",
        )
        .into());
    }
    shell.status(
        "Verified",
        format!("{pinned}: signatures, attestations and every platform match"),
    );
    Ok(pinned)
}

/// The first differing layer of one platform, and the first differing file in it (the
/// registry's layer is downloaded into `scratch` to be read).
#[allow(clippy::too_many_arguments)]
fn layer_difference(
    platform: &str,
    ours: Option<&crate::image::diff::LayerRef>,
    theirs: Option<&crate::image::diff::LayerRef>,
    local: &Layout,
    scratch: &Layout,
    target: &crate::reference::ImageReference,
    settings: &Settings,
    shell: &mut Shell,
) -> Result<String, Error> {
    use crate::image::diff::{first_file_difference, layer_files};
    let (Some(a), Some(b)) = (ours, theirs) else {
        let (only, l) = match (ours, theirs) {
            (Some(l), _) => ("the rebuilt image", l),
            (_, Some(l)) => ("the registry's image", l),
            (None, None) => return Ok(format!("{platform}: the layers differ")),
        };
        return Ok(format!(
            "{platform}: layer {} ({}) is only in {only}",
            l.index + 1,
            l.digest
        ));
    };
    registry::inspect::fetch_layer(
        target,
        &b.digest,
        b.size,
        scratch,
        &settings.registry,
        shell,
    )?;
    let blob = |layout: &Layout, l: &crate::image::diff::LayerRef| {
        layer_files(
            &crate::image::blob_path(&layout.blobs_dir(), &l.digest),
            l.compression,
        )
        .map_err(|e| fsutil::FsError::new("read", layout.dir(), e))
    };
    let (mine, reg) = (blob(local, a)?, blob(scratch, b)?);
    let layer = format!(
        "{platform}: layer {} differs (registry {}, rebuilt {})",
        a.index + 1,
        b.digest,
        a.digest
    );
    let facts = |f: &Option<crate::image::diff::FileFacts>| match f {
        Some(f) => format!("{} bytes, {}, {}", f.size, f.sha256, f.kind),
        None => "absent".to_string(),
    };
    Ok(match first_file_difference(&mine, &reg) {
        Some(d) => format!(
            "{layer}; first differing file {}: registry {}; rebuilt {}",
            d.path,
            facts(&d.theirs),
            facts(&d.ours)
        ),
        None => {
            format!("{layer}; the files in it are the same (the tar or its compression differs)")
        }
    })
}

/// [`Mode::Merge`]: every image's platforms read from the registry (under their
/// per-platform tags, checked against this plan), joined into the index a single run
/// over the same platforms writes, pushed with the tags last; then the files a push
/// leaves (`image.json`, `--image-refs`, Kubernetes YAML, compose.yaml).
fn merge(
    root: &std::path::Path,
    plan: &Plan,
    signer: Option<&attest::key::SigningIdentity>,
    started: Instant,
    shell: &mut Shell,
) -> Result<Outcome, Error> {
    let _lock = lock_out_dir(plan, shell)?;
    let pushed: Vec<&ImagePlan> = plan
        .images
        .iter()
        .filter(|i| i.repository.is_some())
        .collect();
    let jobs: Vec<registry::merge::MergeJob> = pushed
        .iter()
        .filter_map(|image| {
            Some(registry::merge::MergeJob {
                repository: image.repository.clone()?,
                platforms: image
                    .platforms
                    .iter()
                    .map(|p| (p.platform, plan::platform_tag(&image.pin_tag, p.platform)))
                    .collect(),
                annotations: &image.annotations,
            })
        })
        .collect();
    let docs = registry::pull::DocCache::new(plan.cache_dir.join("merge"));
    let fetched = registry::merge::fetch_platforms(&jobs, &docs, &plan.registry, shell)?;
    let mut results = Vec::new();
    for (image, images) in pushed.into_iter().zip(fetched) {
        results.push(ImageResult {
            plan: image,
            set: crate::image::manifest::assemble_set(image, images)?,
            artifacts: Vec::new(),
            delivered: Vec::new(),
        });
    }
    let push_jobs: Vec<registry::PushJob> = results
        .iter()
        .filter_map(|r| {
            Some(registry::PushJob {
                set: &r.set,
                repository: r.plan.repository.clone()?,
                tags: r.plan.tags.clone(),
            })
        })
        .collect();
    let merged = registry::merge::push_indexes(&push_jobs, &plan.registry, shell)?;
    if let Some(signer) = signer {
        // The index is new: its signature goes up now, from the run's layout.
        let layout = Layout::open(&plan.layout_dir)?;
        let mut targets = Vec::new();
        for result in &mut results {
            result.artifacts =
                attest::sign_image(plan, result.plan, &result.set, &[], signer, true)?;
            layout.put_artifacts(&result.artifacts)?;
        }
        for result in &results {
            if let Some(repo) = &result.plan.repository {
                targets.extend(result.artifacts.iter().map(|a| (repo.clone(), a)));
            }
        }
        registry::referrers::push_artifacts(&targets, &layout, &plan.registry, shell)?;
    }
    for (result, p) in results.iter_mut().zip(merged) {
        let event = crate::events::PushedEvent {
            name: result.set.name.clone(),
            reference: p.reference(),
            repository: p.repository.to_string(),
            digest: p.digest.clone(),
            tags: p.tags.clone(),
            uploaded_bytes: p.uploaded_bytes,
        };
        shell.emit(&Event::ImagePushed(event.clone()));
        result.delivered.push(Delivered::Pushed(event));
    }
    let done: Vec<Summarized> = results.iter().map(|r| (r, summarize(r))).collect();
    write_summaries(plan, &done)?;
    write_kube(root, plan, &done, shell)?;
    write_compose(plan, &done, shell)?;
    report_images(&done, shell);
    finished(
        shell,
        started,
        count(done.len(), "merged image", "merged images"),
    );
    Ok(Outcome::Images(done.into_iter().map(|(_, s)| s).collect()))
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

/// The SBOM of every image and platform the plan gives one, with their events.
fn write_sboms(
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
fn write_provenance(
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
fn write_layout(
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
fn write_kube(
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
fn write_compose(plan: &Plan, done: &[Summarized<'_, '_>], shell: &mut Shell) -> Result<(), Error> {
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

fn report_images(done: &[Summarized<'_, '_>], shell: &mut Shell) {
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

/// This process's peak resident memory (not cargo's or other children's), in KiB.
fn peak_rss_kib() -> Option<i64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF covers this process only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: initialized by the successful call above.
    (rc == 0).then(|| unsafe { usage.assume_init() }.ru_maxrss)
}

/// `<image>/image.json` for every image, and `--image-refs`.
fn write_summaries(plan: &Plan, done: &[Summarized<'_, '_>]) -> Result<(), Error> {
    if let Some(file) = &plan.outputs.image_refs {
        let lines: String = done
            .iter()
            .map(|(_, s)| match plan.outputs.tag_only {
                true => format!("{}\n", s.tag_ref()),
                false => format!("{}\n", s.output_ref()),
            })
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

fn summarize(result: &ImageResult<'_>) -> ImageSummary {
    let set = &result.set;
    let (top, media_type) = set.top();
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
        pushed: result.delivered.iter().find_map(|d| match d {
            Delivered::Pushed(e) => Some(PushedSummary {
                reference: e.reference.clone(),
                repository: e.repository.clone(),
                tags: e.tags.clone(),
                uploaded_bytes: e.uploaded_bytes,
            }),
            Delivered::Loaded(_) => None,
        }),
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
