//! Workspace × Settings → [`Plan`]: every image, platform, tag and output path, fixed
//! before anything is built (so a dry run or a JSON event stream can show it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{self, ConfigError, ImageSettings, Naming, Settings, Source};
use crate::git;
use crate::platform::Platform;
use crate::registry::reference::Repository;
use crate::workspace::Workspace;

/// OCI annotation keys used on manifests and as config labels.
pub mod keys {
    /// Image title (the binary name).
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// Crate version.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// Build time (SOURCE_DATE_EPOCH).
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// `package.repository`.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// Git commit.
    pub const REVISION: &str = "org.opencontainers.image.revision";
    /// `package.description`.
    pub const DESCRIPTION: &str = "org.opencontainers.image.description";
    /// `package.license`.
    pub const LICENSES: &str = "org.opencontainers.image.licenses";
    /// Name of the base image.
    pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
    /// Digest of the base image.
    pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
    /// `<image>:<tag>` of an entry in an OCI layout's index.json.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

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
    /// Where it is pushed (with `--push`).
    pub repository: Option<Repository>,
    /// OCI annotations for the manifest (and labels for the config), sorted.
    pub annotations: BTreeMap<String, String>,
    /// `target/containerize/<name>/`.
    pub out_dir: PathBuf,
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

/// Everything a run will do.
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
    /// Extra OCI layout output.
    pub oci_layout_path: Option<PathBuf>,
    /// OCI archive output.
    pub tarball: Option<PathBuf>,
    /// The registry image to build on (`--base`, `CARGO_CONTAINERIZE_BASE`, or `base` in
    /// `[workspace.metadata.containerize]`), or `None` for the built-in base.
    pub base: Option<String>,
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
    /// A binary whose name cannot be an image name.
    #[error("binary `{0}` cannot be used as an image name")]
    #[diagnostic(
        code(containerize::usage),
        help(
            "image names may use lowercase letters, digits, `.`, `_` and `-`; and `oci` and `cache` are reserved"
        )
    )]
    BadImageName(String),
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
    /// `--naming bare` with more than one image.
    #[error("--naming bare gives every image the same name, but {0} images are selected")]
    #[diagnostic(
        code(containerize::usage),
        help("select one binary with -p/--bin, or use --naming bin")
    )]
    BareWithSeveral(usize),
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
/// so a dirty build never takes a clean commit's tag).
fn plan_tags(settings: &Settings, ws: &Workspace, version: &str) -> Result<Vec<String>, PlanError> {
    if !settings.tags.is_empty() {
        return Ok(settings.tags.clone());
    }
    if settings.tag_from_git {
        let Some(tag) = &ws.git.exact_tag else {
            return Err(PlanError::GitTag("HEAD has no tag".into()));
        };
        if ws.git.dirty {
            return Err(PlanError::GitTag(format!(
                "the working tree has uncommitted changes; refusing to publish them as `{tag}`"
            )));
        }
        return Ok(git::release_tags(tag));
    }
    let mut tags = vec!["latest".to_string(), version.replace('+', "_")];
    tags.extend(ws.git.short_commit());
    Ok(tags)
}

/// Plans every image of the selection.
pub fn plan_images(ws: &Workspace, settings: &Settings) -> Result<Plan, PlanError> {
    let (epoch, epoch_source) = match (settings.source_date_epoch, ws.git.commit_time) {
        (Some(e), _) => (e, "SOURCE_DATE_EPOCH"),
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
        let image_settings = config::resolve_image(&layers, settings.platforms.as_deref())?;
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
                Some(path)
            }
        };
        let name = image_name(&bin.name)?;
        let tags = plan_tags(settings, ws, &bin.version)?;
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
        annotations.insert(keys::TITLE.to_string(), bin.name.clone());
        annotations.insert(keys::VERSION.to_string(), bin.version.clone());
        annotations.insert(keys::CREATED.to_string(), rfc3339(epoch));
        annotations.insert(keys::BASE_NAME.to_string(), BUILTIN_BASE_NAME.to_string());
        let optional = [
            (keys::SOURCE, &bin.repository),
            (keys::REVISION, &revision),
            (keys::DESCRIPTION, &bin.description),
            (keys::LICENSES, &bin.license),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                annotations.insert(k.to_string(), v.clone());
            }
        }
        annotations.extend(image_settings.annotations.clone());

        images.push(ImagePlan {
            out_dir: out_dir.join(&name),
            name,
            bin: bin.name.clone(),
            package: bin.package.clone(),
            version: bin.version.clone(),
            settings: image_settings,
            assets_dir,
            tags,
            repository,
            annotations,
        });
    }
    images.sort_by(|a, b| a.name.cmp(&b.name));
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

    Ok(Plan {
        images,
        builds,
        layout_dir: out_dir.join("oci"),
        cache_dir: out_dir.join("cache"),
        out_dir,
        epoch,
        epoch_source,
        compression_level: settings.compression_level,
        oci_layout_path: settings.oci_layout_path.clone(),
        tarball: settings.tarball.clone(),
        base: settings.base.clone().or_else(|| ws.config.base.clone()),
    })
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
