//! ImageSet + Repository → [`PushedImage`]: every blob once (HEAD to skip what is there,
//! cross-repository mount for blobs pushed to a sibling repository in this run, else an
//! upload streamed from the layout), then platform manifests, then the index, and tags
//! last, so no tag ever points at a partial image. Every digest the registry reports is
//! checked against ours.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::blocking::Response;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use crate::image::layout::Layout;
use crate::image::{ImageSet, blob_path};
use crate::output::Progress;
use crate::registry::PushError;
use crate::registry::client::{BodySource, RegistryClient, Request};
use crate::registry::reference::Repository;
use crate::registry::retry::{Decision, Outcome};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobOutcome {
    Skipped,
    Mounted,
    Uploaded(u64),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Turns a non-success response into the error that says what to check.
pub(crate) fn status_error(client: &RegistryClient, action: String, resp: Response) -> PushError {
    let status = resp.status().as_u16();
    let body = resp.text().unwrap_or_default();
    let (code, message) = serde_json::from_str::<Envelope>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| (e.code, e.message))
        .unwrap_or_else(|| (String::new(), body.chars().take(200).collect()));
    let code_part = if code.is_empty() {
        String::new()
    } else {
        format!(": {code}")
    };
    if status == 403 || code == "DENIED" {
        return PushError::Denied {
            registry: client.registry().to_string(),
            action,
            status,
            code: code_part,
        };
    }
    PushError::Registry {
        registry: client.registry().to_string(),
        action,
        status,
        code: code_part,
        message,
    }
}

fn reported_digest(resp: &Response) -> Option<String> {
    resp.headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()
        .map(String::from)
}

pub(crate) fn check_digest(
    client: &RegistryClient,
    resp: &Response,
    what: &str,
    expected: &str,
) -> Result<(), PushError> {
    match reported_digest(resp) {
        Some(got) if got != expected => Err(PushError::DigestMismatch {
            registry: client.registry().to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            got,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn push_scope(repo: &Repository) -> String {
    format!("repository:{}:pull,push", repo.path)
}

fn with_query(location: &str, query: &str) -> String {
    if location.contains('?') {
        format!("{location}&{query}")
    } else {
        format!("{location}?{query}")
    }
}

/// Makes sure the registry has a blob in `repo`. `progress` advances by the blob's size,
/// as it is uploaded or at once when the registry has it.
pub(crate) fn ensure_blob(
    client: &RegistryClient,
    repo: &Repository,
    digest: &str,
    size: u64,
    layout: &Layout,
    mount_from: Option<&str>,
    progress: &Progress,
) -> Result<BlobOutcome, PushError> {
    let scopes = vec![push_scope(repo)];
    let head = client.send(&Request::new(
        Method::HEAD,
        format!("/v2/{}/blobs/{digest}", repo.path),
        scopes.clone(),
    ))?;
    match head.status() {
        StatusCode::OK => {
            progress.inc(size);
            return Ok(BlobOutcome::Skipped);
        }
        StatusCode::NOT_FOUND => {}
        _ => {
            return Err(status_error(
                client,
                format!("a check for blob {digest} in {}", repo.path),
                head,
            ));
        }
    }
    let path = blob_path(&layout.blobs_dir(), digest);
    let policy = client.policy();
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Start a session: try a cross-repository mount first (first attempt only).
        let mut start_scopes = scopes.clone();
        let mut url = format!("/v2/{}/blobs/uploads/", repo.path);
        if let (Some(from), 1) = (mount_from.filter(|f| *f != repo.path), attempt) {
            url = format!("{url}?mount={digest}&from={from}");
            start_scopes.push(format!("repository:{from}:pull"));
        }
        let start = client.send(&Request::new(Method::POST, url, start_scopes))?;
        let location = match start.status() {
            StatusCode::CREATED => {
                check_digest(client, &start, "a mounted blob", digest)?;
                progress.inc(size);
                return Ok(BlobOutcome::Mounted);
            }
            StatusCode::ACCEPTED => match start
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
            {
                Some(l) => l.to_string(),
                None => {
                    return Err(PushError::Registry {
                        registry: client.registry().to_string(),
                        action: format!("starting an upload to {}", repo.path),
                        status: 202,
                        code: String::new(),
                        message: "no Location header".into(),
                    });
                }
            },
            _ => {
                return Err(status_error(
                    client,
                    format!("starting an upload to {}", repo.path),
                    start,
                ));
            }
        };
        // Upload in one streamed PUT; a broken session is restarted from the POST.
        let put = Request {
            method: Method::PUT,
            url: with_query(&client.absolute(&location), &format!("digest={digest}")),
            content_type: Some("application/octet-stream".into()),
            accept: None,
            body: BodySource::File {
                path: path.clone(),
                size,
                progress: progress.clone(),
            },
            scopes: scopes.clone(),
            retry: false,
        };
        let outcome = match client.send(&put) {
            Ok(resp) if resp.status() == StatusCode::CREATED => {
                check_digest(client, &resp, "an uploaded blob", digest)?;
                return Ok(BlobOutcome::Uploaded(size));
            }
            Ok(resp)
                if crate::registry::retry::is_transient(&Outcome::Status(
                    resp.status().as_u16(),
                    None,
                )) =>
            {
                let retry_after = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                Outcome::Status(resp.status().as_u16(), retry_after)
            }
            Ok(resp) => {
                return Err(status_error(
                    client,
                    format!("uploading blob {digest} to {}", repo.path),
                    resp,
                ));
            }
            Err(PushError::Connection { .. }) => Outcome::Connection,
            Err(e) => return Err(e),
        };
        match policy.decide(&outcome, attempt, 0.5) {
            Decision::Retry(d) => std::thread::sleep(d),
            Decision::GiveUp => {
                return Err(PushError::GaveUp {
                    url: client.absolute(&format!("/v2/{}/blobs/uploads/", repo.path)),
                    attempts: attempt,
                    last: format!("{outcome:?} while uploading {digest}"),
                });
            }
        }
    }
}

/// PUTs a manifest (or index) under `reference` and returns the registry's 201 response;
/// any other answer is an error saying what was being pushed.
pub(crate) fn send_manifest(
    client: &RegistryClient,
    repo: &Repository,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
    what: &str,
) -> Result<Response, PushError> {
    let req = Request {
        method: Method::PUT,
        url: format!("/v2/{}/manifests/{reference}", repo.path),
        content_type: Some(media_type.to_string()),
        accept: None,
        body: BodySource::Bytes(bytes.to_vec()),
        scopes: vec![push_scope(repo)],
        retry: true,
    };
    let resp = client.send(&req)?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error(
            client,
            format!("pushing {what} to {}", repo.path),
            resp,
        ));
    }
    Ok(resp)
}

fn put_manifest(
    client: &RegistryClient,
    repo: &Repository,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
    digest: &str,
) -> Result<(), PushError> {
    let what = format!("manifest {reference}");
    let resp = send_manifest(client, repo, reference, bytes, media_type, &what)?;
    check_digest(client, &resp, &what, digest)
}

/// Whether `repo` already holds the manifest `reference` (a digest or a tag) and the
/// registry names it by `digest`. A registry accepts a manifest only once it has all its
/// blobs, so a present manifest needs nothing uploaded. Any answer but 200 with that
/// digest is a "no": the full push then runs and reports real errors.
pub(crate) fn manifest_present(
    client: &RegistryClient,
    repo: &Repository,
    reference: &str,
    media_type: &str,
    digest: &str,
) -> Result<bool, PushError> {
    let mut head = Request::new(
        Method::HEAD,
        format!("/v2/{}/manifests/{reference}", repo.path),
        vec![push_scope(repo)],
    );
    head.accept = Some(media_type.to_string());
    let resp = client.send(&head)?;
    Ok(resp.status() == StatusCode::OK && reported_digest(&resp).as_deref() == Some(digest))
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
) -> Result<PushedImage, PushError> {
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
    let results: Mutex<Vec<(usize, Result<BlobOutcome, PushError>)>> = Mutex::new(Vec::new());
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

    let manifest_type = oci_spec::image::MediaType::ImageManifest.to_string();
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
) -> Result<PushedImage, PushError> {
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
