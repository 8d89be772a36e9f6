//! Kubernetes YAML (issue 5): the files written next to every image are checked by
//! kubernetes-validate --strict and the kit's linter for Kubernetes 1.30 and the newest
//! schema it bundles, snapshotted, re-read by PyYAML (the YAML 1.1 reader that takes `on`
//! for a bool), and the container spec is exercised for real with podman.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Container, Fixture, repo, require, testkit};

/// Runs validate-k8s.sh for one Kubernetes version.
#[track_caller]
pub(crate) fn validate_k8s(version: &str, files: &[&Path]) {
    let out = Command::new(testkit("validate-k8s.sh"))
        .args(files)
        .env("K8S_VERSION", version)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validate-k8s.sh (Kubernetes {version}) failed for {files:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The newest Kubernetes version kubernetes-validate bundles schemas for.
fn newest_k8s() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import kubernetes_validate.utils as u; print(u.latest_version())",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate is not installed: run scripts/install-test-deps.sh\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[track_caller]
pub(crate) fn validate_all_versions(file: &Path) {
    validate_k8s("1.30", &[file]);
    validate_k8s(&newest_k8s(), &[file]);
}

/// The documents of a YAML file as PyYAML (YAML 1.1) reads them.
pub(crate) fn pyyaml(path: &Path) -> Vec<Value> {
    let out = support::output_ok(Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], default=repr))",
        ])
        .arg(path));
    serde_json::from_slice(&out).unwrap()
}

/// The YAML with our image digest replaced, after checking it is the image's digest: the
/// digest changes with the toolchain, and reproducible.rs pins it.
pub(crate) fn redact(yaml: &str, digest: &str) -> String {
    assert!(yaml.contains(digest), "{yaml}");
    yaml.replace(digest, "sha256:[DIGEST]")
}

pub(crate) fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {docs:?}"))
}

pub(crate) const EVERY_OPTION: &str = r#"
[package.metadata.containerize.kubernetes]
namespace = "shop"
part-of = "webshop"
labels = { team = "payments", yes-label = "yes", on-label = "on", zero = "012" }
annotations = { "example.com/note" = ": x # not a comment", "example.com/owner" = "on" }
pod-annotations = { "example.com/restarted" = "2024-01-01" }
replicas = 3
revision-history-limit = 3
termination-grace-period-seconds = 45
max-surge = "25%"
max-unavailable = 0
env = { GREETING = "yes", COLON = ": x", EMPTY = "" }
env-from-config-maps = ["hello-config"]
env-from-secrets = ["hello-secrets"]
cpu-env = "TOKIO_WORKER_THREADS"
service = { type = "NodePort", port = 8080 }
probes.liveness = { path = "/healthz" }
probes.readiness = { path = "/readyz", period-seconds = 5 }
probes.startup = { path = "/healthz", failure-threshold = 30 }
resources = { requests = { cpu = "250m", memory = "64Mi" }, limits = { cpu = "1", memory = "256Mi" } }
metrics = { port = 9090, path = "/metrics" }
autoscaling = { min-replicas = 3, max-replicas = 12, cpu-utilization = 75 }
disruption-budget = { min-available = 2 }
ingress = { host = "hello.example.com", path = "/", class-name = "nginx", tls-secret = "hello-tls" }

[package.metadata.containerize.bin.hello-http.kubernetes]
component = "frontend"
"#;

#[test]
fn hello_http_defaults_validate_and_match_the_snapshot() {
    let fx = Fixture::new("hello-http");
    fx.run(&[]).ok();
    let digest = fx.image_json("hello-http")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let per_image = fx.out().join("hello-http/kubernetes.yaml");
    let all = fx.out().join("kubernetes.yaml");
    validate_all_versions(&per_image);
    validate_all_versions(&all);

    let yaml = std::fs::read_to_string(&per_image).unwrap();
    assert!(yaml.contains(&format!("image: hello-http:latest@{digest}\n")));
    assert!(yaml.starts_with("# Kubernetes objects for hello-http"));
    assert!(yaml.contains("# LOCAL IMAGE: hello-http was not pushed"));
    insta::assert_snapshot!("hello_http_defaults", redact(&yaml, &digest));
    // One image: the run's file holds the same objects.
    assert_eq!(std::fs::read_to_string(&all).unwrap(), yaml);

    // --no-kube writes nothing; --kube-dir writes there instead.
    let dir = fx.tmp.path().join("deploy");
    std::fs::remove_file(&all).unwrap();
    fx.run(&["--no-kube"]).ok();
    assert!(!all.exists());
    fx.run(&["--kube-dir", dir.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(dir.join("hello-http/kubernetes.yaml")).unwrap(),
        yaml
    );
    assert!(dir.join("kubernetes.yaml").is_file() && !all.exists());
}

#[test]
fn every_option_validates_matches_the_snapshot_and_round_trips_special_values() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| s + EVERY_OPTION);
    let dir = fx.tmp.path().join("deploy");
    fx.run(&["--kube-dir", dir.to_str().unwrap()]).ok();
    let digest = fx.image_json("hello-http")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = dir.join("hello-http/kubernetes.yaml");
    validate_all_versions(&file);
    let yaml = std::fs::read_to_string(&file).unwrap();
    insta::assert_snapshot!("hello_http_every_option", redact(&yaml, &digest));

    // PyYAML reads `on`, `yes`, `012` and dates as bools, numbers and dates unless quoted:
    // every value must come back as the exact string.
    let docs = pyyaml(&file);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Ingress",
            "NetworkPolicy"
        ]
    );
    let d = kind(&docs, "Deployment");
    let labels = &d["metadata"]["labels"];
    assert_eq!(labels["yes-label"], "yes");
    assert_eq!(labels["on-label"], "on");
    assert_eq!(labels["zero"], "012");
    assert_eq!(
        labels["app.kubernetes.io/component"], "frontend",
        "bin layer wins"
    );
    assert_eq!(
        d["metadata"]["annotations"]["example.com/note"],
        ": x # not a comment"
    );
    assert_eq!(d["metadata"]["annotations"]["example.com/owner"], "on");
    let pod = &d["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/restarted"],
        "2024-01-01"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9090");
    let c = &pod["spec"]["containers"][0];
    let env: Vec<(String, Value)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect();
    assert!(env.contains(&("GREETING".into(), "yes".into())), "{env:?}");
    assert!(env.contains(&("COLON".into(), ": x".into())), "{env:?}");
    assert!(env.contains(&("EMPTY".into(), "".into())), "{env:?}");
    // An autoscaler owns the replica count.
    assert!(d["spec"].get("replicas").is_none());
    assert_eq!(
        kind(&docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"],
        3
    );
}

#[test]
fn bad_metadata_values_are_errors_naming_the_key_and_the_file() {
    let fx = Fixture::new("hello-http");
    let original = std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap();
    let cases = [
        (
            "[package.metadata.containerize.kubernetes]\nreplicas = -1\n",
            "invalid `kubernetes.replicas` in [package.metadata.containerize] of Cargo.toml: -1 is negative",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nprobes.liveness = { path = \"/healthz\", perod-seconds = 5 }\n",
            "unknown key `perod-seconds` in [package.metadata.containerize.kubernetes.probes.liveness] of Cargo.toml",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nport = 70000\n",
            "invalid `kubernetes.port` in [package.metadata.containerize] of Cargo.toml: 70000 is out of range 1-65535",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nresources.limits.memory = \"512MB\"\n",
            "invalid `kubernetes.resources.limits.memory` in [package.metadata.containerize] of Cargo.toml: `512MB` is not a Kubernetes quantity",
        ),
        (
            "[package.metadata.containerize.bin.hello-http.kubernetes]\nname = \"Hello_HTTP\"\n",
            "invalid `kubernetes.name` in [package.metadata.containerize.bin.hello-http] of Cargo.toml: `Hello_HTTP` is not a valid Kubernetes name",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nnetwork-policy.from = [{ pods = { app = \"-gateway\" } }]\n",
            "invalid `kubernetes.network-policy.from[0].pods.app` in [package.metadata.containerize] of Cargo.toml: `-gateway` is not a valid label value",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nnetwork-policy = { from = [{}] }\n",
            "invalid `kubernetes.network-policy.from[0]` in [package.metadata.containerize] of Cargo.toml: a peer needs `pods`, `namespaces` (label selectors) or `cidr`",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nnetwork-policy = { egress = \"deny\", egress-allow = [{ cidr = \"10.0.0.0/33\" }] }\n",
            "invalid `kubernetes.network-policy.egress-allow[0].cidr` in [package.metadata.containerize] of Cargo.toml: `10.0.0.0/33` is not an IP range",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nnetwork-policy = { egress = \"none\" }\n",
            "unknown variant `none`, expected `allow` or `deny`",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nsecret-volumes = [{ name = \"tls\" }]\n",
            "invalid `kubernetes.secret-volumes[0].mount` in [package.metadata.containerize] of Cargo.toml: a volume needs `mount`",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nconfig-map-volumes = [{ name = \"cfg\", mount = \"etc/cfg\" }]\n",
            "invalid `kubernetes.config-map-volumes[0].mount` in [package.metadata.containerize] of Cargo.toml: `etc/cfg` must be an absolute directory",
        ),
        (
            "[package.metadata.containerize.kubernetes]\nprobes = \"off\"\n",
            "expected `true`, `false` or a table",
        ),
    ];
    for (toml, expected) in cases {
        std::fs::write(fx.root.join("Cargo.toml"), format!("{original}{toml}")).unwrap();
        let run = fx.run(&[]).fails_with(2);
        assert!(
            run.stderr.contains(expected),
            "expected `{expected}` in:\n{}",
            run.stderr
        );
        assert!(!fx.out().exists(), "nothing is written on a config error");
    }
    // The unknown probe key is named with its path.
    std::fs::write(
        fx.root.join("Cargo.toml"),
        format!("{original}{}", cases[1].0),
    )
    .unwrap();
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("[package.metadata.containerize.kubernetes.probes.liveness] of Cargo.toml"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_pod_spec_runs_under_podman_read_only_as_nonroot_with_tmp_and_probes() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| {
        s + "[package.metadata.containerize.kubernetes]\n\
             probes.liveness = { path = \"/healthz\" }\n\
             probes.readiness = { path = \"/readyz\" }\n"
    });
    fx.run(&[]).ok();
    let file = fx.out().join("hello-http/kubernetes.yaml");
    validate_all_versions(&file);
    let docs = pyyaml(&file);
    let pod = &kind(&docs, "Deployment")["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let port = c["ports"][0]["containerPort"].as_u64().unwrap().to_string();
    let user = format!(
        "--user={}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp");
    let liveness = c["livenessProbe"]["httpGet"]["path"].as_str().unwrap();
    let readiness = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    assert_eq!((liveness, readiness), ("/healthz", "/readyz"));

    // As the pod runs it: read-only root, the uid/gid of the YAML, a writable /tmp (the
    // emptyDir), no capabilities, no privilege escalation, the declared port.
    let image = format!("oci:{}:hello-http:latest", fx.layout().display());
    let pod_like = |tmp: bool| {
        // podman mounts its own tmpfs on /tmp with --read-only; a pod has only its volumes.
        let mut flags = vec!["--read-only", "--read-only-tmpfs=false", user.as_str()];
        flags.push("--cap-drop=ALL");
        flags.push("--security-opt=no-new-privileges");
        if tmp {
            flags.push("--tmpfs=/tmp:rw,mode=1777");
        }
        let mut args = vec!["--port", port.as_str()];
        for f in flags {
            args.extend(["--podman-arg", f]);
        }
        args
    };
    let ct = Container::start(&image, "amd64", liveness, &pod_like(true));
    assert_eq!(ct.get(liveness), (200, "ok".into()));
    assert_eq!(ct.get(readiness), (200, "ready".into()));
    assert_eq!(ct.get("/tmpcheck"), (200, "tmp ok".into()));
    let (code, whoami) = ct.get("/whoami");
    assert_eq!(code, 200);
    assert!(whoami.starts_with("Uid:\t65532\t"), "{whoami}");
    drop(ct);

    // Without the /tmp volume the read-only root really refuses writes.
    let ct = Container::start(&image, "amd64", liveness, &pod_like(false));
    let (code, body) = ct.get("/tmpcheck");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("Read-only file system"), "{body}");
}

#[test]
fn resolve_replaces_containerize_refs_and_keeps_the_rest_of_the_file() {
    require("python3");
    let fx = Fixture::new("hello-http");
    let input = "\
# My own manifest; containerize://hello-http in a comment stays as it is.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: containerize://hello-http   # pinned by cargo containerize resolve
";
    std::fs::write(fx.root.join("app.yaml"), input).unwrap();
    let run = fx.run(&["resolve", "-f", "app.yaml"]).ok();
    let reference = fx.image_json("hello-http")["reference"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        run.stdout,
        input.replace(
            "image: containerize://hello-http ",
            &format!("image: {reference} ")
        )
    );
    let out = fx.tmp.path().join("resolved.yaml");
    std::fs::write(&out, &run.stdout).unwrap();
    validate_k8s("1.30", &[&out]);

    std::fs::write(fx.root.join("bad.yaml"), "image: containerize://nope\n").unwrap();
    let run = fx.run(&["resolve", "-f", "bad.yaml"]).fails_with(2);
    assert!(
        run.stderr
            .contains("`containerize://nope` in bad.yaml:1 names no image of this build"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("binaries: hello-http"),
        "{}",
        run.stderr
    );
}

#[test]
fn project_templates_replace_the_builtin_ones_and_bad_ones_are_rejected() {
    let fx = Fixture::new("hello-http");
    let builtin =
        std::fs::read_to_string(repo().join("templates/kubernetes/deployment.yaml")).unwrap();
    let custom = builtin.replace(
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      nodeSelector:\n        kubernetes.io/arch: amd64\n",
    );
    assert_ne!(custom, builtin);
    // Further documents of any kind pass through, with image references resolved.
    let with_extra = format!(
        "{custom}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello-http-images\ndata:\n  image: containerize://hello-http\n"
    );
    std::fs::create_dir(fx.root.join("k8s")).unwrap();
    std::fs::write(fx.root.join("k8s/deployment.yaml"), &with_extra).unwrap();
    fx.edit("Cargo.toml", |s| {
        s + "[package.metadata.containerize.kubernetes]\ntemplates = \"k8s\"\n"
    });
    fx.run(&[]).ok();
    let file = fx.out().join("hello-http/kubernetes.yaml");
    validate_all_versions(&file);
    let docs = pyyaml(&file);
    let pod = &kind(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/arch"], "amd64");
    assert_eq!(kind(&docs, "Service")["spec"]["ports"][0]["port"], 80);
    let reference = fx.image_json("hello-http")["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let extra = kind(&docs, "ConfigMap");
    assert_eq!(extra["metadata"]["name"], "hello-http-images");
    assert_eq!(extra["data"]["image"], reference.as_str());
    let all = pyyaml(&fx.out().join("kubernetes.yaml"));
    assert_eq!(kind(&all, "ConfigMap"), extra);

    let broken = custom.replace("  revisionHistoryLimit:", "  revisionHistoryLimt:");
    std::fs::write(fx.root.join("k8s/deployment.yaml"), broken).unwrap();
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("k8s/deployment.yaml` does not give a valid object: `spec.revisionHistoryLimt` is not a field"),
        "{}",
        run.stderr
    );
}

#[test]
fn pushed_images_are_pinned_by_their_registry_digest_and_portless_binaries_get_no_service() {
    let reg = support::Registry::start("none", &[]);
    let fx = Fixture::new("two-bins");
    let repo = format!("{}/team", reg.host());
    let run = fx.run(&["--push", "--repo", &repo]).ok();
    let refs = run.refs();
    assert_eq!(refs.len(), 3, "{}", run.stdout);
    let all = fx.out().join("kubernetes.yaml");
    validate_all_versions(&all);
    let text = std::fs::read_to_string(&all).unwrap();
    assert!(text.starts_with("# Kubernetes objects for api, worker, worker-admin"));
    assert!(!text.contains("LOCAL IMAGE"), "{text}");

    // No port declared: Deployments only (workers, CLI tools), one per image, each pinned
    // to exactly the reference printed on stdout (registry/team/<bin>@sha256:…).
    let docs = pyyaml(&all);
    assert!(docs.iter().all(|d| d["kind"] != "Service"), "{docs:?}");
    let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 3);
    for (doc, reference) in deployments.into_iter().zip(&refs) {
        assert!(reference.starts_with(&format!("{repo}/")), "{reference}");
        let c = &doc["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], reference.as_str());
        assert!(c.get("ports").is_none());
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/component"],
            "worker"
        );
    }
    for image in ["api", "worker", "worker-admin"] {
        let per_image = fx.out().join(image).join("kubernetes.yaml");
        validate_k8s("1.30", &[&per_image]);
    }
}
