//! `verify`'s registry side: an image by reference → [`RemoteImage`]: its top document
//! (index or manifest), each platform's manifest and config, and the referrers of each of
//! them (OCI 1.1 referrers API, else the `sha256-<hex>` tag schema), each with its one
//! document read (SBOM, provenance, bundle: small JSON). Layers stay in the registry
//! until [`fetch_layer`] is asked for one (to name the file that differs).

use std::collections::BTreeMap;

use oci_spec::image::MediaType;
use reqwest::{Method, StatusCode};

use crate::canonical::JsonBlob;
use crate::config::registry::RegistrySettings;
use crate::image::layout::Layout;
use crate::output::Shell;
use crate::platform::Platform;
use crate::reference::ImageReference;
use crate::registry::pull::{ConfigDoc, DocCache, Document, Documents, fetch_blob, unexpected};
use crate::registry::referrers::fallback_tag;
use crate::registry::transport::{RegistryClient, Request};
use crate::registry::upload::status_error;
use crate::registry::{RegistryError, connect, extra_ca};

/// An image as the registry has it.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// What was asked for.
    pub reference: ImageReference,
    /// The digest the reference resolved to.
    pub digest: String,
    /// The index, if the reference names one.
    pub index: Option<JsonBlob>,
    /// Each platform: its manifest and config.
    pub platforms: Vec<RemotePlatform>,
    /// The referrers of the index and of every platform manifest.
    pub referrers: Vec<Referrer>,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct RemotePlatform {
    /// The platform (from the index entry, else the config).
    pub platform: Platform,
    /// The manifest.
    pub manifest: JsonBlob,
    /// The config.
    pub config: JsonBlob,
}

/// One artifact that refers to a manifest of the image.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The digest it was listed under.
    pub listed_for: String,
    /// Its artifact manifest's digest.
    pub digest: String,
    /// `artifactType`.
    pub artifact_type: String,
    /// The artifact manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The `subject` its manifest names (may differ from `listed_for` on a broken
    /// fallback index; `verify` checks).
    pub subject: Option<String>,
    /// Its first layer: the document.
    pub document: Vec<u8>,
}

/// Reads `r`, every platform of it and their referrers.
pub fn inspect(
    r: &ImageReference,
    settings: &RegistrySettings,
    cache: &DocCache,
    shell: &mut Shell,
) -> Result<RemoteImage, RegistryError> {
    let client = connect(&r.repository, settings, extra_ca(settings)?, shell)?;
    let docs = Documents {
        client: &client,
        r,
        cache,
        role: "the image",
        requests: std::cell::Cell::new(0),
    };
    let (bytes, digest) = docs.manifest(r.reference())?;
    let parse = |bytes: &[u8], what: &str| -> Result<Document, RegistryError> {
        serde_json::from_slice(bytes)
            .map_err(|e| unexpected(&client, &format!("reading {what} of {r}"), e.to_string()))
    };
    let top = parse(&bytes, "the manifest")?;
    let mut platforms = Vec::new();
    let index = if top.manifests.is_empty() {
        platforms.push(read_platform(&docs, bytes, digest.clone(), None)?);
        None
    } else {
        for entry in &top.manifests {
            let Some(spec) = &entry.platform else {
                continue;
            };
            let Some(platform) = Platform::ALL
                .into_iter()
                .find(|p| p.os() == spec.os && p.arch() == spec.architecture)
            else {
                continue;
            };
            let (bytes, got) = docs.manifest(&entry.digest)?;
            platforms.push(read_platform(&docs, bytes, got, Some(platform))?);
        }
        Some(JsonBlob {
            bytes,
            digest: digest.clone(),
        })
    };
    platforms.sort_by_key(|p| p.platform);
    let mut subjects: Vec<String> = platforms
        .iter()
        .map(|p| p.manifest.digest.clone())
        .collect();
    if index.is_some() {
        subjects.insert(0, digest.clone());
    }
    let mut referrers = Vec::new();
    for subject in &subjects {
        for entry in list_referrers(&client, r, subject)? {
            let (bytes, got) = docs.manifest(&entry.digest)?;
            let manifest = parse(&bytes, "a referrer")?;
            let document = match manifest.layers.first() {
                Some(layer) => docs.config(&layer.digest)?,
                None => Vec::new(),
            };
            referrers.push(Referrer {
                listed_for: subject.clone(),
                digest: got,
                artifact_type: if entry.artifact_type.is_empty() {
                    manifest
                        .config
                        .as_ref()
                        .map(|c| c.media_type.clone())
                        .unwrap_or_default()
                } else {
                    entry.artifact_type.clone()
                },
                annotations: manifest.annotations.clone(),
                subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
                document,
            });
        }
    }
    Ok(RemoteImage {
        reference: r.clone(),
        digest,
        index,
        platforms,
        referrers,
    })
}

/// One platform's manifest (already read) and its config.
fn read_platform(
    docs: &Documents<'_>,
    bytes: Vec<u8>,
    digest: String,
    platform: Option<Platform>,
) -> Result<RemotePlatform, RegistryError> {
    let what = format!("reading {digest} of {}", docs.r);
    let manifest: Document = serde_json::from_slice(&bytes)
        .map_err(|e| unexpected(docs.client, &what, e.to_string()))?;
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| unexpected(docs.client, &what, "the manifest has no config"))?;
    let config_bytes = docs.config(&config.digest)?;
    let platform = match platform {
        Some(p) => p,
        None => {
            let c: ConfigDoc = serde_json::from_slice(&config_bytes)
                .map_err(|e| unexpected(docs.client, &what, e.to_string()))?;
            Platform::ALL
                .into_iter()
                .find(|p| p.os() == c.os && p.arch() == c.architecture)
                .ok_or_else(|| {
                    unexpected(
                        docs.client,
                        &what,
                        format!(
                            "its platform {}/{} is not one this tool builds",
                            c.os, c.architecture
                        ),
                    )
                })?
        }
    };
    Ok(RemotePlatform {
        platform,
        manifest: JsonBlob { bytes, digest },
        config: JsonBlob {
            bytes: config_bytes,
            digest: config.digest.clone(),
        },
    })
}

/// The referrers of `subject`: the API's list, else the fallback tag's index, else none.
fn list_referrers(
    client: &RegistryClient,
    r: &ImageReference,
    subject: &str,
) -> Result<Vec<crate::registry::pull::Descriptor>, RegistryError> {
    let path = &r.repository.path;
    let get = |url: String| -> Result<Option<Vec<u8>>, RegistryError> {
        let mut req = Request::new(Method::GET, url, vec![format!("repository:{path}:pull")]);
        req.accept = Some(MediaType::ImageIndex.to_string());
        let resp = client.send(&req)?;
        match resp.status() {
            StatusCode::OK => Ok(Some(
                client.read_document(resp, &format!("the referrers of {subject} in {path}"))?,
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(
                client,
                format!("listing the referrers of {subject} in {path}"),
                resp,
            )),
        }
    };
    let listing = match get(format!("/v2/{path}/referrers/{subject}"))? {
        Some(bytes) => Some(bytes),
        None => get(format!("/v2/{path}/manifests/{}", fallback_tag(subject)))?,
    };
    let Some(bytes) = listing else {
        return Ok(Vec::new());
    };
    let index: Document = serde_json::from_slice(&bytes).map_err(|e| {
        unexpected(
            client,
            &format!("reading the referrers of {subject} in {path}"),
            e.to_string(),
        )
    })?;
    Ok(index.manifests)
}

/// Downloads one layer of `r` into `layout` (unless there), digest checked.
pub fn fetch_layer(
    r: &ImageReference,
    digest: &str,
    size: u64,
    layout: &Layout,
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<(), RegistryError> {
    if layout.has_blob(digest, size) {
        return Ok(());
    }
    let client = connect(&r.repository, settings, extra_ca(settings)?, shell)?;
    fetch_blob(&client, r, digest, size, layout)
}
