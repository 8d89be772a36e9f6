//! The writes every push makes, on one repository: a blob made present (HEAD to skip what
//! is there, a cross-repository mount, else an upload session streamed from the layout and
//! restarted through the retry loop when it breaks), a manifest PUT or checked by HEAD,
//! and the checks on each answer (the registry's error envelope, the digest it reports).
//! Used by image pushes (`push`) and SBOM referrers (`referrers`).

use reqwest::blocking::Response;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use crate::image::blob_path;
use crate::image::layout::Layout;
use crate::output::Progress;
use crate::reference::Repository;
use crate::registry::RegistryError;
use crate::registry::transport::retry::{self, Failure};
use crate::registry::transport::{BodySource, RegistryClient, Request};

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
pub(crate) fn status_error(
    client: &RegistryClient,
    action: String,
    resp: Response,
) -> RegistryError {
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
        return RegistryError::Denied {
            registry: client.registry().to_string(),
            action,
            status,
            code: code_part,
        };
    }
    RegistryError::Unexpected {
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
) -> Result<(), RegistryError> {
    match reported_digest(resp) {
        Some(got) if got != expected => Err(RegistryError::DigestMismatch {
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
) -> Result<BlobOutcome, RegistryError> {
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
    let upload_start = format!("/v2/{}/blobs/uploads/", repo.path);
    let mut renewed = false;
    // A broken session is restarted from the POST, through the same retry loop as every
    // request (the POST itself is retried inside `send`).
    let attempt = |attempt: u32| -> Result<BlobOutcome, Failure> {
        // Start a session: try a cross-repository mount first (first attempt only).
        let mut start_scopes = scopes.clone();
        let mut url = upload_start.clone();
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
                    return Err(RegistryError::Unexpected {
                        registry: client.registry().to_string(),
                        action: format!("starting an upload to {}", repo.path),
                        status: 202,
                        code: String::new(),
                        message: "no Location header".into(),
                    }
                    .into());
                }
            },
            _ => {
                return Err(status_error(
                    client,
                    format!("starting an upload to {}", repo.path),
                    start,
                )
                .into());
            }
        };
        // Upload in one streamed PUT.
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
        };
        let resp = retry::transient_status(client.attempt(&put, &mut renewed)?)?;
        if resp.status() != StatusCode::CREATED {
            let action = format!("uploading blob {digest} to {}", repo.path);
            return Err(status_error(client, action, resp).into());
        }
        check_digest(client, &resp, "an uploaded blob", digest)?;
        Ok(BlobOutcome::Uploaded(size))
    };
    let what = format!("upload of {digest} to {}", repo.path);
    client.retrying(&what, attempt, |last| RegistryError::GaveUp {
        url: client.absolute(&upload_start),
        attempts: last.attempts,
        last: format!("{} while uploading {digest}", last.detail),
    })
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
) -> Result<Response, RegistryError> {
    let req = Request {
        method: Method::PUT,
        url: format!("/v2/{}/manifests/{reference}", repo.path),
        content_type: Some(media_type.to_string()),
        accept: None,
        body: BodySource::Bytes(bytes.to_vec()),
        scopes: vec![push_scope(repo)],
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

/// PUTs a manifest under `reference` and checks the digest the registry reports.
pub(crate) fn put_manifest(
    client: &RegistryClient,
    repo: &Repository,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
    digest: &str,
) -> Result<(), RegistryError> {
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
) -> Result<bool, RegistryError> {
    let mut head = Request::new(
        Method::HEAD,
        format!("/v2/{}/manifests/{reference}", repo.path),
        vec![push_scope(repo)],
    );
    head.accept = Some(media_type.to_string());
    let resp = client.send(&head)?;
    Ok(resp.status() == StatusCode::OK && reported_digest(&resp).as_deref() == Some(digest))
}
