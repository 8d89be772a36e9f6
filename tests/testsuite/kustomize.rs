//! kustomization.yaml (issue 15): `kubectl kustomize` of every Kubernetes output directory
//! renders exactly the objects of the plain files, and an overlay in a directory of its own
//! changes only what it says (replicas, namespace) while the images keep their digests.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::kube::{pyyaml, validate_all_versions};
use crate::support::{Fixture, output_within, require};

/// Objects sorted by (kind, namespace, name): kustomize orders them its own way.
fn sorted(mut docs: Vec<Value>) -> Vec<Value> {
    let key = |d: &Value| {
        (
            d["kind"].as_str().unwrap_or_default().to_string(),
            d["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    docs.sort_by_key(key);
    docs
}

/// `kubectl kustomize DIR`, written to `out` and read back by PyYAML.
fn kustomize(dir: &Path, out: &Path) -> Vec<Value> {
    require("kubectl");
    let yaml = output_within(Command::new("kubectl").arg("kustomize").arg(dir), 60);
    std::fs::write(out, yaml).unwrap();
    sorted(pyyaml(out))
}

#[test]
fn kubectl_kustomize_renders_the_plain_files_and_an_overlay_changes_only_what_it_says() {
    let fx = Fixture::new("two-bins");
    fx.edit("Cargo.toml", |s| {
        s + "\n[workspace.metadata.containerize.kubernetes]\nnamespace = \"shop\"\n"
    });
    fx.run(&[]).ok();
    let out = fx.out();
    let rendered = fx.tmp.path().join("rendered.yaml");
    for dir in [
        out.clone(),
        out.join("api"),
        out.join("worker"),
        out.join("worker-admin"),
    ] {
        let plain = sorted(pyyaml(&dir.join("kubernetes.yaml")));
        assert_eq!(
            kustomize(&dir, &rendered),
            plain,
            "kubectl kustomize {}",
            dir.display()
        );
    }
    let plain = sorted(pyyaml(&out.join("kubernetes.yaml")));
    validate_all_versions(&out.join("kubernetes.yaml"));
    // Three images in one namespace: one Namespace object, a ServiceAccount per image.
    let count = |kind: &str| plain.iter().filter(|d| d["kind"] == kind).count();
    assert_eq!((count("Namespace"), count("ServiceAccount")), (1, 3));

    // An overlay elsewhere, as a GitOps repo holds it.
    let overlay = fx.tmp.path().join("overlays/staging");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../../two-bins/target/containerize]\n\
         namespace: staging\n\
         replicas:\n  - name: api\n    count: 5\n",
    )
    .unwrap();
    let mut expected = plain.clone();
    for d in &mut expected {
        if d["kind"] == "Namespace" {
            d["metadata"]["name"] = "staging".into();
        } else {
            d["metadata"]["namespace"] = "staging".into();
        }
        if d["kind"] == "Deployment" && d["metadata"]["name"] == "api" {
            d["spec"]["replicas"] = 5.into();
        }
    }
    let staged = kustomize(&overlay, &rendered);
    assert_eq!(staged, sorted(expected));
    // Every image is still the built one, by digest.
    for image in ["api", "worker", "worker-admin"] {
        let reference = fx.image_json(image)["reference"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reference.contains("@sha256:"), "{reference}");
        let d = staged
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == image)
            .unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            reference.as_str()
        );
    }
}

#[test]
fn no_namespace_means_no_namespace_field_anywhere_and_create_namespace_false_skips_the_object() {
    let fx = Fixture::new("hello-http");
    fx.run(&[]).ok();
    let k = std::fs::read_to_string(fx.out().join("kustomization.yaml")).unwrap();
    assert!(!k.contains("namespace:"), "{k}");
    let docs = pyyaml(&fx.out().join("kubernetes.yaml"));
    assert!(
        docs.iter()
            .all(|d| d["metadata"].get("namespace").is_none())
    );
    assert!(docs.iter().all(|d| d["kind"] != "Namespace"));

    fx.edit("Cargo.toml", |s| {
        s + "[package.metadata.containerize.kubernetes]\nnamespace = \"shop\"\ncreate-namespace = false\n"
    });
    fx.run(&[]).ok();
    let docs = pyyaml(&fx.out().join("kubernetes.yaml"));
    assert!(docs.iter().all(|d| d["kind"] != "Namespace"));
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "shop"));
    let sa = docs.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    assert_eq!(sa["automountServiceAccountToken"], false);
    let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        sa["metadata"]["name"]
    );
}
