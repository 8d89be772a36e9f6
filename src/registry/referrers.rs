//! Artifacts (SBOMs) → the registry, discoverable from their subject's digest: blobs, then
//! the artifact manifest by digest; then, on registries without the OCI 1.1 referrers API
//! (CNCF distribution 2.8 answers 404), the `sha256-<hex>` referrers tag: an image index
//! listing the subject's artifacts, read, extended and written back. See
//! <https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject>
//! and `#referrers-tag-schema`.
//!
//! Pushed after the image and its tags, so a referrer never points at a manifest the
//! registry does not have (some registries refuse that), and the image is usable even if
//! attaching fails: the error says so.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use reqwest::{Method, StatusCode};

use crate::canonical::to_canonical_json;
use crate::config::registry::RegistrySettings;
use crate::image::artifact::Artifact;
use crate::image::layout::Layout;
use crate::image::manifest::descriptor;
use crate::output::Shell;
use crate::reference::Repository;
use crate::registry::RegistryError;
use crate::registry::transport::{RegistryClient, Request};
use crate::registry::upload::{
    check_digest, ensure_blob, manifest_present, push_scope, send_manifest, status_error,
};

/// Pushes every artifact to its image's repository (one client per registry).
pub fn push_artifacts(
    targets: &[(Repository, &Artifact)],
    layout: &Layout,
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<(), RegistryError> {
    let extra_ca = super::extra_ca(settings)?;
    let mut clients: BTreeMap<String, RegistryClient> = BTreeMap::new();
    for (repo, artifact) in targets {
        if !clients.contains_key(&repo.registry) {
            let client = super::connect(repo, settings, extra_ca.clone(), shell)?;
            clients.insert(repo.registry.clone(), client);
        }
        let Some(client) = clients.get(&repo.registry) else {
            continue;
        };
        let mode = push_artifact(client, layout, repo, artifact)?;
        let how = match mode {
            ReferrersMode::Api => "referrers API".to_string(),
            ReferrersMode::TagFallback => format!("tag {}", fallback_tag(&artifact.subject)),
        };
        shell.status(
            "Attached",
            format!(
                "{} to {repo}@{} ({how})",
                artifact.describe(),
                artifact.subject
            ),
        );
    }
    Ok(())
}

/// How the registry lists referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersMode {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The `sha256-<hex>` tag.
    TagFallback,
}

/// The fallback tag for a subject digest: `sha256:<hex>` → `sha256-<hex>`.
pub fn fallback_tag(subject: &str) -> String {
    subject.replace(':', "-")
}

/// Pushes `artifact` to `repo` and makes it discoverable; returns how.
pub fn push_artifact(
    client: &RegistryClient,
    layout: &Layout,
    repo: &Repository,
    artifact: &Artifact,
) -> Result<ReferrersMode, RegistryError> {
    let manifest_type = MediaType::ImageManifest.to_string();
    // Already there (an earlier push of the same image): do not PUT it again. Registries
    // should treat that as a no-op, but ferro-oci-server 1.0.0 then lists the referrer
    // twice. The fallback tag is still checked below, in case an earlier run stopped
    // between the two.
    let digest = &artifact.manifest.digest;
    if manifest_present(client, repo, digest, &manifest_type, digest)? {
        if has_referrers_api(client, repo, &artifact.subject)? {
            return Ok(ReferrersMode::Api);
        }
        add_to_fallback_index(client, repo, artifact)?;
        return Ok(ReferrersMode::TagFallback);
    }
    for blob in artifact.blobs() {
        ensure_blob(
            client,
            repo,
            &blob.digest,
            blob.size(),
            layout,
            None,
            &crate::output::Progress::hidden(),
        )?;
    }
    let what = format!("the {} of {}", artifact.describe(), artifact.subject);
    let resp = send_manifest(
        client,
        repo,
        &artifact.manifest.digest,
        &artifact.manifest.bytes,
        &manifest_type,
        &what,
    )?;
    check_digest(
        client,
        &resp,
        "the artifact manifest",
        &artifact.manifest.digest,
    )?;
    // A registry that processed `subject` says so (OCI-Subject); one that did not may
    // still have the API, so ask it before falling back to the tag.
    if resp.headers().contains_key("oci-subject")
        || has_referrers_api(client, repo, &artifact.subject)?
    {
        return Ok(ReferrersMode::Api);
    }
    add_to_fallback_index(client, repo, artifact)?;
    Ok(ReferrersMode::TagFallback)
}

fn has_referrers_api(
    client: &RegistryClient,
    repo: &Repository,
    subject: &str,
) -> Result<bool, RegistryError> {
    let mut req = Request::new(
        Method::GET,
        format!("/v2/{}/referrers/{subject}", repo.path),
        vec![push_scope(repo)],
    );
    req.accept = Some(MediaType::ImageIndex.to_string());
    let resp = client.send(&req)?;
    match resp.status() {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(status_error(
            client,
            format!("listing the referrers of {subject} in {}", repo.path),
            resp,
        )),
    }
}

/// The artifact's entry in a referrers index.
fn referrer_descriptor(artifact: &Artifact) -> Result<Descriptor, RegistryError> {
    let mut d = descriptor(
        MediaType::ImageManifest,
        &artifact.manifest.digest,
        artifact.manifest.size(),
    )
    .map_err(|e| RegistryError::ReferrersIndex {
        subject: artifact.subject.clone(),
        reason: e.to_string(),
    })?;
    d.set_artifact_type(Some(MediaType::Other(artifact.artifact_type.clone())));
    if !artifact.annotations.is_empty() {
        d.set_annotations(Some(artifact.annotations.clone().into_iter().collect()));
    }
    Ok(d)
}

/// `existing` (the current fallback index, if any) with `entry` added, or `None` when it
/// already lists `entry` (nothing to write).
pub fn merged_index(
    existing: Option<ImageIndex>,
    entry: Descriptor,
) -> Result<Option<Vec<u8>>, String> {
    let mut manifests: Vec<Descriptor> =
        existing.map(|i| i.manifests().clone()).unwrap_or_default();
    if manifests.iter().any(|d| d.digest() == entry.digest()) {
        return Ok(None);
    }
    manifests.push(entry);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|e| e.to_string())?;
    to_canonical_json(&index)
        .map(|b| Some(b.bytes))
        .map_err(|e| e.to_string())
}

fn add_to_fallback_index(
    client: &RegistryClient,
    repo: &Repository,
    artifact: &Artifact,
) -> Result<(), RegistryError> {
    let tag = fallback_tag(&artifact.subject);
    let index_type = MediaType::ImageIndex.to_string();
    let mut get = Request::new(
        Method::GET,
        format!("/v2/{}/manifests/{tag}", repo.path),
        vec![push_scope(repo)],
    );
    get.accept = Some(index_type.clone());
    let resp = client.send(&get)?;
    let existing = match resp.status() {
        StatusCode::OK => {
            let bytes =
                client.read_document(resp, &format!("the referrers tag {tag} in {}", repo.path))?;
            // Something else under that name (not an index) is replaced, as the spec says.
            serde_json::from_slice::<ImageIndex>(&bytes).ok()
        }
        StatusCode::NOT_FOUND => None,
        _ => {
            return Err(status_error(
                client,
                format!("reading the referrers tag {tag} in {}", repo.path),
                resp,
            ));
        }
    };
    let body = merged_index(existing, referrer_descriptor(artifact)?).map_err(|reason| {
        RegistryError::ReferrersIndex {
            subject: artifact.subject.clone(),
            reason,
        }
    })?;
    let Some(body) = body else {
        return Ok(());
    };
    send_manifest(
        client,
        repo,
        &tag,
        &body,
        &index_type,
        &format!("the referrers tag {tag}"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(hex_char: char) -> Descriptor {
        let digest = format!("sha256:{}", hex_char.to_string().repeat(64));
        let mut d = descriptor(MediaType::ImageManifest, &digest, 10).unwrap();
        d.set_artifact_type(Some(MediaType::Other(
            crate::image::artifact::CYCLONEDX_JSON.into(),
        )));
        d
    }

    #[test]
    fn fallback_index_adds_each_artifact_once_and_keeps_others() {
        assert_eq!(fallback_tag("sha256:abc"), "sha256-abc");
        let first = merged_index(None, desc('a')).unwrap().unwrap();
        let parsed: ImageIndex = serde_json::from_slice(&first).unwrap();
        assert_eq!(merged_index(Some(parsed.clone()), desc('a')).unwrap(), None);
        let both = merged_index(Some(parsed), desc('b')).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["manifests"][1]["artifactType"],
            crate::image::artifact::CYCLONEDX_JSON
        );
        assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json");
    }
}
