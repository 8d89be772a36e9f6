//! Image archives that every runtime loads: an OCI layout (`oci-layout`, `index.json`,
//! `blobs/`) plus docker's `manifest.json`, one entry per image for one platform, with
//! the names the runtime gives it (`RepoTags`). `docker load` (20.10 reads only
//! `manifest.json`; 25+ reads either), `podman load` (OCI archive for one name, docker
//! archive for several) and `ctr images import` all accept it.

use serde::Serialize;

use crate::canonical::to_canonical_json;
use crate::image::layout::Layout;
use crate::image::tar::Entry;
use crate::image::{Image, ImageSet};
use crate::platform::Platform;

/// One `manifest.json` entry: an image of one platform and the names it is loaded under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerEntry {
    /// `blobs/sha256/<hex>` of the config.
    pub config: String,
    /// `name:tag` references.
    pub repo_tags: Vec<String>,
    /// `blobs/sha256/<hex>` of each layer, base first.
    pub layers: Vec<String>,
}

fn blob_member(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The image of `set` for `platform`, else its first (an image built only for another
/// platform is still loadable, e.g. under qemu).
pub fn pick_platform(set: &ImageSet, platform: Option<Platform>) -> &Image {
    set.images
        .iter()
        .find(|i| Some(i.platform) == platform)
        .unwrap_or(&set.images[0])
}

/// The `manifest.json` entry of `image` under `names`.
pub fn docker_entry(image: &Image, names: Vec<String>) -> DockerEntry {
    DockerEntry {
        config: blob_member(&image.config.digest),
        repo_tags: names,
        layers: image
            .layers
            .iter()
            .map(|l| blob_member(&l.digest))
            .collect(),
    }
}

/// `manifest.json` as a tar entry.
pub fn manifest_json(entries: &[DockerEntry]) -> Result<Entry, serde_json::Error> {
    Ok(Entry::bytes(
        "manifest.json",
        0o644,
        to_canonical_json(&entries)?.bytes,
    ))
}

/// Tar entries of a docker archive: `manifest.json`, then the configs and layers it names
/// (each once), read from `src`.
pub fn docker_archive(
    src: &Layout,
    entries: &[DockerEntry],
) -> Result<Vec<Entry>, serde_json::Error> {
    let mut members: Vec<&String> = entries
        .iter()
        .flat_map(|e| std::iter::once(&e.config).chain(&e.layers))
        .collect();
    members.sort();
    members.dedup();
    let mut out = vec![manifest_json(entries)?];
    for member in members {
        let hex = member.trim_start_matches("blobs/sha256/");
        out.push(Entry::file(member, 0o644, src.blobs_dir().join(hex)));
    }
    Ok(out)
}
