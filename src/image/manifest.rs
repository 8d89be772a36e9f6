//! Config + layers → image manifest; manifests → image index (oci-spec types, canonical
//! JSON).

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Descriptor, Digest, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, PlatformBuilder,
};

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::image::config::{AssembleError, arch, image_config};
use crate::image::{Image, ImageSet, Layer};
use crate::plan::ImagePlan;
use crate::platform::Platform;

/// A descriptor for a blob (digest strings are always produced by this tool).
pub fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
) -> Result<Descriptor, AssembleError> {
    let d: Digest = digest
        .parse()
        .map_err(|e| AssembleError::new("descriptor", digest, e))?;
    Ok(Descriptor::new(media_type, size, d))
}

fn annotations(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Assembles config and manifest for one platform.
pub fn assemble_image(
    plan: &ImagePlan,
    platform: Platform,
    layers: &[Layer],
    base_env: &[String],
) -> Result<Image, AssembleError> {
    let err = |e: &dyn std::fmt::Display| AssembleError::new("manifest", &plan.name, e);
    let config = image_config(plan, platform, layers, base_env)?;
    let layer_descs = layers
        .iter()
        .map(|l| descriptor(l.blob.media_type(), &l.blob.digest, l.blob.size))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config.digest,
            config.size(),
        )?)
        .layers(layer_descs);
    if let Some(a) = annotations(&plan.annotations) {
        builder = builder.annotations(a);
    }
    let manifest = builder.build().map_err(|e| err(&e))?;
    let manifest = to_canonical_json(&manifest).map_err(|e| err(&e))?;
    Ok(Image {
        platform,
        config,
        manifest,
        layers: layers.iter().map(|l| l.blob.clone()).collect(),
    })
}

/// Builds the index over several platform manifests.
pub fn assemble_index(plan: &ImagePlan, images: &[Image]) -> Result<JsonBlob, AssembleError> {
    let err = |e: &dyn std::fmt::Display| AssembleError::new("index", &plan.name, e);
    let manifests = images
        .iter()
        .map(|img| {
            let platform = PlatformBuilder::default()
                .architecture(arch(img.platform))
                .os(Os::Linux)
                .build()
                .map_err(|e| err(&e))?;
            let mut d = descriptor(
                MediaType::ImageManifest,
                &img.manifest.digest,
                img.manifest.size(),
            )?;
            d.set_platform(Some(platform));
            Ok(d)
        })
        .collect::<Result<Vec<_>, AssembleError>>()?;
    let mut builder = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if let Some(a) = annotations(&plan.annotations) {
        builder = builder.annotations(a);
    }
    let index = builder.build().map_err(|e| err(&e))?;
    to_canonical_json(&index).map_err(|e| err(&e))
}

/// All platforms of an image: an index only when there is more than one.
pub fn assemble_set(plan: &ImagePlan, mut images: Vec<Image>) -> Result<ImageSet, AssembleError> {
    images.sort_by_key(|i| i.platform);
    let index = match images.len() {
        0 => {
            return Err(AssembleError::new(
                "index",
                &plan.name,
                "no platforms were built",
            ));
        }
        1 => None,
        _ => Some(assemble_index(plan, &images)?),
    };
    Ok(ImageSet {
        name: plan.name.clone(),
        tags: plan.tags.clone(),
        images,
        index,
    })
}
