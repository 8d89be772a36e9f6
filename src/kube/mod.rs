//! Built images + `[…containerize.kubernetes]` → Kubernetes YAML next to every image.
//!
//! In: the [`Plan`] (each image's resolved [`KubeSettings`]) and, per image, the reference
//! that goes into `image:` ([`ImageRef`]: the pushed `registry/repo@sha256:…`, or the local
//! `name:tag@sha256:…`). Out: `<image>/kubernetes.yaml` (Namespace when `namespace` is set,
//! ServiceAccount, Deployment + Service + optional HPA, PDB, Ingress) and `kubernetes.yaml`
//! with every image of the run, each with a `kustomization.yaml` ([`kustomize`]), under
//! `target/containerize/` or `--kube-dir`. Everything is rendered before the first file is
//! written.
//!
//! Objects are k8s-openapi values serialized by serde-saphyr (which quotes `yes`, `on`,
//! `012`, …), never assembled as text; templates are parsed back into the same types.
//! This module only reads values made earlier: it never runs cargo or reads the layout.
//! See issue 5 for the defaults and why.

pub mod kustomize;
pub mod network;
pub mod pieces;
pub mod refs;
pub mod render;

pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;

use crate::config::Source;
pub use crate::config::kube::{KubeLayer, KubeSettings, Workload as KubeWorkload};
use crate::exit;
use crate::fsutil::{self, FsError};
use crate::output::Shell;
use crate::plan::{ImagePlan, Plan};
use pieces::Workload;
use render::Objects;
use template::Templates;

/// The file name written per image and for the whole run.
pub const FILE_NAME: &str = "kubernetes.yaml";

/// Errors writing Kubernetes YAML or resolving `containerize://` references.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KubeError {
    /// An image name that cannot become a Kubernetes object name.
    #[error("image `{image}` has no valid Kubernetes name: {message}")]
    #[diagnostic(
        code(containerize::config),
        help("set `name` in [package.metadata.containerize.bin.{image}.kubernetes]")
    )]
    Name {
        /// The image.
        image: String,
        /// Why.
        message: String,
    },
    /// Two images whose objects would have the same name.
    #[error("images `{first}` and `{second}` both give Kubernetes objects named `{name}`")]
    #[diagnostic(
        code(containerize::config),
        help("set a distinct `name` in one of their [….kubernetes] tables")
    )]
    DuplicateName {
        /// The object name.
        name: String,
        /// One image.
        first: String,
        /// The other.
        second: String,
    },
    /// The image runs as root, which the pod's `runAsNonRoot` forbids.
    #[error("image `{image}` runs as root, but its Deployment requires a non-root user")]
    #[diagnostic(
        code(containerize::config),
        help(
            "remove `user` from the metadata (the default is nonroot, 65532), or set kubernetes.enabled = false for this binary"
        )
    )]
    RootUser {
        /// The image.
        image: String,
    },
    /// A user name whose uid is unknown here.
    #[error("image `{image}` runs as user `{user}`, whose uid the Deployment cannot know")]
    #[diagnostic(
        code(containerize::config),
        help("set `user` as a number, uid or uid:gid (e.g. \"65532:65532\")")
    )]
    NamedUser {
        /// The image.
        image: String,
        /// The configured user.
        user: String,
    },
    /// The template directory cannot be read.
    #[error("cannot read Kubernetes templates in `{}` (from {origin}): {message}", dir.display())]
    #[diagnostic(
        code(containerize::config),
        help(
            "create the directory, or fix `templates` (it is relative to the Cargo.toml that sets it)"
        )
    )]
    TemplateDir {
        /// The directory or file.
        dir: PathBuf,
        /// The table that set `templates`.
        origin: String,
        /// The I/O error.
        message: String,
    },
    /// A file in the template directory that is not a known template.
    #[error("unknown Kubernetes template `{}`", path.display())]
    #[diagnostic(
        code(containerize::config),
        help("a template directory holds deployment.yaml and/or service.yaml")
    )]
    UnknownTemplate {
        /// The file.
        path: PathBuf,
    },
    /// A template that does not give a valid object.
    #[error("template `{}` does not give a valid object: {message}", path.display())]
    #[diagnostic(
        code(containerize::config),
        help(
            "compare it with the built-in one in templates/kubernetes/ of cargo-containerize; values go through `| tojson`"
        )
    )]
    Template {
        /// The template file.
        path: PathBuf,
        /// What is wrong, with the field path.
        message: String,
    },
    /// serde-saphyr failed (a bug).
    #[error("failed to serialize the Kubernetes objects of `{image}`: {message}")]
    #[diagnostic(code(containerize::internal))]
    Serialize {
        /// The image.
        image: String,
        /// The error.
        message: String,
    },
    /// A `containerize://` reference to a binary that was not built.
    #[error("`containerize://{name}` in {file}:{line} names no image of this build")]
    #[diagnostic(
        code(containerize::usage),
        help("binaries: {known}; select the binary with -p/--bin, or fix the name")
    )]
    UnknownRef {
        /// The binary name as written.
        name: String,
        /// The input file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The images that were built.
        known: String,
    },
    /// An input of `resolve` that is not YAML (before or after replacement).
    #[error("{file} is not valid YAML: {message}")]
    #[diagnostic(code(containerize::usage))]
    InputYaml {
        /// The input file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// Reading an input or writing an output.
    #[error(transparent)]
    #[diagnostic(code(containerize::io))]
    Fs(#[from] FsError),
}

impl KubeError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            KubeError::Serialize { .. } | KubeError::Fs(_) => exit::OUTPUT,
            _ => exit::CONFIG,
        }
    }
}

/// What the pipeline hands over per image, in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The `image:` value: `registry/repo@sha256:…` when pushed, else the local
    /// `name:tag@sha256:…`.
    pub reference: String,
    /// Whether `reference` is in a registry (a local one gets a warning comment).
    pub pushed: bool,
}

/// One object of any kind we write; serializes as the object itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// v1 Namespace.
    Namespace(Box<Namespace>),
    /// v1 ServiceAccount.
    ServiceAccount(Box<ServiceAccount>),
    /// apps/v1 Deployment.
    Deployment(Box<Deployment>),
    /// batch/v1 Job.
    Job(Box<Job>),
    /// batch/v1 CronJob.
    CronJob(Box<CronJob>),
    /// v1 Service.
    Service(Box<Service>),
    /// autoscaling/v2 HorizontalPodAutoscaler.
    Autoscaler(Box<HorizontalPodAutoscaler>),
    /// policy/v1 PodDisruptionBudget.
    DisruptionBudget(Box<PodDisruptionBudget>),
    /// networking.k8s.io/v1 Ingress.
    Ingress(Box<Ingress>),
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy(Box<NetworkPolicy>),
    /// A further document of a template, of any kind, as the template wrote it.
    Extra(Box<serde_json::Value>),
}

impl Objects {
    /// The objects in apply order.
    pub fn into_list(self) -> Vec<Object> {
        let mut v: Vec<Object> = self
            .namespace
            .map(|o| Object::Namespace(Box::new(o)))
            .into_iter()
            .collect();
        v.push(Object::ServiceAccount(Box::new(self.service_account)));
        v.extend(self.deployment.map(|o| Object::Deployment(Box::new(o))));
        v.extend(self.job.map(|o| Object::Job(Box::new(o))));
        v.extend(self.cron_job.map(|o| Object::CronJob(Box::new(o))));
        v.extend(self.service.map(|o| Object::Service(Box::new(o))));
        v.extend(self.autoscaler.map(|o| Object::Autoscaler(Box::new(o))));
        v.extend(
            self.disruption_budget
                .map(|o| Object::DisruptionBudget(Box::new(o))),
        );
        v.extend(self.ingress.map(|o| Object::Ingress(Box::new(o))));
        v.extend(
            self.network_policy
                .map(|o| Object::NetworkPolicy(Box::new(o))),
        );
        v.extend(self.extra.into_iter().map(|o| Object::Extra(Box::new(o))));
        v
    }
}

/// Objects as multi-document YAML. serde-saphyr quotes every scalar that a YAML 1.1 reader
/// (PyYAML, older kubectl) would take for a bool, number or null; block scalars are off so
/// a long image reference stays on one greppable line.
pub fn to_yaml(image: &str, objects: &[Object]) -> Result<String, KubeError> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_multiple_with_options(objects, options).map_err(|e| {
        KubeError::Serialize {
            image: image.to_string(),
            message: e.to_string(),
        }
    })
}

/// The comment lines at the top of a file: where it came from, and a warning for images
/// that exist only in the local OCI layout.
pub fn header(images: &[(&str, &ImageRef)]) -> String {
    let names: Vec<&str> = images.iter().map(|(n, _)| *n).collect();
    let mut h = format!(
        "# Kubernetes objects for {}, written by cargo containerize.\n\
         # Configure them in [package.metadata.containerize.kubernetes]; edits here are overwritten.\n",
        names.join(", ")
    );
    for (name, r) in images {
        if !r.pushed {
            h.push_str(&format!(
                "# LOCAL IMAGE: {name} was not pushed; its image reference\n\
                 #   {}\n\
                 # exists only in target/containerize/oci. Push it (cargo containerize --push\n\
                 # --repo REGISTRY/NAMESPACE) or load it into the cluster's nodes before applying.\n",
                r.reference
            ));
        }
    }
    h
}

/// The objects of one image: the built-in builder, or the project's templates.
pub fn build_objects(w: &Workload, templates: &Templates) -> Result<Objects, KubeError> {
    let pieces = pieces::pieces(w)?;
    // Templates hold a Deployment and a Service: a Job or CronJob has neither.
    let mut extra = Vec::new();
    let deployment = match (&w.settings.workload, &templates.deployment) {
        (KubeWorkload::Deployment, Some(t)) => {
            let (d, more) = template::render(t, &pieces, w.image_name)?;
            extra.extend(more);
            Some(d)
        }
        (KubeWorkload::Deployment, None) => Some(render::deployment(&pieces)),
        _ => None,
    };
    let service = match (&templates.service, &pieces.service) {
        (Some(t), Some(_)) => {
            let (svc, more) = template::render(t, &pieces, w.image_name)?;
            extra.extend(more);
            Some(svc)
        }
        _ => render::service(&pieces),
    };
    let mut objects = render::objects(w, &pieces, deployment, service);
    objects.network_policy = network::network_policy(w.settings, &pieces);
    objects.extra = extra;
    Ok(objects)
}

fn template_dir(ws_root: &Path, dir: &str, source: &Source) -> PathBuf {
    let base = match source {
        Source::Package(m) | Source::Bin(m, _) => ws_root
            .join(m)
            .parent()
            .map_or_else(|| ws_root.to_path_buf(), Path::to_path_buf),
        _ => ws_root.to_path_buf(),
    };
    base.join(dir)
}

fn workload<'a>(image: &'a ImagePlan, r: &'a ImageRef) -> Workload<'a> {
    Workload {
        image_name: &image.name,
        package: &image.package,
        version: &image.version,
        user: &image.settings.user,
        image: &r.reference,
        settings: &image.settings.kubernetes,
    }
}

/// Writes `<dir>/<image>/kubernetes.yaml` for every image with Kubernetes output enabled,
/// and `<dir>/kubernetes.yaml` with all of them, each with a `kustomization.yaml` next to
/// it; `dir` is `--kube-dir` or the plan's `target/containerize/`. Returns the files
/// written.
pub fn write_all(
    ws_root: &Path,
    plan: &Plan,
    refs: &[ImageRef],
    shell: &mut Shell,
) -> Result<Vec<PathBuf>, KubeError> {
    let Some(dir) = &plan.outputs.kube_dir else {
        return Ok(Vec::new());
    };
    let mut files: Vec<(PathBuf, String, Vec<&ImageRef>)> = Vec::new();
    let mut namespaces = std::collections::BTreeSet::new();
    let mut all: Vec<Object> = Vec::new();
    let mut all_refs: Vec<(&str, &ImageRef)> = Vec::new();
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    for (image, r) in plan.images.iter().zip(refs) {
        let kube = &image.settings.kubernetes;
        if !kube.enabled {
            continue;
        }
        let w = workload(image, r);
        let name = pieces::object_name(&w)?;
        if let Some(first) = names.insert(name.clone(), &image.name) {
            return Err(KubeError::DuplicateName {
                name,
                first: first.to_string(),
                second: image.name.clone(),
            });
        }
        let templates = match &kube.templates {
            None => Templates::default(),
            Some((t, source)) => {
                Templates::load(&template_dir(ws_root, t, source), &source.to_string())?
            }
        };
        let objects = build_objects(&w, &templates)?.into_list();
        let text = format!(
            "{}{}",
            header(&[(&image.name, r)]),
            to_yaml(&image.name, &objects)?
        );
        files.push((dir.join(&image.name), text, vec![r]));
        for o in objects {
            // Images in one namespace share its Namespace object: the run's file holds it
            // once.
            if let Object::Namespace(ns) = &o
                && !namespaces.insert(ns.metadata.name.clone())
            {
                continue;
            }
            all.push(o);
        }
        all_refs.push((&image.name, r));
    }
    if !all_refs.is_empty() {
        let text = format!("{}{}", header(&all_refs), to_yaml("(all)", &all)?);
        files.push((
            dir.clone(),
            text,
            all_refs.iter().map(|(_, r)| *r).collect(),
        ));
    }
    // Everything is rendered before anything is written: a bad template or name leaves
    // the previous files as they were.
    let mut written = Vec::new();
    for (d, text, refs) in &files {
        let kustomization = kustomize::to_yaml(&kustomize::kustomization(&[FILE_NAME], refs))?;
        fsutil::create_dir_all(d)?;
        for (name, text) in [(FILE_NAME, text), (kustomize::FILE_NAME, &kustomization)] {
            let path = d.join(name);
            fsutil::write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
    }
    if !all_refs.is_empty() {
        shell.status(
            "Writing",
            format!("Kubernetes YAML {}", dir.join(FILE_NAME).display()),
        );
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kube::ServiceSettings;

    /// Label values a YAML 1.1 reader would take for a bool, number or null unless quoted.
    const YAML_1_1_SCALARS: [(&str, &str); 5] = [
        ("a", "yes"),
        ("b", "on"),
        ("c", "012"),
        ("d", "null"),
        ("e", "1e3"),
    ];

    #[test]
    fn yaml_is_multi_document_quoted_and_deterministic() {
        let mut s = KubeSettings {
            port: Some(8080),
            service: Some(ServiceSettings {
                type_: "ClusterIP".into(),
                port: 80,
            }),
            ..KubeSettings::default()
        };
        for (k, v) in YAML_1_1_SCALARS {
            s.labels.insert(k.into(), v.into());
        }
        s.annotations.insert("x".into(), ": x".into());
        s.annotations.insert("y".into(), "- a\n# b\n".into());
        let w = Workload {
            image_name: "api",
            package: "shop",
            version: "1.0.0",
            user: "65532:65532",
            image: "api:latest@sha256:00",
            settings: &s,
        };
        let objects = build_objects(&w, &Templates::default())
            .unwrap()
            .into_list();
        let yaml = to_yaml("api", &objects).unwrap();
        assert_eq!(yaml, to_yaml("api", &objects).unwrap());
        // ServiceAccount, Deployment, Service, NetworkPolicy.
        assert_eq!(yaml.matches("\n---\n").count(), 3, "{yaml}");
        // Parsed back (with the YAML 1.1 rules PyYAML and kubectl's parser use, too), every
        // value is the same string.
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        let labels = &docs[1]["metadata"]["labels"];
        for (k, v) in YAML_1_1_SCALARS {
            assert_eq!(labels[k], v, "{yaml}");
        }
        assert_eq!(docs[2]["metadata"]["annotations"]["x"], ": x");
        assert_eq!(docs[2]["metadata"]["annotations"]["y"], "- a\n# b\n");
    }

    #[test]
    fn local_images_are_marked_in_the_header() {
        let local = ImageRef {
            reference: "api:latest@sha256:00".into(),
            pushed: false,
        };
        let pushed = ImageRef {
            reference: "ghcr.io/o/api@sha256:00".into(),
            pushed: true,
        };
        let h = header(&[("api", &local), ("web", &pushed)]);
        assert!(h.contains("for api, web"), "{h}");
        assert!(h.contains("LOCAL IMAGE: api was not pushed"), "{h}");
        assert!(!h.contains("web was not pushed"), "{h}");
        assert!(h.lines().all(|l| l.starts_with('#')), "{h}");
    }
}
