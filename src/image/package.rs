//! ImagePlan + static binaries + base → [`ImageSet`]: the layers of one image (base,
//! assets, binary), reused from the cache when unchanged, and its documents for every
//! platform. Takes binary paths, not cargo types, and never touches the network: a
//! registry base arrives already pulled as [`Base::Pulled`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::fsutil::FsError;
use crate::image::assets::{AssetError, asset_entries};
use crate::image::base::{BASE_MTIME, base_entries};
use crate::image::cache::LayerCache;
use crate::image::config::{AssembleError, entrypoint};
use crate::image::layer::{Codec, cached_layer};
use crate::image::layout::Layout;
use crate::image::manifest::{assemble_image, assemble_set};
use crate::image::tar::Entry;
use crate::image::{ImageSet, Layer, LayerBlob};
use crate::output::human_size;
use crate::output::{Progress, Shell};
use crate::plan::ImagePlan;
use crate::platform::Platform;
use oci_spec::image::{ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME};

/// Binaries from this size on get a progress bar while their layer is compressed.
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// Errors of packaging.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PackageError {
    /// Writing layers.
    #[error(transparent)]
    #[diagnostic(
        code(containerize::layout),
        help("check that the target directory is writable and the disk is not full")
    )]
    Fs(#[from] FsError),
    /// Assets that cannot be packaged.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assets(#[from] AssetError),
    /// Documents.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assemble(#[from] AssembleError),
}

/// One platform of a base pulled from a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledPlatform {
    /// Layers, bottom first.
    pub layers: Vec<LayerBlob>,
    /// The base's `Env`.
    pub env: Vec<String>,
}

/// What images are built on.
#[derive(Debug, Clone)]
pub enum Base {
    /// The built-in distroless base: one layer, the same for every platform.
    Builtin(Layer),
    /// A registry image, per platform.
    Pulled {
        /// `registry/path:tag` as resolved.
        name: String,
        /// The digest it resolved to.
        digest: String,
        /// Per platform.
        platforms: BTreeMap<Platform, PulledPlatform>,
    },
}

impl Base {
    /// The built-in base layer (cached like any other layer).
    pub fn builtin(codec: Codec, cache: &LayerCache, layout: &Layout) -> Result<Base, FsError> {
        let (blob, _) = cached_layer(
            base_entries(),
            BASE_MTIME,
            codec,
            cache,
            layout,
            Progress::hidden,
        )?;
        Ok(Base::Builtin(Layer {
            blob,
            created_by: format!("{} built-in base {}", crate::TOOL_NAME, crate::TOOL_VERSION),
        }))
    }

    fn layers(
        &self,
        platform: Platform,
        image: &str,
    ) -> Result<(Vec<Layer>, Vec<String>), AssembleError> {
        match self {
            Base::Builtin(layer) => Ok((vec![layer.clone()], Vec::new())),
            Base::Pulled {
                name, platforms, ..
            } => {
                let p = platforms.get(&platform).ok_or_else(|| {
                    AssembleError::new(
                        "image",
                        image,
                        format!("the base {name} was not pulled for {platform}"),
                    )
                })?;
                let layers = p
                    .layers
                    .iter()
                    .map(|blob| Layer {
                        blob: blob.clone(),
                        created_by: format!("base {name}"),
                    })
                    .collect();
                Ok((layers, p.env.clone()))
            }
        }
    }
}

/// Where layers go and how they are made: shared by every image of a run.
#[derive(Debug, Clone, Copy)]
pub struct Packager<'a> {
    /// The base.
    pub base: &'a Base,
    /// mtime of the app layers.
    pub epoch: u64,
    /// How layers are compressed.
    pub codec: Codec,
    /// The layer cache.
    pub cache: &'a LayerCache,
    /// The layout the blobs go to.
    pub layout: &'a Layout,
}

/// Packages one image for all its platforms. `binaries` maps each platform to the static
/// executable built for it.
pub fn package_image(
    image: &ImagePlan,
    binaries: &BTreeMap<Platform, PathBuf>,
    packager: Packager<'_>,
    shell: &mut Shell,
) -> Result<ImageSet, PackageError> {
    let Packager {
        base,
        epoch,
        codec,
        cache,
        layout,
    } = packager;
    let started = std::time::Instant::now();
    let mut image = image.clone();
    if let Base::Pulled { name, digest, .. } = base {
        image
            .annotations
            .insert(ANNOTATION_BASE_IMAGE_NAME.to_string(), name.clone());
        image
            .annotations
            .insert(ANNOTATION_BASE_IMAGE_DIGEST.to_string(), digest.clone());
    }
    let assets = match (&image.assets_dir, &image.settings.assets) {
        (Some(dir), Some((_, dest))) => {
            let (blob, _) = cached_layer(
                asset_entries(dir, dest)?,
                epoch,
                codec,
                cache,
                layout,
                Progress::hidden,
            )?;
            Some(Layer {
                blob,
                created_by: format!("assets {dest}"),
            })
        }
        _ => None,
    };
    let mut images = Vec::new();
    for &platform in &image.settings.platforms {
        let bin = binaries.get(&platform).ok_or_else(|| {
            AssembleError::new(
                "image",
                &image.name,
                format!("no binary was built for {platform}"),
            )
        })?;
        let path_in_image = entrypoint(&image.bin);
        let entries = vec![Entry::file(
            path_in_image.trim_start_matches('/'),
            0o755,
            bin.clone(),
        )];
        // A bar while a large binary is compressed (a debug build of a big service takes
        // seconds); small ones are done before a bar would draw.
        let binary_size = std::fs::metadata(bin).map_or(0, |m| m.len());
        let progress = || {
            if binary_size < PROGRESS_MIN_BYTES {
                return Progress::hidden();
            }
            shell.progress(
                "Compressing",
                binary_size,
                format!("{} ({platform})", image.name),
            )
        };
        let (blob, reused) = cached_layer(entries, epoch, codec, cache, layout, progress)?;
        let verb = if reused { "Fresh" } else { "Packaged" };
        shell.status(
            verb,
            format!(
                "{} v{} ({platform}) {}",
                image.name,
                image.version,
                human_size(blob.size)
            ),
        );
        let (mut layers, base_env) = base.layers(platform, &image.name)?;
        layers.extend(assets.clone());
        layers.push(Layer {
            blob,
            created_by: format!("binary {path_in_image}"),
        });
        images.push(assemble_image(&image, platform, &layers, &base_env)?);
    }
    let set = assemble_set(&image, images)?;
    shell.verbose(
        "Timing",
        format!(
            "packaging {}: {:.3}s",
            image.name,
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(set)
}
