//! The files of one Kubernetes output directory + the image references in them →
//! `kustomization.yaml`, so `kubectl kustomize DIR` renders exactly those objects and a
//! GitOps repo can overlay the directory (`resources: [../../target/containerize]`) instead
//! of piping it through a tool (ko's answer to kustomize, ko #115).
//!
//! `images:` pins every image by digest (kustomize's image transformer then lets an overlay
//! move it to a mirror with `newName` and keep the digest); `labels:` carries only
//! `app.kubernetes.io/managed-by`, which every object already has, and never into selectors
//! or pod templates (a selector changed by an overlay orphans the running pods). No
//! `namespace:`: the objects carry their own, and an overlay's `namespace:` replaces it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::pieces::labels;
use super::{ImageRef, KubeError};

/// The file name kustomize looks for.
pub const FILE_NAME: &str = "kustomization.yaml";

/// `kustomize.config.k8s.io/v1beta1` Kustomization, the fields we write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    /// `kustomize.config.k8s.io/v1beta1`.
    pub api_version: &'static str,
    /// `Kustomization`.
    pub kind: &'static str,
    /// The files, relative to the directory.
    pub resources: Vec<String>,
    /// One entry per image, by digest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<KustomizeImage>,
    /// Labels added to the objects' metadata only.
    pub labels: Vec<LabelSet>,
}

/// One `images:` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeImage {
    /// The image name as the objects hold it (without tag or digest).
    pub name: String,
    /// The name to write (the same; an overlay changes it to move to a mirror).
    pub new_name: String,
    /// The tag, for a local `name:tag@sha256:…` reference (kustomize drops the tag when only
    /// a digest is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// `sha256:…`.
    pub digest: String,
}

/// One `labels:` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSet {
    /// The labels.
    pub pairs: BTreeMap<String, String>,
    /// Never `true`: selectors are immutable and would orphan running pods.
    pub include_selectors: bool,
    /// `false`: pod templates already carry them, and changing them restarts pods.
    pub include_templates: bool,
}

/// `name[:tag]@sha256:…` → the `images:` entry; `None` for a reference without a digest.
pub fn image_entry(reference: &str) -> Option<KustomizeImage> {
    let (name, digest) = reference.split_once('@')?;
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (
            &name[..last_slash + i],
            Some(name[last_slash + i + 1..].to_string()),
        ),
        None => (name, None),
    };
    Some(KustomizeImage {
        name: name.to_string(),
        new_name: name.to_string(),
        new_tag: tag,
        digest: digest.to_string(),
    })
}

/// The kustomization of a directory holding `resources`, with the images of `refs`.
pub fn kustomization(resources: &[&str], refs: &[&ImageRef]) -> Kustomization {
    let mut images: Vec<KustomizeImage> = refs
        .iter()
        .filter_map(|r| image_entry(&r.reference))
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    images.dedup_by(|a, b| a.name == b.name);
    Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: resources.iter().map(|r| r.to_string()).collect(),
        images,
        labels: vec![LabelSet {
            pairs: [(labels::MANAGED_BY.to_string(), crate::TOOL_NAME.to_string())].into(),
            include_selectors: false,
            include_templates: false,
        }],
    }
}

/// The file's text: a comment saying how to use it, then the YAML.
pub fn to_yaml(k: &Kustomization) -> Result<String, KubeError> {
    let yaml = serde_saphyr::to_string(k).map_err(|e| KubeError::Serialize {
        image: FILE_NAME.to_string(),
        message: e.to_string(),
    })?;
    Ok(format!(
        "# Written by cargo containerize: `kubectl kustomize` of this directory gives the\n\
         # objects of {}. Overlay it from your own kustomization.yaml with\n\
         #   resources: [<path to this directory>]\n\
         # and change replicas, namespace or images there; edits here are overwritten.\n{yaml}",
        k.resources.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn image_entries_keep_registry_ports_and_local_tags() {
        let e = image_entry(&format!("127.0.0.1:5000/team/api@{D}")).unwrap();
        assert_eq!(
            (e.name.as_str(), e.new_tag, e.digest.as_str()),
            ("127.0.0.1:5000/team/api", None, D)
        );
        let e = image_entry(&format!("api:latest@{D}")).unwrap();
        assert_eq!(
            (e.name.as_str(), e.new_tag.as_deref()),
            ("api", Some("latest"))
        );
        assert_eq!(image_entry("api:latest"), None);
    }

    #[test]
    fn labels_never_reach_selectors_or_templates() {
        let r = ImageRef {
            reference: format!("api:latest@{D}"),
            pushed: false,
        };
        let k = kustomization(&["kubernetes.yaml"], &[&r, &r]);
        assert_eq!(k.images.len(), 1);
        let yaml = to_yaml(&k).unwrap();
        assert!(yaml.contains("includeSelectors: false"), "{yaml}");
        assert!(yaml.contains("includeTemplates: false"), "{yaml}");
        assert!(yaml.contains("newTag: latest"), "{yaml}");
        assert!(!yaml.contains("namespace:"), "{yaml}");
    }
}
