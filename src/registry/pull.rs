//! `--base REF` → [`BaseImage`]: resolves the reference to a digest, picks the manifest of
//! each requested platform, and copies the base's config and layers into the layout
//! (streamed, digest-verified), so images can be assembled on top of it like on the
//! built-in base.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use oci_spec::image::{MediaType, ToDockerV2S2};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Compression;
use crate::fsutil::{self, FsError};
use crate::image::LayerBlob;
use crate::image::layer::HashWriter;
use crate::image::layout::Layout;
use crate::platform::Platform;
use crate::reference::ImageReference;
use crate::registry::RegistryError;
use crate::registry::transport::retry::{self, Failure};
use crate::registry::transport::{BodyError, RegistryClient, Request};
use crate::registry::upload::status_error;

/// `media_type` and its Docker v2 schema 2 name (registries still serve those: a v2s2
/// manifest list is an index, a v2s2 manifest a manifest, `rootfs.diff.tar.gzip` a gzip
/// layer).
fn oci_and_docker(media_type: MediaType) -> [String; 2] {
    let docker = media_type
        .to_docker_v2s2()
        .map(String::from)
        .unwrap_or_default();
    [media_type.to_string(), docker]
}

/// One platform of a pulled base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePlatform {
    /// Layers, bottom first (gzip, in the layout).
    pub layers: Vec<LayerBlob>,
    /// The base's `Env`.
    pub env: Vec<String>,
    /// The platform manifest's digest.
    pub manifest_digest: String,
}

/// A base image from a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as resolved (`registry/path:tag`).
    pub name: String,
    /// The digest the reference resolved to (index or manifest).
    pub digest: String,
    /// Per requested platform.
    pub platforms: BTreeMap<Platform, BasePlatform>,
    /// Whether everything came from the local cache and layout (no request was made).
    pub cached: bool,
}

/// The small documents of base images (manifests and configs) by digest, kept between
/// runs under the target directory, so a base pinned by digest needs no network once its
/// layers are in the layout. Entries are checked against their digest when read.
#[derive(Debug, Clone)]
pub struct DocCache {
    dir: PathBuf,
}

impl DocCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        DocCache { dir }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| self.dir.join(hex))
    }

    /// Whether a document for `digest` is stored (not checked; [`DocCache::get`] checks).
    pub fn holds(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|p| p.is_file())
    }

    /// The document `digest`, if cached and intact.
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(digest)?).ok()?;
        (sha256(&bytes) == digest).then_some(bytes)
    }

    fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), FsError> {
        match self.path(digest) {
            Some(path) => {
                fsutil::create_dir_all(&self.dir)?;
                fsutil::write_atomic(&path, bytes)
            }
            None => Ok(()),
        }
    }
}

/// Where a pull reads documents from: the registry (only when needed) and the cache.
pub(crate) struct Documents<'a> {
    pub(crate) client: &'a RegistryClient,
    pub(crate) r: &'a ImageReference,
    pub(crate) cache: &'a DocCache,
    /// What the image is to the user, for messages ("the base image").
    pub(crate) role: &'static str,
    pub(crate) requests: std::cell::Cell<usize>,
}

/// What a base pull reads from: its documents, and the layout its layers go to.
struct Source<'a> {
    docs: Documents<'a>,
    layout: &'a Layout,
}

impl<'a> std::ops::Deref for Source<'a> {
    type Target = Documents<'a>;
    fn deref(&self) -> &Documents<'a> {
        &self.docs
    }
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) platform: Option<PlatformSpec>,
    #[serde(rename = "artifactType", default)]
    pub(crate) artifact_type: String,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct PlatformSpec {
    pub(crate) architecture: String,
    pub(crate) os: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    #[serde(default)]
    pub(crate) manifests: Vec<Descriptor>,
    pub(crate) config: Option<Descriptor>,
    #[serde(default)]
    pub(crate) subject: Option<Descriptor>,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub(crate) struct ConfigDoc {
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    config: Option<ConfigSection>,
    pub(crate) rootfs: RootFs,
}

#[derive(Deserialize)]
struct ConfigSection {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(crate) struct RootFs {
    pub(crate) diff_ids: Vec<String>,
}

pub(crate) fn unexpected(
    client: &RegistryClient,
    what: &str,
    message: impl Into<String>,
) -> RegistryError {
    RegistryError::Unexpected {
        registry: client.registry().to_string(),
        action: what.to_string(),
        status: 200,
        code: String::new(),
        message: message.into(),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Documents<'_> {
    /// A manifest or index by tag or digest.
    pub(crate) fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String), RegistryError> {
        let [oci_index, docker_list] = oci_and_docker(MediaType::ImageIndex);
        let [oci_manifest, docker_manifest] = oci_and_docker(MediaType::ImageManifest);
        let accept = [oci_index, oci_manifest, docker_list, docker_manifest].join(", ");
        self.document("manifests", reference, Some(accept))
    }

    /// The base's config (small: read into memory; our images carry their own config,
    /// so it does not go into the layout).
    pub(crate) fn config(&self, digest: &str) -> Result<Vec<u8>, RegistryError> {
        Ok(self.document("blobs", digest, None)?.0)
    }

    /// A small JSON document (`/v2/<name>/{kind}/{reference}`): from the cache for a digest
    /// it holds, else from the registry, checked against the digest asked for and cached.
    fn document(
        &self,
        kind: &str,
        reference: &str,
        accept: Option<String>,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        if let Some(bytes) = self.cache.get(reference) {
            return Ok((bytes, reference.to_string()));
        }
        let (client, r) = (self.client, self.r);
        self.requests.set(self.requests.get() + 1);
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{}/{kind}/{reference}", r.repository.path),
            vec![format!("repository:{}:pull", r.repository.path)],
        );
        req.accept = accept;
        let what = format!("{kind}/{reference} of {} {r}", self.role);
        let mut renewed = false;
        // A body that breaks off is fetched again, like any transient failure.
        let bytes = client.retrying(
            &format!("download of {kind}/{reference}"),
            |_| {
                let resp = retry::transient_status(client.attempt(&req, &mut renewed)?)?;
                if resp.status() != StatusCode::OK {
                    // The registry's own error code and message (MANIFEST_UNKNOWN, …).
                    return Err(status_error(client, format!("fetching {what}"), resp).into());
                }
                match client.read_document(resp, &what) {
                    Ok(bytes) => Ok(bytes),
                    Err(RegistryError::ReadBody { reason, .. }) => Err(Failure::Transient {
                        outcome: retry::Outcome::Connection,
                        detail: reason,
                    }),
                    Err(e) => Err(e.into()),
                }
            },
            |last| RegistryError::Connection {
                url: client.absolute(&req.url),
                attempts: last.attempts,
                message: last.detail,
            },
        )?;
        let digest = sha256(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(RegistryError::DigestMismatch {
                registry: client.registry().to_string(),
                what: format!("{kind}/{reference} of {r}"),
                expected: reference.to_string(),
                got: digest,
            });
        }
        self.cache.put(&digest, &bytes)?;
        Ok((bytes, digest))
    }
}

impl Source<'_> {
    /// A layer, downloaded into the layout unless it is there.
    fn blob(&self, digest: &str, size: u64) -> Result<(), RegistryError> {
        if self.layout.has_blob(digest, size) {
            return Ok(());
        }
        self.requests.set(self.requests.get() + 1);
        fetch_blob(self.client, self.r, digest, size, self.layout)
    }
}

/// Downloads a blob into the layout (unless present), verifying its digest. A body that
/// breaks off, stalls or comes short is fetched again like any transient failure.
pub(crate) fn fetch_blob(
    client: &RegistryClient,
    r: &ImageReference,
    digest: &str,
    size: u64,
    layout: &Layout,
) -> Result<(), RegistryError> {
    let url = format!("/v2/{}/blobs/{digest}", r.repository.path);
    let dest = crate::image::blob_path(&layout.blobs_dir(), digest);
    let io_err = |e: io::Error| RegistryError::Fs(FsError::new("write", &dest, e));
    let mut renewed = false;
    client.retrying(
        &format!("download of {digest}"),
        |_| {
            let req = Request::new(
                Method::GET,
                url.clone(),
                vec![format!("repository:{}:pull", r.repository.path)],
            );
            let resp = retry::transient_status(client.attempt(&req, &mut renewed)?)?;
            if resp.status() != StatusCode::OK {
                let action = format!("downloading blob {digest} of {r}");
                return Err(status_error(client, action, resp).into());
            }
            let tmp = layout.new_blob().map_err(RegistryError::from)?;
            let file = tmp.reopen().map_err(io_err)?;
            let mut w = HashWriter::new(io::BufWriter::new(file));
            let broke = |detail: String| Failure::Transient {
                outcome: retry::Outcome::Connection,
                detail,
            };
            match client.read_body(resp, &mut w, Some(size)) {
                Ok(_) => {}
                Err(BodyError::Io(e)) => return Err(broke(format!("the blob broke off: {e}"))),
                Err(BodyError::Write(e)) => return Err(io_err(e).into()),
                Err(BodyError::Interrupted(e)) => return Err(RegistryError::from(e).into()),
                Err(BodyError::TooLarge { .. }) => {
                    return Err(Failure::Fatal(RegistryError::DigestMismatch {
                        registry: client.registry().to_string(),
                        what: format!(
                            "blob of {r} (more than the {size} bytes its manifest gives)"
                        ),
                        expected: digest.to_string(),
                        got: "a longer blob".into(),
                    }));
                }
            }
            w.flush().map_err(io_err)?;
            let (_, got, len) = w.finish();
            if len < size {
                return Err(broke(format!("the registry sent {len} of {size} bytes")));
            }
            if got != digest {
                return Err(Failure::Fatal(RegistryError::DigestMismatch {
                    registry: client.registry().to_string(),
                    what: format!("blob of {r}"),
                    expected: digest.to_string(),
                    got,
                }));
            }
            layout
                .commit_blob(tmp, digest)
                .map_err(RegistryError::from)?;
            Ok(())
        },
        |last| RegistryError::Connection {
            url: client.absolute(&url),
            attempts: last.attempts,
            message: last.detail,
        },
    )
}

/// The layers a manifest lists, with their diff_ids from its config: gzip (OCI or
/// Docker v2s2) and zstd layers only.
pub(crate) fn layer_blobs(
    client: &RegistryClient,
    r: &ImageReference,
    manifest: &Document,
    diff_ids: Vec<String>,
) -> Result<Vec<LayerBlob>, RegistryError> {
    if diff_ids.len() != manifest.layers.len() {
        return Err(unexpected(
            client,
            &format!("reading the config of {r}"),
            "diff_ids and layers differ in number",
        ));
    }
    let gzip_layers = oci_and_docker(MediaType::ImageLayerGzip);
    manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let compression = if gzip_layers.contains(&layer.media_type) {
                Compression::Gzip
            } else if layer.media_type == MediaType::ImageLayerZstd.to_string() {
                Compression::Zstd
            } else {
                return Err(unexpected(
                    client,
                    &format!("using {r}"),
                    format!(
                        "layer media type `{}` is not supported (gzip and zstd layers only)",
                        layer.media_type
                    ),
                ));
            };
            Ok(LayerBlob {
                digest: layer.digest.clone(),
                diff_id,
                size: layer.size,
                compression,
            })
        })
        .collect()
}

/// Which manifest of a pulled document serves a platform.
#[derive(Debug, PartialEq, Eq)]
enum Selected<'a> {
    /// The document is a manifest: it serves every platform (its config says which).
    Itself,
    /// The index entry for the platform.
    Entry(&'a Descriptor),
    /// The index has no manifest for the platform.
    Missing,
}

/// Chooses the manifest for `platform` from `top`: an OCI index or a Docker v2s2 manifest
/// list (or anything with `manifests`) is searched for the entry with the platform's OS and
/// architecture (the first one, as docker and containerd take it; attestation manifests,
/// `unknown/unknown`, and entries without a platform never match); a manifest is itself.
fn select_manifest(top: &Document, platform: Platform) -> Selected<'_> {
    let is_index = oci_and_docker(MediaType::ImageIndex).contains(&top.media_type)
        || !top.manifests.is_empty();
    if !is_index {
        return Selected::Itself;
    }
    top.manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == platform.os() && p.architecture == platform.arch())
        })
        .map_or(Selected::Missing, Selected::Entry)
}

/// Resolves `r` and copies the requested platforms of it into `layout`.
pub fn pull_base(
    client: &RegistryClient,
    r: &ImageReference,
    platforms: &[Platform],
    layout: &Layout,
    cache: &DocCache,
) -> Result<BaseImage, RegistryError> {
    let src = Source {
        docs: Documents {
            client,
            r,
            cache,
            role: "the base image",
            requests: std::cell::Cell::new(0),
        },
        layout,
    };
    let (bytes, digest) = src.manifest(r.reference())?;
    let top: Document = serde_json::from_slice(&bytes)
        .map_err(|e| unexpected(client, "reading the base manifest", e.to_string()))?;
    let mut out = BTreeMap::new();
    for &platform in platforms {
        let (manifest, manifest_digest) = match select_manifest(&top, platform) {
            Selected::Itself => (
                serde_json::from_slice::<Document>(&bytes)
                    .map_err(|e| unexpected(client, "reading the base manifest", e.to_string()))?,
                digest.clone(),
            ),
            Selected::Entry(entry) => {
                let (b, d) = src.manifest(&entry.digest)?;
                (
                    serde_json::from_slice::<Document>(&b).map_err(|e| {
                        unexpected(client, "reading a base manifest", e.to_string())
                    })?,
                    d,
                )
            }
            Selected::Missing => {
                return Err(unexpected(
                    client,
                    &format!("choosing {platform} from the base {r}"),
                    "the base image has no manifest for this platform",
                ));
            }
        };
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| unexpected(client, "reading the base manifest", "no config"))?;
        let mut config_doc: ConfigDoc = serde_json::from_slice(&src.config(&config.digest)?)
            .map_err(|e| unexpected(client, "reading the base config", e.to_string()))?;
        if config_doc.architecture != platform.arch() {
            return Err(unexpected(
                client,
                &format!("using {r} for {platform}"),
                format!("the base image is built for {}", config_doc.architecture),
            ));
        }
        let diff_ids = std::mem::take(&mut config_doc.rootfs.diff_ids);
        let layers = layer_blobs(client, r, &manifest, diff_ids)?;
        for layer in &layers {
            src.blob(&layer.digest, layer.size)?;
        }
        let env = config_doc.config.and_then(|c| c.env).unwrap_or_default();
        out.insert(
            platform,
            BasePlatform {
                layers,
                env,
                manifest_digest,
            },
        );
    }
    let name = match &r.tag {
        Some(t) => format!("{}:{t}", r.repository),
        None => r.repository.to_string(),
    };
    Ok(BaseImage {
        name,
        digest,
        platforms: out,
        cached: src.requests.get() == 0,
    })
}

/// Writes the manifest and status lines for a pulled base (`-v`).
pub fn describe(base: &BaseImage) -> String {
    format!(
        "{}@{} ({} platform(s))",
        base.name,
        base.digest,
        base.platforms.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Document {
        serde_json::from_str(json).unwrap()
    }

    fn entry_digest(s: Selected<'_>) -> Option<String> {
        match s {
            Selected::Entry(d) => Some(d.digest.clone()),
            _ => None,
        }
    }

    /// Like `docker buildx` pushes it: one manifest per platform, and an attestation
    /// manifest per platform with `unknown/unknown`.
    const OCI_INDEX_WITH_ATTESTATIONS: &str = r#"{
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:att0", "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:amd", "size": 2,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:arm", "size": 3,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:att1", "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"}}
        ]
    }"#;

    #[test]
    fn picks_each_platform_from_an_oci_index_and_skips_attestations() {
        let top = doc(OCI_INDEX_WITH_ATTESTATIONS);
        assert_eq!(
            entry_digest(select_manifest(&top, Platform::LinuxAmd64)).as_deref(),
            Some("sha256:amd")
        );
        assert_eq!(
            entry_digest(select_manifest(&top, Platform::LinuxArm64)).as_deref(),
            Some("sha256:arm")
        );
    }

    #[test]
    fn picks_from_a_docker_v2s2_manifest_list() {
        let top = doc(r#"{
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "digest": "sha256:arm", "size": 3,
                 "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                 "digest": "sha256:amd", "size": 2,
                 "platform": {"architecture": "amd64", "os": "linux"}}
            ]
        }"#);
        assert_eq!(
            entry_digest(select_manifest(&top, Platform::LinuxAmd64)).as_deref(),
            Some("sha256:amd")
        );
        assert_eq!(
            entry_digest(select_manifest(&top, Platform::LinuxArm64)).as_deref(),
            Some("sha256:arm")
        );
    }

    #[test]
    fn a_missing_platform_is_reported_not_substituted() {
        let top = doc(r#"{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"digest": "sha256:win", "size": 1, "platform": {"architecture": "amd64", "os": "windows"}},
                {"digest": "sha256:att", "size": 1, "platform": {"architecture": "unknown", "os": "unknown"}},
                {"digest": "sha256:none", "size": 1}
            ]
        }"#);
        assert_eq!(
            select_manifest(&top, Platform::LinuxAmd64),
            Selected::Missing
        );
        // An index whose media type is missing is still recognized by its `manifests`.
        let untyped = doc(
            r#"{"manifests": [{"digest": "sha256:amd", "size": 1, "platform": {"architecture": "amd64", "os": "linux"}}]}"#,
        );
        assert_eq!(
            select_manifest(&untyped, Platform::LinuxArm64),
            Selected::Missing
        );
        // An empty index is an index too: nothing to choose.
        let empty = doc(r#"{"mediaType": "application/vnd.oci.image.index.v1+json"}"#);
        assert_eq!(
            select_manifest(&empty, Platform::LinuxAmd64),
            Selected::Missing
        );
    }

    #[test]
    fn a_single_manifest_serves_every_platform_itself() {
        for media_type in [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ] {
            let top = doc(&format!(
                r#"{{"mediaType": "{media_type}", "config": {{"digest": "sha256:c", "size": 1}}, "layers": []}}"#
            ));
            assert_eq!(
                select_manifest(&top, Platform::LinuxArm64),
                Selected::Itself
            );
        }
    }

    #[test]
    fn layer_and_index_types_include_docker_v2s2_names() {
        assert_eq!(
            oci_and_docker(MediaType::ImageLayerGzip),
            [
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            ]
        );
        assert_eq!(
            oci_and_docker(MediaType::ImageIndex),
            [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json"
            ]
        );
    }
}
