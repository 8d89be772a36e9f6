//! `merge`'s registry side. Each platform's image, pushed on its own by a `--per-platform`
//! run under its per-platform tag, is read back by that tag (or by the digest a `--from`
//! file recorded): manifest and config, small documents; no layer moves. It is checked
//! against what this checkout plans: the platform, and the manifest annotations, which
//! carry the commit (`org.opencontainers.image.revision`), the version and the creation
//! time. Then the index over them goes up and the tags move last, as for any push: a
//! missing platform or one from another commit moves no tag.

use std::collections::BTreeMap;

use oci_spec::image::{ANNOTATION_REVISION, MediaType};

use crate::canonical::JsonBlob;
use crate::config::registry::RegistrySettings;
use crate::image::{Image, ImageSet};
use crate::output::Shell;
use crate::platform::Platform;
use crate::reference::{ImageReference, Repository};
use crate::registry::pull::{ConfigDoc, DocCache, Document, Documents, layer_blobs, unexpected};
use crate::registry::push::PushedImage;
use crate::registry::transport::RegistryClient;
use crate::registry::upload::{manifest_present, put_manifest};
use crate::registry::{Clients, PushJob, RegistryError, extra_ca, set_all_tags};

/// One image to join: where its platforms are, and what they must say.
#[derive(Debug, Clone)]
pub struct MergeJob<'a> {
    /// Its repository.
    pub repository: Repository,
    /// Each platform and where its `--per-platform` push is: its per-platform tag, or
    /// the digest a `merge --from` file recorded.
    pub platforms: Vec<(Platform, ImageReference)>,
    /// The manifest annotations this checkout plans (the same commit, version, time).
    pub annotations: &'a BTreeMap<String, String>,
}

/// Reads every platform image of every job from its registry and checks it, before
/// anything is written. Returns each job's images, in the jobs' order.
pub fn fetch_platforms(
    jobs: &[MergeJob<'_>],
    cache: &DocCache,
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<Vec<Vec<Image>>, RegistryError> {
    let extra_ca = extra_ca(settings)?;
    let mut clients: Clients = Clients::default();
    let mut out = Vec::new();
    for job in jobs {
        let (client, ()) = clients.connect(&job.repository, settings, &extra_ca, shell)?;
        let mut images = Vec::new();
        for (platform, r) in &job.platforms {
            shell.verbose("Reading", format!("{r} ({platform})"));
            images.push(fetch_platform(
                client,
                r,
                *platform,
                job.annotations,
                cache,
            )?);
        }
        out.push(images);
    }
    Ok(out)
}

/// One platform's manifest and config, by its per-platform tag, checked.
fn fetch_platform(
    client: &RegistryClient,
    r: &ImageReference,
    platform: Platform,
    expected: &BTreeMap<String, String>,
    cache: &DocCache,
) -> Result<Image, RegistryError> {
    let docs = Documents {
        client,
        r,
        cache,
        role: "the per-platform image",
        requests: std::cell::Cell::new(0),
    };
    let (bytes, digest) = docs.manifest(r.reference()).map_err(|e| match e {
        RegistryError::Unexpected { status: 404, .. } => RegistryError::PlatformMissing {
            reference: r.to_string(),
            platform,
        },
        other => other,
    })?;
    let mismatch = |what: String| RegistryError::PlatformMismatch {
        reference: r.to_string(),
        platform,
        what,
    };
    let manifest: Document = serde_json::from_slice(&bytes)
        .map_err(|e| unexpected(client, &format!("reading {r}"), e.to_string()))?;
    if manifest.media_type != MediaType::ImageManifest.to_string() {
        return Err(mismatch(format!(
            "it is a `{}`, not one platform's OCI image manifest",
            manifest.media_type
        )));
    }
    check_annotations(expected, &manifest.annotations).map_err(mismatch)?;
    let config = manifest.config.as_ref().ok_or_else(|| {
        unexpected(
            client,
            &format!("reading {r}"),
            "the manifest has no config",
        )
    })?;
    let config_bytes = docs.config(&config.digest)?;
    let mut config_doc: ConfigDoc = serde_json::from_slice(&config_bytes)
        .map_err(|e| unexpected(client, &format!("reading the config of {r}"), e.to_string()))?;
    if config_doc.architecture != platform.arch() || config_doc.os != platform.os() {
        return Err(mismatch(format!(
            "its config says {}/{}",
            config_doc.os, config_doc.architecture
        )));
    }
    let diff_ids = std::mem::take(&mut config_doc.rootfs.diff_ids);
    let layers = layer_blobs(client, r, &manifest, diff_ids)?;
    Ok(Image {
        platform,
        config: JsonBlob {
            bytes: config_bytes,
            digest: config.digest.clone(),
        },
        manifest: JsonBlob { bytes, digest },
        layers,
    })
}

/// Whether a pushed manifest's annotations are the ones this checkout plans; the
/// revision (the commit) is compared first, as the likeliest difference.
fn check_annotations(
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Result<(), String> {
    let show = |v: Option<&String>| v.map_or_else(|| "unset".to_string(), |v| format!("`{v}`"));
    let revision = (
        ours.get(ANNOTATION_REVISION),
        theirs.get(ANNOTATION_REVISION),
    );
    if revision.0 != revision.1 {
        return Err(format!(
            "it was built from commit {}, this checkout is at {}",
            show(revision.1),
            show(revision.0)
        ));
    }
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    match keys.into_iter().find(|k| ours.get(*k) != theirs.get(*k)) {
        None => Ok(()),
        Some(k) => Err(format!(
            "its annotation `{k}` is {}, this checkout plans {}",
            show(theirs.get(k)),
            show(ours.get(k))
        )),
    }
}

/// Pushes each job's index (its platform manifests are already there: [`fetch_platforms`]
/// read them) and then, as for any push, the tags last.
pub fn push_indexes(
    jobs: &[PushJob<'_>],
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<Vec<PushedImage>, RegistryError> {
    let extra_ca = extra_ca(settings)?;
    let mut clients: Clients = Clients::default();
    let mut out = Vec::new();
    for job in jobs {
        let (client, ()) = clients.connect(&job.repository, settings, &extra_ca, shell)?;
        let (top, media_type) = job.set.top();
        let media_type = media_type.to_string();
        let repo = &job.repository;
        if !manifest_present(client, repo, &top.digest, &media_type, &top.digest)? {
            put_manifest(
                client,
                repo,
                &top.digest,
                &top.bytes,
                &media_type,
                &top.digest,
            )?;
        }
        shell.status(
            "Merged",
            format!("{repo}@{} ({})", top.digest, platforms(job.set)),
        );
        out.push(PushedImage {
            repository: repo.clone(),
            digest: top.digest.clone(),
            tags: job.tags.clone(),
            uploaded_bytes: 0,
            uploaded: 0,
            skipped: job.set.images.len(),
            mounted: 0,
        });
    }
    set_all_tags(jobs, &clients, shell)?;
    Ok(out)
}

fn platforms(set: &ImageSet) -> String {
    let names: Vec<String> = set.images.iter().map(|i| i.platform.to_string()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn another_commit_is_named_before_any_other_difference() {
        let ours = map(&[
            (ANNOTATION_REVISION, "aaa"),
            ("org.opencontainers.image.version", "1"),
        ]);
        let theirs = map(&[
            (ANNOTATION_REVISION, "bbb"),
            ("org.opencontainers.image.version", "2"),
        ]);
        let e = check_annotations(&ours, &theirs).unwrap_err();
        assert_eq!(
            e,
            "it was built from commit `bbb`, this checkout is at `aaa`"
        );
        let unset = check_annotations(&ours, &map(&[])).unwrap_err();
        assert!(unset.contains("commit unset"), "{unset}");
    }

    #[test]
    fn other_annotations_must_match_too() {
        let ours = map(&[(ANNOTATION_REVISION, "aaa"), ("k", "1")]);
        assert_eq!(check_annotations(&ours, &ours.clone()), Ok(()));
        let e = check_annotations(&ours, &map(&[(ANNOTATION_REVISION, "aaa")])).unwrap_err();
        assert_eq!(e, "its annotation `k` is unset, this checkout plans `1`");
    }
}
