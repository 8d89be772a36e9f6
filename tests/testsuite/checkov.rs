//! checkov (issue 15): the Kubernetes YAML as a policy scanner sees it, asserted by check id.
//! The defaults fail only CKV_K8S_11 (no CPU limit: a documented choice), CKV_K8S_8 (no
//! liveness probe: opt-in, so a slow app is never restarted in a storm) and, without a
//! namespace, CKV_K8S_21; a namespace removes CKV_K8S_21 and a declared liveness probe
//! CKV_K8S_8. Every object kind also passes kubernetes-validate --strict.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::kube::{EVERY_OPTION, validate_all_versions};
use crate::support::{Fixture, output_within, require};

/// (passed, failed) check ids of `checkov -f FILE --framework kubernetes`.
fn checkov(file: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    require("checkov");
    let mut cmd = Command::new("checkov");
    cmd.arg("-f")
        .arg(file)
        .args(["--framework", "kubernetes", "-o", "json", "--soft-fail"])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    let out = output_within(&mut cmd, 180);
    let report: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    let report = if report.is_array() {
        report[0].clone()
    } else {
        report
    };
    let ids = |key: &str| -> BTreeSet<String> {
        report["results"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no results.{key} in {report}"))
            .iter()
            .map(|c| c["check_id"].as_str().unwrap().to_string())
            .collect()
    };
    (ids("passed_checks"), ids("failed_checks"))
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The hardening checks the defaults must pass: non-root, no privilege escalation,
/// read-only root, no capabilities, seccomp, no service account token, digests, probes,
/// requests and memory limits, a NetworkPolicy for the pods.
const HARDENING: [&str; 18] = [
    "CKV_K8S_9",
    "CKV_K8S_10",
    "CKV_K8S_12",
    "CKV_K8S_13",
    "CKV_K8S_20",
    "CKV_K8S_22",
    "CKV_K8S_23",
    "CKV_K8S_28",
    "CKV_K8S_29",
    "CKV_K8S_30",
    "CKV_K8S_31",
    "CKV_K8S_37",
    "CKV_K8S_38",
    "CKV_K8S_40",
    "CKV_K8S_43",
    "CKV_K8S_15",
    "CKV_K8S_14",
    "CKV2_K8S_6",
];

#[track_caller]
pub(crate) fn assert_checks(file: &Path, failed: &[&str]) -> BTreeSet<String> {
    assert_checks_except(file, failed, &[])
}

/// [`assert_checks`], with hardening checks that checkov may not evaluate for these objects
/// (its readiness check skips Jobs and CronJobs, its NetworkPolicy check CronJobs).
#[track_caller]
pub(crate) fn assert_checks_except(
    file: &Path,
    failed: &[&str],
    not_applicable: &[&str],
) -> BTreeSet<String> {
    let (passed, got) = checkov(file);
    assert_eq!(got, set(failed), "failed checks of {}", file.display());
    let missing: Vec<&str> = HARDENING
        .iter()
        .copied()
        .filter(|id| !passed.contains(*id) && !not_applicable.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "not passed: {missing:?} (passed: {passed:?})"
    );
    passed
}

#[test]
fn defaults_fail_only_the_documented_checks_and_a_namespace_and_liveness_probe_clear_them() {
    let fx = Fixture::new("hello-http");
    fx.run(&[]).ok();
    let file = fx.out().join("hello-http/kubernetes.yaml");
    assert_checks(&file, &["CKV_K8S_8", "CKV_K8S_11", "CKV_K8S_21"]);

    fx.edit("Cargo.toml", |s| {
        s + "[package.metadata.containerize.kubernetes]\nnamespace = \"shop\"\n"
    });
    fx.run(&[]).ok();
    assert_checks(&file, &["CKV_K8S_8", "CKV_K8S_11"]);

    fx.edit("Cargo.toml", |s| {
        s + "probes.liveness = { path = \"/healthz\" }\n\
             network-policy = { egress = \"deny\", egress-allow = [{ cidr = \"10.0.0.0/8\", ports = [5432] }] }\n"
    });
    fx.run(&[]).ok();
    validate_all_versions(&file);
    assert_checks(&file, &["CKV_K8S_11"]);
}

#[test]
fn every_option_fails_only_secrets_as_environment() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| s + EVERY_OPTION);
    fx.run(&[]).ok();
    // env-from-secrets is what the fixture asks for; secret-volumes is the alternative.
    assert_checks(
        &fx.out().join("hello-http/kubernetes.yaml"),
        &["CKV_K8S_35"],
    );
}

#[test]
fn secrets_and_config_maps_as_read_only_files_validate_and_stay_clean() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| {
        s + "[package.metadata.containerize.kubernetes]\n\
             namespace = \"shop\"\n\
             probes.liveness = { path = \"/healthz\" }\n\
             secret-volumes = [{ name = \"hello-tls\", mount = \"/etc/tls\" }]\n\
             config-map-volumes = [{ name = \"hello.config\", mount = \"/etc/hello\" }]\n"
    });
    fx.run(&[]).ok();
    let file = fx.out().join("hello-http/kubernetes.yaml");
    validate_all_versions(&file);
    assert_checks(&file, &["CKV_K8S_11"]);

    let text = std::fs::read_to_string(&file).unwrap();
    let docs = crate::kube::pyyaml(&file);
    let pod = &crate::kube::kind(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(volumes[1]["secret"]["secretName"], "hello-tls");
    assert_eq!(volumes[1]["secret"]["defaultMode"], 0o440);
    assert_eq!(volumes[2]["configMap"]["name"], "hello.config");
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let paths: Vec<(&str, bool)> = mounts
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [("/tmp", false), ("/etc/tls", true), ("/etc/hello", true)]
    );
    // Values never reach the YAML: only names.
    assert!(!text.contains("kind: Secret\n"), "{text}");
}
