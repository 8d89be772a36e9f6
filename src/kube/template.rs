//! User templates (minijinja) → typed Deployment / Service, plus any further objects.
//!
//! A project can replace the built-in objects with its own templates (`templates` in
//! `[…containerize.kubernetes]`: a directory with `deployment.yaml` and/or `service.yaml`).
//! A template sees the [`Pieces`] of the image. Its output is parsed back into the
//! k8s-openapi type and re-serialized, so what is written is always a typed object: an
//! unknown field, a wrong type or the wrong kind is an error naming the template and the
//! field, never a broken manifest. Further documents (of any kind) pass through untyped,
//! after `containerize://<image>` in them is replaced by the image reference. The built-in
//! templates in `templates/kubernetes/` give exactly what [`super::render`] builds (tested
//! below); they are the starting point to copy.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::KubeError;
use super::pieces::Pieces;

/// The built-in Deployment template.
pub const DEPLOYMENT: &str = include_str!("../../templates/kubernetes/deployment.yaml");
/// The built-in Service template.
pub const SERVICE: &str = include_str!("../../templates/kubernetes/service.yaml");
/// File names a template directory may hold.
pub const FILES: [&str; 2] = ["deployment.yaml", "service.yaml"];

/// One template: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file (for errors).
    pub path: PathBuf,
    /// Its content.
    pub source: String,
}

/// A project's template directory.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// `deployment.yaml`, if present.
    pub deployment: Option<Template>,
    /// `service.yaml`, if present.
    pub service: Option<Template>,
}

impl Templates {
    /// Reads `dir`. Any file other than the known names is an error (a misspelled template
    /// would otherwise be ignored); dot files are skipped.
    pub fn load(dir: &Path, origin: &str) -> Result<Templates, KubeError> {
        let entries = std::fs::read_dir(dir).map_err(dir_error(dir, origin))?;
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(dir_error(dir, origin))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                names.push((name, entry.path()));
            }
        }
        names.sort();
        let mut t = Templates::default();
        for (name, path) in names {
            let source = std::fs::read_to_string(&path).map_err(dir_error(&path, origin))?;
            let template = Some(Template { path, source });
            match name.as_str() {
                "deployment.yaml" => t.deployment = template,
                "service.yaml" => t.service = template,
                _ => {
                    return Err(KubeError::UnknownTemplate {
                        path: dir.join(&name),
                    });
                }
            }
        }
        Ok(t)
    }
}

/// The error for a template directory, or a file in it, that cannot be read.
fn dir_error<'a>(dir: &'a Path, origin: &'a str) -> impl FnOnce(std::io::Error) -> KubeError + 'a {
    move |e| KubeError::TemplateDir {
        dir: dir.to_path_buf(),
        origin: origin.to_string(),
        message: e.to_string(),
    }
}

/// Renders `template` with `pieces` and parses the output: the one document of `T`'s kind
/// (Deployment, Service) into a `T`, strictly (the re-serialized object must hold
/// everything the template wrote), and every other document, of any kind, as it is, so a
/// template can add a ConfigMap, a ServiceMonitor or any custom resource next to it.
/// `containerize://<image>` in the output becomes `pieces.image`.
pub fn render<T: DeserializeOwned + Serialize + k8s_openapi::Resource>(
    template: &Template,
    pieces: &Pieces,
    image_name: &str,
) -> Result<(T, Vec<Value>), KubeError> {
    let err = |message: String| KubeError::Template {
        path: template.path.clone(),
        message,
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let name = template.path.display().to_string();
    env.add_template(&name, &template.source)
        .map_err(|e| err(render_error(&e)))?;
    let text = env
        .get_template(&name)
        .and_then(|t| t.render(minijinja::value::Serde(pieces)))
        .map_err(|e| err(render_error(&e)))?;
    let images = [(image_name.to_string(), pieces.image.clone())].into();
    let text =
        super::refs::replace(&text, &images, "the output").map_err(|e| err(e.to_string()))?;
    parse_all(&text).map_err(err)
}

/// The documents of a template's output: the one of `T`'s kind, typed, and the others.
pub fn parse_all<T: DeserializeOwned + Serialize + k8s_openapi::Resource>(
    text: &str,
) -> Result<(T, Vec<Value>), String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("the output is not YAML: {e}"))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let (main, extra): (Vec<Value>, Vec<Value>) =
        docs.into_iter().partition(|d| d["kind"] == T::KIND);
    let [main] = <[Value; 1]>::try_from(main).map_err(|main| {
        let kinds: Vec<String> = extra
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("(none)").to_string())
            .collect();
        format!(
            "the output must hold exactly one {}, but it holds {} (other kinds: {})",
            T::KIND,
            main.len(),
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        )
    })?;
    for (i, d) in extra.iter().enumerate() {
        let field = |k: &str| d[k].as_str().is_some_and(|v| !v.is_empty());
        if !field("apiVersion") || !field("kind") || d["metadata"]["name"].as_str().is_none() {
            return Err(format!(
                "extra document {} needs apiVersion, kind and metadata.name",
                i + 1
            ));
        }
    }
    Ok((parse_value(main)?, extra))
}

fn render_error(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!("line {line}: {e}"),
        None => e.to_string(),
    }
}

/// One parsed document into `T`, rejecting anything the type would drop.
fn parse_value<T: DeserializeOwned + Serialize>(mut value: Value) -> Result<T, String> {
    strip_nulls(&mut value);
    let typed: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("`{path}`: {}", e.into_inner())
        }
    })?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if let Some(path) = first_difference(&value, &back, String::new()) {
        return Err(format!(
            "`{path}` is not a field of this object (or has a value Kubernetes would not keep)"
        ));
    }
    Ok(typed)
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The first path in `written` that `kept` lacks or holds differently.
fn first_difference(written: &Value, kept: &Value, at: String) -> Option<String> {
    match (written, kept) {
        (Value::Object(w), Value::Object(k)) => {
            let mut keys: Vec<&String> = w.keys().collect();
            keys.sort();
            keys.into_iter().find_map(|key| {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match k.get(key) {
                    None => Some(path),
                    Some(kv) => first_difference(&w[key], kv, path),
                }
            })
        }
        (Value::Array(w), Value::Array(k)) if w.len() == k.len() => w
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (w, k))| first_difference(w, k, format!("{at}[{i}]"))),
        (w, k) if w == k => None,
        _ => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kube::{Autoscaling, KubeSettings, Metrics, ProbeSettings, ServiceSettings};
    use crate::kube::pieces::{self, Workload};
    use crate::kube::render;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;

    fn builtin(name: &str, source: &str) -> Template {
        Template {
            path: PathBuf::from(name),
            source: source.to_string(),
        }
    }

    fn check_builtin_templates_match(s: &KubeSettings) {
        let w = Workload {
            image_name: "api",
            package: "shop",
            version: "0.3.0",
            user: "65532:65532",
            image: "api:latest@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            settings: s,
        };
        let p = pieces::pieces(&w).unwrap();
        let d: Deployment = render(&builtin("deployment.yaml", DEPLOYMENT), &p, "api")
            .unwrap()
            .0;
        assert_eq!(d, render::deployment(&p));
        if p.service.is_some() {
            let svc: Service = render(&builtin("service.yaml", SERVICE), &p, "api")
                .unwrap()
                .0;
            assert_eq!(Some(svc), render::service(&p));
        }
    }

    #[test]
    fn builtin_templates_give_what_the_builder_gives() {
        check_builtin_templates_match(&KubeSettings::default());
        let probe = ProbeSettings {
            path: Some("/healthz".into()),
            port: None,
            initial_delay_seconds: Some(1),
            period_seconds: 10,
            timeout_seconds: 2,
            failure_threshold: 3,
        };
        let mut s = KubeSettings {
            namespace: Some("prod".into()),
            port: Some(8080),
            service: Some(ServiceSettings {
                type_: "NodePort".into(),
                port: 80,
            }),
            metrics: Some(Metrics {
                port: 9090,
                path: "/metrics".into(),
            }),
            autoscaling: Some(Autoscaling {
                min_replicas: 2,
                max_replicas: 4,
                cpu_utilization: 70,
            }),
            env_from_secrets: vec!["db".into()],
            cpu_env: Some("TOKIO_WORKER_THREADS".into()),
            ..KubeSettings::default()
        };
        s.probes.liveness = Some(probe.clone());
        s.probes.startup = Some(probe);
        s.annotations
            .insert("note".into(), ": x # not a comment".into());
        s.env.insert("ON".into(), "on".into());
        check_builtin_templates_match(&s);
    }

    #[test]
    fn template_output_is_checked_field_by_field() {
        let s = KubeSettings::default();
        let w = Workload {
            image_name: "api",
            package: "shop",
            version: "0.3.0",
            user: "65532",
            image: "api@sha256:00",
            settings: &s,
        };
        let p = pieces::pieces(&w).unwrap();
        let typo = DEPLOYMENT.replace("revisionHistoryLimit", "revisionHistoryLimt");
        let e = render::<Deployment>(&builtin("d.yaml", &typo), &p, "api")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`spec.revisionHistoryLimt` is not a field"),
            "{e}"
        );
        let wrong_kind = DEPLOYMENT.replace("kind: Deployment", "kind: Servise");
        let e = render::<Deployment>(&builtin("d.yaml", &wrong_kind), &p, "api")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Servise"), "{e}");
        let e = render::<Deployment>(&builtin("d.yaml", "{{ nme }}"), &p, "api")
            .unwrap_err()
            .to_string();
        assert!(e.contains("undefined"), "{e}");
        let e = render::<Service>(
            &builtin(
                "s.yaml",
                "apiVersion: v1\nkind: Service\nspec:\n  ports: 80\n",
            ),
            &p,
            "api",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`spec.ports`"), "{e}");
    }

    #[test]
    fn extra_documents_pass_through_with_image_references_resolved() {
        let s = KubeSettings::default();
        let w = Workload {
            image_name: "api",
            package: "shop",
            version: "0.3.0",
            user: "65532",
            image: "api@sha256:00",
            settings: &s,
        };
        let p = pieces::pieces(&w).unwrap();
        let extra = format!(
            "{DEPLOYMENT}\n---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata:\n  name: api\nspec:\n  image: containerize://api\n"
        );
        let (d, extras) = render::<Deployment>(&builtin("d.yaml", &extra), &p, "api").unwrap();
        assert_eq!(d, render::deployment(&p));
        assert_eq!(extras.len(), 1);
        assert_eq!(extras[0]["kind"], "PodMonitor");
        assert_eq!(extras[0]["spec"]["image"], "api@sha256:00");
        let nameless = format!("{DEPLOYMENT}\n---\napiVersion: v1\nkind: ConfigMap\n");
        let e = render::<Deployment>(&builtin("d.yaml", &nameless), &p, "api")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("extra document 1 needs apiVersion, kind and metadata.name"),
            "{e}"
        );
    }

    #[test]
    fn a_template_directory_holds_only_known_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("service.yaml"), SERVICE).unwrap();
        std::fs::write(dir.path().join(".keep"), "").unwrap();
        let t = Templates::load(dir.path(), "test").unwrap();
        assert!(t.service.is_some() && t.deployment.is_none());
        std::fs::write(dir.path().join("deploy.yaml"), "").unwrap();
        let e = Templates::load(dir.path(), "test").unwrap_err().to_string();
        assert!(e.contains("deploy.yaml"), "{e}");
    }
}
