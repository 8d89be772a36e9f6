//! Workspace × Settings → [`Plan`]: every image, platform, tag and output path, fixed
//! before anything is built (so a dry run or a JSON event stream can show it).

use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod provenance;

pub use provenance::{LOCAL_BUILDER_ID, ProvenancePlan, SourceRef, Workflow};

use crate::config::registry::RegistrySettings;
use crate::config::{
    self, CargoOptions, Compression, ConfigError, ImageSettings, LoadTarget, Naming, SbomFormat,
    Settings, SignSettings, Source,
};
use crate::events::{Event, ImageSummary, PlannedImage, PlatformSummary, PushedSummary};
use crate::git;
use crate::platform::Platform;
use crate::reference::Repository;
use crate::workspace::Workspace;
use oci_spec::image::{
    ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES,
    ANNOTATION_REVISION, ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION,
};

/// [`Plan::epoch_source`] when the user set `SOURCE_DATE_EPOCH`.
pub const EPOCH_FROM_ENV: &str = "SOURCE_DATE_EPOCH";

/// The name recorded as `org.opencontainers.image.base.name` for the built-in base.
pub const BUILTIN_BASE_NAME: &str = "cargo-containerize/static";

/// One image to produce.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Image name: the binary name, lowercased to fit OCI repository rules.
    pub name: String,
    /// The `[[bin]]` target.
    pub bin: String,
    /// Its package.
    pub package: String,
    /// Package version.
    pub version: String,
    /// Resolved configuration.
    pub settings: ImageSettings,
    /// Absolute assets directory, if configured.
    pub assets_dir: Option<PathBuf>,
    /// Tags (in the OCI layout and, with `--push`, in the registry).
    pub tags: Vec<String>,
    /// The most specific of `tags` (the first given, the release's `1.2.3`, or the
    /// commit's among the defaults): `merge` finds each platform's image under its
    /// [`platform_tag`], as a tag another commit's run is least likely to have moved.
    pub pin_tag: String,
    /// Where it is pushed (with `--push`).
    pub repository: Option<Repository>,
    /// OCI annotations for the manifest (and labels for the config), sorted.
    pub annotations: BTreeMap<String, String>,
    /// `target/containerize/<name>/`.
    pub out_dir: PathBuf,
    /// The platforms built, sorted; each is one manifest (and one SBOM) of the image.
    pub platforms: Vec<PlatformPlan>,
}

impl ImagePlan {
    /// The tags a push sets: the image's tags, or with `per_platform` each platform's
    /// [`platform_tag`]s (by platform, then tag).
    pub fn registry_tags(&self, per_platform: bool) -> Vec<(Option<Platform>, String)> {
        if !per_platform {
            return self.tags.iter().map(|t| (None, t.clone())).collect();
        }
        self.platforms
            .iter()
            .flat_map(|p| {
                self.tags
                    .iter()
                    .map(move |t| (Some(p.platform), platform_tag(t, p.platform)))
            })
            .collect()
    }
}

/// One platform of an image: what its build, base and SBOM are keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPlan {
    /// The target platform (its Rust target triple is [`Platform::triple`]).
    pub platform: Platform,
    /// One SBOM per `--sbom` format: `target/containerize/<image>/sbom.<os>-<arch>.cdx.json`
    /// (CycloneDX), `….spdx.json` (SPDX); none with `--sbom none`.
    pub sboms: Vec<PlannedSbom>,
    /// `target/containerize/<image>/provenance.<os>-<arch>.intoto.json`, unless
    /// `--provenance=false` (or `provenance = false` in the metadata).
    pub provenance: Option<PathBuf>,
    /// With `--audit`: `target/containerize/<image>/vulnerabilities.<os>-<arch>.cdx.json`
    /// (next to the SBOMs, in `--sbom-dir` if given), the CycloneDX vulnerabilities of
    /// what the platform's binary links.
    pub vulnerabilities: Option<PathBuf>,
}

/// One SBOM file of an image platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSbom {
    /// Its format.
    pub format: SbomFormat,
    /// `target/containerize/<image>/sbom.<os>-<arch>.<cdx|spdx>.json`.
    pub path: PathBuf,
}

/// One `cargo build` invocation: a platform and the binaries it must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The target platform.
    pub platform: Platform,
    /// Packages to pass with `-p`, sorted.
    pub packages: Vec<String>,
    /// Binaries to pass with `--bin`, sorted.
    pub bins: Vec<String>,
}

/// Everything a run will do: after planning, the stages read this and nothing else of
/// the settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Images, sorted by name.
    pub images: Vec<ImagePlan>,
    /// Builds, one per platform.
    pub builds: Vec<BuildPlan>,
    /// `target/containerize/`.
    pub out_dir: PathBuf,
    /// `target/containerize/oci/`.
    pub layout_dir: PathBuf,
    /// `target/containerize/cache/`.
    pub cache_dir: PathBuf,
    /// Timestamp for layers of the app and the config's `created`.
    pub epoch: u64,
    /// Where `epoch` came from.
    pub epoch_source: &'static str,
    /// gzip level.
    pub compression_level: u32,
    /// Layer compression (`--compression`, else the workspace metadata's, else gzip).
    pub compression: Compression,
    /// The registry image to build on (`--base`, `CARGO_CONTAINERIZE_BASE`, or `base` in
    /// `[workspace.metadata.containerize]`), or `None` for the built-in base.
    pub base: Option<String>,
    /// Where the images go besides the run's layout.
    pub outputs: Outputs,
    /// How cargo is run (builds and the SBOM's `cargo metadata`).
    pub cargo: CargoOptions,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// How registries are spoken to (`--base` pulls and `--push`).
    pub registry: RegistrySettings,
    /// Who and what built this, for the provenance of every image that has one.
    pub provenance: ProvenancePlan,
    /// `--audit`: where the advisory database is and what fails the run (each image's
    /// own threshold and ignore list are in its settings).
    pub audit: Option<crate::config::audit::AuditSettings>,
    /// `merge --from`: image and platform → the digest its `--per-platform` push recorded
    /// (read by digest; the other platforms by their per-platform tags).
    pub merge_from: BTreeMap<(String, Platform), String>,
}

/// Every output of a run besides `target/containerize/oci/`. A new kind of output is a
/// field here and a sink that writes it.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--oci-layout-path`: a second OCI layout.
    pub oci_layout_path: Option<PathBuf>,
    /// `--tarball`: an OCI archive.
    pub tarball: Option<PathBuf>,
    /// The platform the archive's `manifest.json` describes: `--tarball-platform`, else
    /// the host's.
    pub tarball_platform: Option<Platform>,
    /// `--push`: every image with a repository goes to its registry, SBOMs attached.
    pub push: bool,
    /// `--per-platform`: each platform's manifest is pushed on its own, tagged with
    /// [`platform_tag`] of every tag, and no index (`merge` makes it later).
    pub per_platform: bool,
    /// `--sbom`: the formats, sorted; empty for none.
    pub sbom: Vec<SbomFormat>,
    /// `--sign-key`: images, indexes and attestations get Sigstore bundles.
    pub sign: Option<SignSettings>,
    /// Kubernetes YAML directory (`target/containerize/`, or `--kube-dir`); `None` with
    /// `--no-kube`.
    pub kube_dir: Option<PathBuf>,
    /// `--image-refs`: one reference per line.
    pub image_refs: Option<PathBuf>,
    /// `--tag-only`: references name a tag, not the digest.
    pub tag_only: bool,
    /// `--load`: a local container runtime.
    pub load: Option<LoadTarget>,
    /// `compose.yaml` next to the Kubernetes YAML (in `target/containerize/` with
    /// `--no-kube`); `None` with `--no-compose` or when no image has `compose = true`.
    pub compose: Option<PathBuf>,
}

impl Plan {
    /// Every platform of the run, sorted (what a `--base` is pulled for).
    pub fn platforms(&self) -> Vec<Platform> {
        self.builds.iter().map(|b| b.platform).collect()
    }
}

/// Errors found while planning.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    /// The configured assets directory is missing.
    #[error("assets directory `{}` (from {source_desc}) does not exist or is not a directory", path.display())]
    #[diagnostic(
        code(containerize::config),
        help("create it, or fix `assets` (it is relative to the package's directory)")
    )]
    MissingAssets {
        /// The absolute path.
        path: PathBuf,
        /// The table that set it.
        source_desc: String,
    },
    /// The assets directory leaves the workspace (by `..` or a symlink).
    #[error(
        "assets directory `{}` (from {source_desc}) is outside the workspace `{}`{}",
        path.display(),
        workspace.display(),
        if resolved != path { format!(" (it resolves to `{}`)", resolved.display()) } else { String::new() }
    )]
    #[diagnostic(
        code(containerize::config),
        help(
            "move the files into the workspace, or set `assets-outside-workspace = true` next to `assets` if every file there belongs in the image"
        )
    )]
    AssetsOutsideWorkspace {
        /// The path as configured (joined to the package directory).
        path: PathBuf,
        /// Where it really is.
        resolved: PathBuf,
        /// The workspace root.
        workspace: PathBuf,
        /// The table that set it.
        source_desc: String,
    },
    /// A binary whose name cannot be an image name.
    #[error("binary `{0}` cannot be used as an image name")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "image names may use lowercase letters, digits, `.`, `_` and `-`; and `oci` and `cache` are reserved"
        )
    )]
    BadImageName(String),
    /// Two binaries whose names give the same image name (`Foo` and `foo`).
    #[error(
        "binaries `{first}` (package `{first_package}`) and `{second}` (package `{second_package}`) both become image `{name}`"
    )]
    #[diagnostic(
        code(containerize::usage),
        help(
            "image names are the binary names in lowercase: rename one of the binaries ([[bin]] name), or select one with -p/--bin"
        )
    )]
    ImageNameCollision {
        /// The shared image name.
        name: String,
        /// One binary.
        first: String,
        /// Its package.
        first_package: String,
        /// The other binary.
        second: String,
        /// Its package.
        second_package: String,
    },
    /// A metadata value that failed validation.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// A repository that does not parse.
    #[error("invalid repository from {origin}: {message}")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "use REGISTRY/NAMESPACE with lowercase path components, e.g. ghcr.io/my-org or 127.0.0.1:5000/team"
        )
    )]
    BadRepository {
        /// `--repo` or the metadata table.
        origin: String,
        /// The parse error.
        message: String,
    },
    /// Pushing without a repository.
    #[error("--push needs a repository to push to")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "set one of:\n  --repo REGISTRY/NAMESPACE               (e.g. --repo ghcr.io/my-org)\n  CARGO_CONTAINERIZE_REPO=REGISTRY/NAMESPACE\n  repository = \"REGISTRY/NAMESPACE\"      in [workspace.metadata.containerize] or [package.metadata.containerize]"
        )
    )]
    MissingRepo,
    /// `--tag-from-git` without a tag at HEAD, or on a dirty tree.
    #[error("--tag-from-git: {0}")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "tag the release commit (git tag v1.2.3) and build from a clean checkout, or pass tags with -t"
        )
    )]
    GitTag(String),
    /// git refused the repository (another user's checkout), so it has no tags to read.
    #[error("--tag-from-git: git refused to read the repository:\n{message}")]
    #[diagnostic(
        code(containerize::usage),
        help("if you trust this checkout, run: {fix}")
    )]
    GitRefused {
        /// git's own message.
        message: String,
        /// The `git config` command that fixes it.
        fix: String,
    },
    /// A `merge --from` file that cannot be used.
    #[error("--from {}: the file {message}", file.display())]
    #[diagnostic(
        code(containerize::usage),
        help(
            "give the image.json each `cargo containerize --push --per-platform` run wrote (target/containerize/<image>/image.json), for the images and --repo of this merge"
        )
    )]
    MergeFrom {
        /// The file given.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `--naming bare` with more than one image.
    #[error("--naming bare gives every image the same name, but {0} images are selected")]
    #[diagnostic(
        code(containerize::usage),
        help("select one binary with -p/--bin, or use --naming bin")
    )]
    BareWithSeveral(usize),
    /// A per-platform tag (`TAG-ARCH`) that is not a valid tag (over 128 characters).
    #[error("--per-platform tag `{tag}` of image `{image}` is not a valid tag: {message}")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "--per-platform adds `-amd64`/`-arm64` to every tag: shorten the tag (-t) to at most 122 characters"
        )
    )]
    PlatformTag {
        /// The tag with its platform suffix.
        tag: String,
        /// The image.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// zstd layers cannot go into a docker archive (`--tarball`, `--load`).
    #[error("{0} writes a docker archive, whose layers must be gzip, but the layers are zstd")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "build with --compression gzip for {0}; zstd images go to a registry (--push) or stay in the OCI layout"
        )
    )]
    ZstdArchive(&'static str),
    /// `--tarball-platform` names a platform an image is not built for.
    #[error("--tarball-platform {platform}: image `{image}` is not built for it (only {built})")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "add it with --platform {platform} (or `platforms` in the metadata), or pick one of those"
        )
    )]
    TarballPlatform {
        /// The requested platform.
        platform: Platform,
        /// The image without it.
        image: String,
        /// Its platforms.
        built: String,
    },
}

/// The tag a `--per-platform` push gives one platform's image for `tag`, and where
/// `merge` finds it: `1.2.3` → `1.2.3-arm64`. The architecture alone names the platform,
/// as every platform built is `linux/*`.
pub fn platform_tag(tag: &str, platform: Platform) -> String {
    format!("{tag}-{}", platform.arch())
}

/// Makes the image name for a binary: lowercase; must fit the OCI path-component grammar.
pub fn image_name(bin: &str) -> Result<String, PlanError> {
    let name = bin.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !matches!(name.as_str(), "oci" | "cache");
    if valid {
        Ok(name)
    } else {
        Err(PlanError::BadImageName(bin.to_string()))
    }
}

/// Formats seconds since 1970 as RFC 3339 UTC.
pub fn rfc3339(epoch: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The tags of an image: `-t` if given; `--tag-from-git` from the exact tag at HEAD;
/// else `latest`, the crate version and the short commit (`-dirty` for a changed tree,
/// so a dirty build never takes a clean commit's tag). Also which of them is the most
/// specific (the first, or the commit's among the defaults): see [`ImagePlan::pin_tag`].
fn plan_tags(
    settings: &Settings,
    ws: &Workspace,
    version: &str,
) -> Result<(Vec<String>, usize), PlanError> {
    if !settings.tags.is_empty() {
        return Ok((settings.tags.clone(), 0));
    }
    if settings.tag_from_git {
        if let Some(refusal) = &ws.git.refusal {
            return Err(PlanError::GitRefused {
                message: refusal.clone(),
                fix: git::safe_directory_fix(&ws.root),
            });
        }
        let Some(tag) = &ws.git.exact_tag else {
            return Err(PlanError::GitTag("HEAD has no tag".into()));
        };
        if ws.git.dirty {
            return Err(PlanError::GitTag(format!(
                "the working tree has uncommitted changes; refusing to publish them as `{tag}`"
            )));
        }
        return Ok((git::release_tags(tag), 0));
    }
    let mut tags = vec!["latest".to_string(), version.replace('+', "_")];
    tags.extend(ws.git.short_commit());
    let last = tags.len() - 1;
    Ok((tags, last))
}

/// Plans every image of the selection.
pub fn plan_images(ws: &Workspace, settings: &Settings) -> Result<Plan, PlanError> {
    let (epoch, epoch_source) = match (settings.source_date_epoch, ws.git.commit_time) {
        (Some(e), _) => (e, EPOCH_FROM_ENV),
        (None, Some(t)) => (t, "the last commit"),
        (None, None) => (0, "the default (0)"),
    };
    let out_dir = ws.target_dir.join("containerize");
    let revision = ws.git.commit.as_ref().map(|c| {
        if ws.git.dirty {
            format!("{c}-dirty")
        } else {
            c.clone()
        }
    });

    let mut images = Vec::new();
    for bin in &ws.bins {
        let ws_source = Source::Workspace(ws.root_manifest_display.clone());
        let mut layers = vec![
            (&ws.config, ws_source),
            (
                &bin.package_config,
                Source::Package(bin.manifest_display.clone()),
            ),
        ];
        if let Some(b) = &bin.bin_config {
            layers.push((
                b,
                Source::Bin(bin.manifest_display.clone(), bin.name.clone()),
            ));
        }
        // The command line's layer (--image-label, --image-annotation) goes on top.
        layers.push((
            &settings.overrides,
            Source::Cli("--image-label/--image-annotation"),
        ));
        let mut image_settings = config::resolve_image(&layers, settings.platforms.as_deref())
            .map_err(|e| e.located(&ws.root))?;
        if let Some(a) = settings.auditable {
            image_settings.auditable = a;
        }
        if let Some(p) = settings.provenance {
            image_settings.provenance = p;
        }
        let assets_dir = match &image_settings.assets {
            None => None,
            Some((dir, _)) => {
                let path = bin.package_dir.join(dir);
                if !path.is_dir() {
                    return Err(PlanError::MissingAssets {
                        path,
                        source_desc: image_settings.assets_source.to_string(),
                    });
                }
                // Packaging reads the resolved directory and never follows a symlink in
                // it, so the check on the resolved path covers every file packaged.
                let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                let workspace = std::fs::canonicalize(&ws.root).unwrap_or_else(|_| ws.root.clone());
                if !resolved.starts_with(&workspace) && !image_settings.assets_outside_workspace {
                    return Err(PlanError::AssetsOutsideWorkspace {
                        path,
                        resolved,
                        workspace,
                        source_desc: image_settings.assets_source.to_string(),
                    });
                }
                Some(resolved)
            }
        };
        let name = image_name(&bin.name)?;
        let (tags, pin) = plan_tags(settings, ws, &bin.version)?;
        let repository = match (&settings.repo, &image_settings.repository) {
            (Some(r), _) => Some((r.clone(), "--repo / CARGO_CONTAINERIZE_REPO".to_string())),
            (None, Some((r, source))) => Some((r.clone(), format!("`repository` in {source}"))),
            (None, None) => None,
        };
        let repository = match repository {
            None if settings.push => return Err(PlanError::MissingRepo),
            None => None,
            Some((r, origin)) => {
                let repo = Repository::parse(&r).map_err(|e| PlanError::BadRepository {
                    origin,
                    message: e.to_string(),
                })?;
                Some(match settings.naming {
                    Naming::Bin => repo.join(&image_name(&bin.name)?),
                    Naming::Package => repo.join(&image_name(&bin.package)?),
                    Naming::Bare => repo,
                })
            }
        };

        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_TITLE.to_string(), bin.name.clone());
        annotations.insert(ANNOTATION_VERSION.to_string(), bin.version.clone());
        annotations.insert(ANNOTATION_CREATED.to_string(), rfc3339(epoch));
        annotations.insert(
            ANNOTATION_BASE_IMAGE_NAME.to_string(),
            BUILTIN_BASE_NAME.to_string(),
        );
        let optional = [
            (ANNOTATION_SOURCE, &bin.repository),
            (ANNOTATION_REVISION, &revision),
            (ANNOTATION_DESCRIPTION, &bin.description),
            (ANNOTATION_LICENSES, &bin.license),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                annotations.insert(k.to_string(), v.clone());
            }
        }
        annotations.extend(image_settings.annotations.clone());

        let image_dir = out_dir.join(&name);
        let platforms = image_settings
            .platforms
            .iter()
            .map(|&platform| {
                let sbom_dir = match &settings.sbom_dir {
                    Some(dir) => SbomDir::Shared { dir, image: &name },
                    None => SbomDir::Image(&image_dir),
                };
                plan_platform(
                    &image_dir,
                    sbom_dir,
                    platform,
                    &settings.sbom,
                    image_settings.provenance,
                    settings.audit.is_some(),
                )
            })
            .collect();
        images.push(ImagePlan {
            out_dir: image_dir,
            platforms,
            name,
            bin: bin.name.clone(),
            package: bin.package.clone(),
            version: bin.version.clone(),
            settings: image_settings,
            assets_dir,
            pin_tag: tags[pin].clone(),
            tags,
            repository,
            annotations,
        });
    }
    images.sort_by(|a, b| (&a.name, &a.bin).cmp(&(&b.name, &b.bin)));
    if let Some(pair) = images.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(PlanError::ImageNameCollision {
            name: pair[0].name.clone(),
            first: pair[0].bin.clone(),
            first_package: pair[0].package.clone(),
            second: pair[1].bin.clone(),
            second_package: pair[1].package.clone(),
        });
    }
    if settings.naming == Naming::Bare && settings.push && images.len() > 1 {
        return Err(PlanError::BareWithSeveral(images.len()));
    }

    let mut by_platform: BTreeMap<Platform, BuildPlan> = BTreeMap::new();
    for img in &images {
        for &platform in &img.settings.platforms {
            let b = by_platform.entry(platform).or_insert_with(|| BuildPlan {
                platform,
                packages: Vec::new(),
                bins: Vec::new(),
            });
            b.packages.push(img.package.clone());
            b.bins.push(img.bin.clone());
        }
    }
    let builds = by_platform
        .into_values()
        .map(|mut b| {
            b.packages.sort();
            b.packages.dedup();
            b.bins.sort();
            b
        })
        .collect();

    if let (Some(platform), Some(_)) = (settings.tarball_platform, &settings.tarball)
        && let Some(image) = images
            .iter()
            .find(|i| !i.settings.platforms.contains(&platform))
    {
        let built: Vec<String> = image
            .settings
            .platforms
            .iter()
            .map(|p| p.to_string())
            .collect();
        return Err(PlanError::TarballPlatform {
            platform,
            image: image.name.clone(),
            built: built.join(", "),
        });
    }
    for image in images.iter().filter(|_| settings.per_platform) {
        for (_, tag) in image.registry_tags(true) {
            crate::reference::validate_tag(&tag).map_err(|message| PlanError::PlatformTag {
                tag: tag.clone(),
                image: image.name.clone(),
                message,
            })?;
        }
    }
    let compression = settings
        .compression
        .or(ws.config.compression)
        .unwrap_or_default();
    if compression == Compression::Zstd && (settings.tarball.is_some() || settings.load.is_some()) {
        let what = if settings.tarball.is_some() {
            "--tarball"
        } else {
            "--load"
        };
        return Err(PlanError::ZstdArchive(what));
    }
    let compose = (!settings.no_compose && images.iter().any(|i| i.settings.compose)).then(|| {
        settings
            .kube_dir
            .as_ref()
            .unwrap_or(&out_dir)
            .join(COMPOSE_FILE)
    });
    let provenance = provenance::plan_provenance(ws, settings, &images);
    let merge_from = merge_sources(&settings.merge_from, &images)?;
    Ok(Plan {
        images,
        builds,
        layout_dir: out_dir.join("oci"),
        cache_dir: out_dir.join("cache"),
        epoch,
        epoch_source,
        compression_level: settings.compression_level,
        compression,
        base: settings.base.clone().or_else(|| ws.config.base.clone()),
        outputs: Outputs {
            oci_layout_path: settings.oci_layout_path.clone(),
            tarball: settings.tarball.clone(),
            tarball_platform: settings.tarball_platform.or_else(Platform::host),
            push: settings.push,
            per_platform: settings.per_platform,
            sign: settings.sign.clone(),
            sbom: settings.sbom.clone(),
            kube_dir: (!settings.no_kube)
                .then(|| settings.kube_dir.clone().unwrap_or_else(|| out_dir.clone())),
            image_refs: settings.image_refs.clone(),
            tag_only: settings.tag_only,
            load: settings.load.clone(),
            compose,
        },
        cargo: settings.cargo.clone(),
        manifest_path: settings.manifest_path.clone(),
        registry: settings.registry.clone(),
        provenance,
        audit: settings.audit.clone(),
        merge_from,
        out_dir,
    })
}

/// `merge --from`: each file is the `image.json` of a `--push --per-platform` run; the
/// platforms it records pushed, by manifest digest, for this plan's images and
/// repositories.
fn merge_sources(
    files: &[PathBuf],
    images: &[ImagePlan],
) -> Result<BTreeMap<(String, Platform), String>, PlanError> {
    let mut out: BTreeMap<(String, Platform), String> = BTreeMap::new();
    for file in files {
        let bad = |message: String| PlanError::MergeFrom {
            file: file.clone(),
            message,
        };
        let bytes = std::fs::read(file).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let summary: ImageSummary = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("is not an image.json of this tool: {e}")))?;
        let Some(image) = images.iter().find(|i| i.name == summary.name) else {
            return Err(bad(format!(
                "describes image `{}`, which this merge does not select",
                summary.name
            )));
        };
        let pushed: Vec<(&PlatformSummary, &PushedSummary)> = summary
            .platforms
            .iter()
            .filter_map(|p| Some((p, p.pushed.as_ref()?)))
            .collect();
        if pushed.is_empty() {
            return Err(bad(
                "records no platform pushed on its own: it was not written by `--push --per-platform`".into(),
            ));
        }
        let repository = image.repository.as_ref().map(ToString::to_string);
        for (p, push) in pushed {
            let platform: Platform = p
                .platform
                .parse()
                .map_err(|_| bad(format!("names an unknown platform `{}`", p.platform)))?;
            if repository.as_deref() != Some(push.repository.as_str()) {
                return Err(bad(format!(
                    "records `{}` pushed to {}, but this merge joins {}",
                    summary.name,
                    push.repository,
                    repository.as_deref().unwrap_or("no repository")
                )));
            }
            let key = (summary.name.clone(), platform);
            match out.get(&key) {
                Some(other) if *other != p.digest => {
                    return Err(bad(format!(
                        "records {platform} of `{}` as {}, another --from file as {other}",
                        summary.name, p.digest
                    )));
                }
                _ => {
                    out.insert(key, p.digest.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The compose file's name.
pub const COMPOSE_FILE: &str = "compose.yaml";

/// `sbom.linux-amd64.cdx.json` (CycloneDX), `sbom.linux-amd64.spdx.json` (SPDX).
pub fn sbom_file_name(platform: Platform, format: SbomFormat) -> String {
    let ext = match format {
        SbomFormat::CycloneDx => "cdx",
        SbomFormat::Spdx => "spdx",
    };
    format!("sbom.{}.{ext}.json", platform_slug(platform))
}

/// Where an image's SBOMs go.
#[derive(Debug, Clone, Copy)]
pub enum SbomDir<'a> {
    /// Next to the image, in its directory.
    Image(&'a std::path::Path),
    /// `--sbom-dir`: one directory for every image, file names prefixed with the image's.
    Shared {
        /// The directory.
        dir: &'a std::path::Path,
        /// The image's name.
        image: &'a str,
    },
}

impl SbomDir<'_> {
    /// The file `name` there (prefixed with the image's name in a shared directory).
    pub fn file(self, name: &str) -> PathBuf {
        match self {
            SbomDir::Image(dir) => dir.join(name),
            SbomDir::Shared { dir, image } => dir.join(format!("{image}.{name}")),
        }
    }
}

/// One platform of an image, with the files written next to it: one SBOM per format (in
/// `sbom_dir`), if `provenance` its provenance, and if `audit` its vulnerabilities
/// document (beside the SBOMs).
pub fn plan_platform(
    image_dir: &std::path::Path,
    sbom_dir: SbomDir<'_>,
    platform: Platform,
    sbom: &[SbomFormat],
    provenance: bool,
    audit: bool,
) -> PlatformPlan {
    PlatformPlan {
        platform,
        sboms: sbom
            .iter()
            .map(|&format| PlannedSbom {
                format,
                path: sbom_dir.file(&sbom_file_name(platform, format)),
            })
            .collect(),
        provenance: provenance.then(|| image_dir.join(provenance_file_name(platform))),
        vulnerabilities: audit.then(|| {
            sbom_dir.file(&format!(
                "vulnerabilities.{}.cdx.json",
                platform_slug(platform)
            ))
        }),
    }
}

/// `provenance.linux-amd64.intoto.json`.
pub fn provenance_file_name(platform: Platform) -> String {
    format!("provenance.{}.intoto.json", platform_slug(platform))
}

/// `linux-amd64`: a platform as a file-name part.
pub fn platform_slug(platform: Platform) -> String {
    platform.to_string().replace('/', "-")
}

/// The `plan` event of a plan.
pub fn plan_event(plan: &Plan) -> Event {
    let push = plan.outputs.push;
    let per_platform = plan.outputs.per_platform;
    Event::Plan {
        images: plan
            .images
            .iter()
            .map(|i| planned_image(i, push, per_platform))
            .collect(),
        layout: plan.layout_dir.display().to_string(),
        push,
    }
}

/// The event form of a planned image; `push` says whether the run pushes it, and
/// `per_platform` whether under per-platform tags.
fn planned_image(image: &ImagePlan, push: bool, per_platform: bool) -> PlannedImage {
    let push_refs = match (&image.repository, push) {
        (Some(repo), true) => image
            .registry_tags(per_platform)
            .into_iter()
            .map(|(_, t)| format!("{repo}:{t}"))
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_lowercase_oci_components() {
        assert_eq!(image_name("Hello_World").unwrap(), "hello_world");
        assert!(image_name("-x").is_err());
        assert!(image_name("oci").is_err());
        assert!(image_name("a b").is_err());
    }

    #[test]
    fn rfc3339_of_epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
