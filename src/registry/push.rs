//! ImageSet + Repository → [`PushedImage`]: every blob once (HEAD to skip what is there,
//! cross-repository mount for blobs pushed to a sibling repository in this run, else an
//! upload streamed from the layout), then platform manifests, then the index, and tags
//! last, so no tag ever points at a partial image. Every digest the registry reports is
//! checked against ours.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::MediaType;

use crate::canonical::JsonBlob;
use crate::image::ImageSet;
use crate::image::layout::Layout;
use crate::output::Progress;
use crate::reference::Repository;
use crate::registry::RegistryError;
use crate::registry::transport::RegistryClient;
use crate::registry::upload::{BlobOutcome, ensure_blob, manifest_present, put_manifest};

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// Where.
    pub repository: Repository,
    /// Digest of the index or the single manifest.
    pub digest: String,
    /// Tags pointed at it.
    pub tags: Vec<String>,
    /// Bytes of blob content uploaded.
    pub uploaded_bytes: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
}

impl PushedImage {
    /// `registry/path@sha256:…`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// Blobs known to be in some repository of the registry: digest → repository path.
/// Lets later images mount shared layers (the base) instead of uploading them again.
#[derive(Debug, Default)]
pub struct KnownBlobs(Mutex<BTreeMap<String, String>>);

impl KnownBlobs {
    fn get(&self, digest: &str) -> Option<String> {
        self.0.lock().ok()?.get(digest).cloned()
    }
    fn insert(&self, digest: &str, repo: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(digest.to_string())
                .or_insert_with(|| repo.to_string());
        }
    }
}

/// How the blobs of one image are sent.
#[derive(Debug, Clone, Copy)]
pub struct BlobUploads<'a> {
    /// Blobs already in some repository of the registry (for mounts).
    pub known: &'a KnownBlobs,
    /// Blobs sent at once.
    pub jobs: usize,
    /// Advanced by every blob's size, from every upload thread.
    pub progress: &'a Progress,
}

/// One step of a push. [`push_order`] lists them in the order the registry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// A config or layer blob.
    Blob {
        /// Its digest.
        digest: &'a str,
        /// Its size.
        size: u64,
    },
    /// A platform manifest or the index, PUT under its own digest.
    Manifest {
        /// The document.
        document: &'a JsonBlob,
        /// Its media type.
        media_type: MediaType,
    },
    /// A tag, PUT with the top document (the index, or the only manifest).
    Tag {
        /// The tag.
        tag: &'a str,
        /// The top document.
        document: &'a JsonBlob,
        /// Its media type.
        media_type: MediaType,
    },
}

/// The steps of pushing `set` with `tags`, children before parents, as ggcr's
/// `writeDeps` before `writeManifest` (`pkg/v1/remote/pusher.go`): every blob once (by
/// digest, in a stable order), then the platform manifests, then the index, and the tags
/// last, so no tag points at a partial image and a registry never sees a manifest before
/// what it references.
pub fn push_order<'a>(set: &'a ImageSet, tags: &'a [String]) -> Vec<Step<'a>> {
    let mut blobs: BTreeMap<&str, u64> = BTreeMap::new();
    for img in &set.images {
        blobs.insert(&img.config.digest, img.config.size());
        for l in &img.layers {
            blobs.insert(&l.digest, l.size);
        }
    }
    let mut steps: Vec<Step<'a>> = blobs
        .into_iter()
        .map(|(digest, size)| Step::Blob { digest, size })
        .collect();
    steps.extend(set.images.iter().map(|img| Step::Manifest {
        document: &img.manifest,
        media_type: MediaType::ImageManifest,
    }));
    let (top, media_type) = set.top();
    if let Some(index) = &set.index {
        steps.push(Step::Manifest {
            document: index,
            media_type: media_type.clone(),
        });
    }
    steps.extend(tags.iter().map(|tag| Step::Tag {
        tag,
        document: top,
        media_type: media_type.clone(),
    }));
    steps
}

/// The blobs of `steps`, in order.
fn blob_steps<'a>(steps: &[Step<'a>]) -> Vec<(&'a str, u64)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Blob { digest, size } => Some((*digest, *size)),
            _ => None,
        })
        .collect()
}

/// Pushes every platform of `set` to `repo` in [`push_order`]: the blobs by
/// `uploads.jobs` at once, then the documents one by one. Tags are left to [`set_tags`].
pub fn push_set(
    client: &RegistryClient,
    layout: &Layout,
    set: &ImageSet,
    repo: &Repository,
    tags: &[String],
    uploads: BlobUploads<'_>,
) -> Result<PushedImage, RegistryError> {
    let BlobUploads {
        known,
        jobs,
        progress,
    } = uploads;
    let (top, media_type) = set.top();
    let media_type = media_type.to_string();
    if manifest_present(client, repo, &top.digest, &media_type, &top.digest)? {
        return Ok(already_there(repo, set, tags, known, progress));
    }
    let steps = push_order(set, tags);
    let blobs = blob_steps(&steps);
    progress.set_total(blobs.iter().map(|(_, size)| size).sum());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<BlobOutcome, RegistryError>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, blobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((digest, size)) = blobs.get(i) else {
                        break;
                    };
                    let from = known.get(digest);
                    let r = ensure_blob(
                        client,
                        repo,
                        digest,
                        *size,
                        layout,
                        from.as_deref(),
                        progress,
                    );
                    let failed = r.is_err();
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                    if failed {
                        // Let the other workers finish their current blob, then stop.
                        next.store(blobs.len(), Ordering::SeqCst);
                        break;
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let (mut uploaded_bytes, mut uploaded, mut skipped, mut mounted) = (0, 0, 0, 0);
    for (i, r) in results {
        match r? {
            BlobOutcome::Skipped => skipped += 1,
            BlobOutcome::Mounted => mounted += 1,
            BlobOutcome::Uploaded(n) => {
                uploaded += 1;
                uploaded_bytes += n;
            }
        }
        known.insert(blobs[i].0, &repo.path);
    }

    for step in &steps {
        match step {
            Step::Blob { .. } => {}
            Step::Manifest {
                document,
                media_type,
            } => put_manifest(
                client,
                repo,
                &document.digest,
                &document.bytes,
                media_type.as_ref(),
                &document.digest,
            )?,
            // Tags move in [`set_tags`], once everything the image needs is there.
            Step::Tag { .. } => {}
        }
    }
    Ok(PushedImage {
        repository: repo.clone(),
        digest: top.digest.clone(),
        tags: tags.to_vec(),
        uploaded_bytes,
        uploaded,
        skipped,
        mounted,
    })
}

/// Points `tags` at `set`'s top document, skipping those that already point at it;
/// `moved` gets each tag once it points at the image (the caller reports exactly which
/// moved when one fails).
pub fn set_tags(
    client: &RegistryClient,
    repo: &Repository,
    set: &ImageSet,
    tags: &[String],
    moved: &mut Vec<String>,
) -> Result<(), RegistryError> {
    let (top, media_type) = set.top();
    let media_type = media_type.to_string();
    for tag in tags {
        crate::interrupt::check()?;
        if !manifest_present(client, repo, tag, &media_type, &top.digest)? {
            put_manifest(client, repo, tag, &top.bytes, &media_type, &top.digest)?;
        }
        moved.push(tag.clone());
    }
    Ok(())
}

/// The image is already in `repo` (an unchanged re-push): uploads nothing.
fn already_there(
    repo: &Repository,
    set: &ImageSet,
    tags: &[String],
    known: &KnownBlobs,
    progress: &Progress,
) -> PushedImage {
    let (top, _) = set.top();
    let steps = push_order(set, tags);
    let blobs = blob_steps(&steps);
    for (digest, _) in &blobs {
        known.insert(digest, &repo.path);
    }
    let total = blobs.iter().map(|(_, size)| size).sum();
    progress.set_total(total);
    progress.inc(total);
    PushedImage {
        repository: repo.clone(),
        digest: top.digest.clone(),
        tags: tags.to_vec(),
        uploaded_bytes: 0,
        uploaded: 0,
        skipped: blobs.len(),
        mounted: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Image, LayerBlob};
    use crate::platform::Platform;

    fn blob(name: &str) -> JsonBlob {
        JsonBlob {
            bytes: name.as_bytes().to_vec(),
            digest: format!("sha256:{}", name.repeat(64).get(..64).unwrap_or_default()),
        }
    }

    fn layer(hex: char, size: u64) -> LayerBlob {
        LayerBlob {
            digest: format!("sha256:{}", hex.to_string().repeat(64)),
            diff_id: format!("sha256:{}", "0".repeat(64)),
            size,
            compression: crate::config::Compression::Gzip,
        }
    }

    fn image(platform: Platform, config: &str, manifest: &str, layers: Vec<LayerBlob>) -> Image {
        Image {
            platform,
            config: blob(config),
            manifest: blob(manifest),
            layers,
        }
    }

    /// Two platforms sharing the base layer `a`, with an index.
    fn two_platforms() -> ImageSet {
        ImageSet {
            name: "api".into(),
            tags: vec![],
            images: vec![
                image(
                    Platform::LinuxAmd64,
                    "c",
                    "d",
                    vec![layer('a', 10), layer('b', 20)],
                ),
                image(
                    Platform::LinuxArm64,
                    "e",
                    "f",
                    vec![layer('a', 10), layer('9', 30)],
                ),
            ],
            index: Some(blob("7")),
        }
    }

    fn kind(step: &Step<'_>) -> u8 {
        match step {
            Step::Blob { .. } => 0,
            Step::Manifest {
                media_type: MediaType::ImageManifest,
                ..
            } => 1,
            Step::Manifest { .. } => 2,
            Step::Tag { .. } => 3,
        }
    }

    #[test]
    fn blobs_come_before_manifests_before_the_index_and_tags_last() {
        let set = two_platforms();
        let tags = vec!["1.0".to_string(), "latest".to_string()];
        let steps = push_order(&set, &tags);
        let kinds: Vec<u8> = steps.iter().map(kind).collect();
        assert!(kinds.is_sorted(), "{steps:#?}");
        assert_eq!(kinds, [0, 0, 0, 0, 0, 1, 1, 2, 3, 3]);
        let Step::Manifest { document, .. } = &steps[7] else {
            panic!("{steps:#?}");
        };
        assert_eq!(document.digest, set.index.as_ref().unwrap().digest);
        for (step, tag) in steps[8..].iter().zip(&tags) {
            assert_eq!(
                step,
                &Step::Tag {
                    tag,
                    document: set.index.as_ref().unwrap(),
                    media_type: MediaType::ImageIndex,
                }
            );
        }
    }

    #[test]
    fn each_digest_is_pushed_once_in_a_stable_order() {
        let set = two_platforms();
        let steps = push_order(&set, &[]);
        let blobs = blob_steps(&steps);
        let digests: Vec<&str> = blobs.iter().map(|(d, _)| *d).collect();
        let mut unique = digests.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(digests, unique, "sorted, and the shared layer once");
        assert_eq!(digests.len(), 5, "2 configs + 3 distinct layers");
        assert!(blobs.contains(&(layer('a', 10).digest.as_str(), 10)));
        assert!(blobs.contains(&(set.images[1].config.digest.as_str(), 1)));
        let manifests: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Manifest { document, .. } => Some(document.digest.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            manifests,
            [
                set.images[0].manifest.digest.as_str(),
                set.images[1].manifest.digest.as_str(),
                set.index.as_ref().unwrap().digest.as_str()
            ]
        );
    }

    #[test]
    fn a_single_platform_has_no_index_and_tags_point_at_its_manifest() {
        let set = ImageSet {
            name: "api".into(),
            tags: vec![],
            images: vec![image(Platform::LinuxAmd64, "c", "d", vec![layer('e', 10)])],
            index: None,
        };
        let tags = vec!["latest".to_string()];
        let steps = push_order(&set, &tags);
        assert_eq!(
            steps,
            [
                Step::Blob {
                    digest: &set.images[0].config.digest,
                    size: 1
                },
                Step::Blob {
                    digest: &set.images[0].layers[0].digest,
                    size: 10
                },
                Step::Manifest {
                    document: &set.images[0].manifest,
                    media_type: MediaType::ImageManifest
                },
                Step::Tag {
                    tag: "latest",
                    document: &set.images[0].manifest,
                    media_type: MediaType::ImageManifest
                },
            ]
        );
    }
}
