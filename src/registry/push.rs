//! ImageSet + Repository → [`PushedImage`]: every blob once (HEAD to skip what is there,
//! cross-repository mount for blobs pushed to a sibling repository in this run, else an
//! upload streamed from the layout), then platform manifests, then the index, and tags
//! last, so no tag ever points at a partial image. Every digest the registry reports is
//! checked against ours.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::image::MediaType;

use crate::image::ImageSet;
use crate::image::layout::Layout;
use crate::output::Progress;
use crate::registry::RegistryError;
use crate::registry::reference::Repository;
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

/// Pushes every platform of `set` to `repo` and points `tags` at it.
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
        return retag(client, repo, set, tags, known, progress);
    }
    let blobs: Vec<(String, u64)> = blobs_of(set).into_iter().collect();
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
        known.insert(&blobs[i].0, &repo.path);
    }

    let manifest_type = MediaType::ImageManifest.to_string();
    for img in &set.images {
        put_manifest(
            client,
            repo,
            &img.manifest.digest,
            &img.manifest.bytes,
            &manifest_type,
            &img.manifest.digest,
        )?;
    }
    if set.index.is_some() {
        put_manifest(
            client,
            repo,
            &top.digest,
            &top.bytes,
            &media_type,
            &top.digest,
        )?;
    }
    for tag in tags {
        put_manifest(client, repo, tag, &top.bytes, &media_type, &top.digest)?;
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

/// Every blob of `set` (configs and layers of all platforms) once, by digest, in a stable
/// order, with its size.
fn blobs_of(set: &ImageSet) -> BTreeMap<String, u64> {
    let mut blobs = BTreeMap::new();
    for img in &set.images {
        blobs.insert(img.config.digest.clone(), img.config.size());
        for l in &img.layers {
            blobs.insert(l.digest.clone(), l.size);
        }
    }
    blobs
}

/// The image is already in `repo` (an unchanged re-push): sets only the tags that do not
/// already point at it, and uploads nothing.
fn retag(
    client: &RegistryClient,
    repo: &Repository,
    set: &ImageSet,
    tags: &[String],
    known: &KnownBlobs,
    progress: &Progress,
) -> Result<PushedImage, RegistryError> {
    let (top, media_type) = set.top();
    let media_type = media_type.to_string();
    let blobs = blobs_of(set);
    for digest in blobs.keys() {
        known.insert(digest, &repo.path);
    }
    progress.set_total(blobs.values().sum());
    progress.inc(blobs.values().sum());
    for tag in tags {
        if !manifest_present(client, repo, tag, &media_type, &top.digest)? {
            put_manifest(client, repo, tag, &top.bytes, &media_type, &top.digest)?;
        }
    }
    Ok(PushedImage {
        repository: repo.clone(),
        digest: top.digest.clone(),
        tags: tags.to_vec(),
        uploaded_bytes: 0,
        uploaded: 0,
        skipped: blobs.len(),
        mounted: 0,
    })
}
