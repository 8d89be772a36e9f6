//! `kind = "job" | "cronjob"` (issue 15): a binary that runs to completion gets a Job or a
//! CronJob (no Service, PDB, HPA or readiness probe), valid for kubernetes-validate
//! --strict, clean for checkov but for the documented CPU limit, rendered by kustomize with
//! its digest, and run once (restart "no") by compose.yaml.

use crate::checkov::assert_checks_except;
use crate::kube::{kind, pyyaml, validate_all_versions};
use crate::support::{Fixture, output_within, require};

const BATCH: &str = r#"
[package.metadata.containerize.kubernetes]
namespace = "batch"

[package.metadata.containerize.bin.worker.kubernetes]
kind = "cronjob"
schedule = "*/15 * * * *"

[package.metadata.containerize.bin.worker-admin.kubernetes]
kind = "job"
backoff-limit = 1
ttl-seconds-after-finished = 600
"#;

#[test]
fn jobs_and_cronjobs_validate_pass_checkov_and_compose_runs_them_once() {
    let fx = Fixture::new("two-bins");
    fx.edit("crates/worker/Cargo.toml", |s| s + BATCH);
    fx.run(&[]).ok();
    let out = fx.out();
    validate_all_versions(&out.join("kubernetes.yaml"));

    let cron = pyyaml(&out.join("worker/kubernetes.yaml"));
    let kinds: Vec<&str> = cron.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "CronJob", "NetworkPolicy"]
    );
    let spec = &kind(&cron, "CronJob")["spec"];
    assert_eq!(spec["schedule"], "*/15 * * * *");
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    let job = &spec["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 3);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "worker");
    assert!(pod["containers"][0].get("readinessProbe").is_none());
    assert!(pod.get("topologySpreadConstraints").is_none());

    let once = pyyaml(&out.join("worker-admin/kubernetes.yaml"));
    let spec = &kind(&once, "Job")["spec"];
    assert_eq!(spec["backoffLimit"], 1);
    assert_eq!(spec["ttlSecondsAfterFinished"], 600);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");

    for image in ["worker", "worker-admin"] {
        assert_checks_except(
            &out.join(image).join("kubernetes.yaml"),
            &["CKV_K8S_11"],
            &["CKV_K8S_9", "CKV2_K8S_6"],
        );
    }

    // kustomize finds the CronJob's container and pins it.
    require("kubectl");
    let rendered = String::from_utf8(output_within(
        std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&out),
        60,
    ))
    .unwrap();
    let reference = fx.image_json("worker")["reference"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rendered.contains(&format!("image: {reference}\n")),
        "{rendered}"
    );

    // compose runs a job once; the server keeps restarting.
    let compose = pyyaml(&out.join("compose.yaml"));
    let services = &compose[0]["services"];
    assert_eq!(services["api"]["restart"], "unless-stopped");
    assert_eq!(services["worker"]["restart"], "no");
    assert_eq!(services["worker-admin"]["restart"], "no");
}

#[test]
fn bad_kinds_and_schedules_are_errors_naming_the_key_and_nothing_is_written() {
    let fx = Fixture::new("two-bins");
    let manifest = "crates/worker/Cargo.toml";
    let original = std::fs::read_to_string(fx.root.join(manifest)).unwrap();
    let table = "[package.metadata.containerize.bin.worker.kubernetes]\n";
    let cases = [
        (
            "kind = \"daemonset\"\n",
            "unknown variant `daemonset`, expected one of `deployment`, `job`, `cronjob`",
        ),
        (
            "kind = \"cronjob\"\nschedule = \"61 * * * *\"\n",
            "invalid `kubernetes.schedule` in [package.metadata.containerize.bin.worker] of crates/worker/Cargo.toml: `61 * * * *` is not a cron schedule: minute `61` is out of range 0-59",
        ),
        (
            "kind = \"cronjob\"\nschedule = \"0 3 * *\"\n",
            "`0 3 * *` is not a cron schedule: it has 4 field(s)",
        ),
        (
            "kind = \"cronjob\"\n",
            "invalid `kubernetes.schedule` in [package.metadata.containerize.bin.worker] of crates/worker/Cargo.toml: a CronJob needs a schedule",
        ),
        (
            "schedule = \"@daily\"\n",
            "schedule applies to kind = \"cronjob\" only",
        ),
        (
            "kind = \"job\"\nautoscaling = { max-replicas = 3 }\n",
            "invalid `kubernetes.autoscaling` in [package.metadata.containerize.bin.worker] of crates/worker/Cargo.toml: a Job or CronJob runs to completion",
        ),
    ];
    for (toml, expected) in cases {
        std::fs::write(fx.root.join(manifest), format!("{original}\n{table}{toml}")).unwrap();
        let run = fx.run(&[]).fails_with(2);
        assert!(
            run.stderr.contains(expected),
            "expected `{expected}` in:\n{}",
            run.stderr
        );
        assert!(!fx.out().exists(), "nothing is written on a config error");
    }
}
