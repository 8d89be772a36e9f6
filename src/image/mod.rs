//! Layers, image configs, manifests and indexes, written to OCI layouts. Never touches the
//! network: registries (and tarballs) consume the same values.

pub mod archive;
pub mod artifact;
pub mod assets;
pub mod base;
pub mod cache;
pub mod config;
pub mod diff;
pub mod gzip;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod package;
pub mod sink;
pub mod tar;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::canonical::JsonBlob;
use crate::platform::Platform;

/// A compressed layer in a blob directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the compressed bytes.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// gzip or zstd (its media type).
    #[serde(default)]
    pub compression: crate::config::Compression,
}

impl LayerBlob {
    /// The layer's OCI media type.
    pub fn media_type(&self) -> oci_spec::image::MediaType {
        match self.compression {
            crate::config::Compression::Gzip => oci_spec::image::MediaType::ImageLayerGzip,
            crate::config::Compression::Zstd => oci_spec::image::MediaType::ImageLayerZstd,
        }
    }
}

/// A layer and the history line that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob.
    pub blob: LayerBlob,
    /// `created_by` in the config's history.
    pub created_by: String,
}

/// One platform's image: config, manifest and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The platform.
    pub platform: Platform,
    /// The config blob.
    pub config: JsonBlob,
    /// The manifest blob.
    pub manifest: JsonBlob,
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
}

impl Image {
    /// Compressed size: config + layers.
    pub fn compressed_size(&self) -> u64 {
        self.config.size() + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// All platforms of one named image, with the index when there is more than one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Image name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Per platform, sorted.
    pub images: Vec<Image>,
    /// The image index, for more than one platform.
    pub index: Option<JsonBlob>,
}

impl ImageSet {
    /// The blob that the name points at, and its media type: the index, or the only
    /// manifest. (`images` is never empty: `manifest::assemble_set` guarantees it.)
    pub fn top(&self) -> (&JsonBlob, oci_spec::image::MediaType) {
        match (&self.index, self.images.first()) {
            (Some(index), _) => (index, oci_spec::image::MediaType::ImageIndex),
            (None, Some(img)) => (&img.manifest, oci_spec::image::MediaType::ImageManifest),
            (None, None) => unreachable!("an ImageSet always has at least one image"),
        }
    }

    /// Compressed size of all platforms (shared layers counted once per platform).
    pub fn compressed_size(&self) -> u64 {
        self.images.iter().map(Image::compressed_size).sum()
    }
}

/// `blobs/sha256/<hex>` under a blob directory for a `sha256:<hex>` digest.
pub fn blob_path(blobs_dir: &Path, digest: &str) -> PathBuf {
    blobs_dir.join(digest.strip_prefix("sha256:").unwrap_or(digest))
}
