//! `resolve` like ko's (issue 15): builds only the binaries the files name, reads files,
//! directories (with -R, nested ones) and stdin, and prints the resolved YAML on stdout
//! with comments kept.

use std::io::Write;
use std::process::Stdio;

use crate::kube::validate_k8s;
use crate::support::{Fixture, containerize_cmd};

fn pod(name: &str, binary: &str) -> String {
    format!(
        "# {name}: pinned by cargo containerize resolve\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    \
         - name: {name}\n      image: containerize://{binary}   # keep this comment\n"
    )
}

/// The images a run built, from its status lines (stdout carries the YAML).
fn built(stderr: &str) -> Vec<String> {
    let mut v: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Building "))
        .flat_map(|l| {
            let names = l.split(" for ").next().unwrap();
            names.split(", ").map(String::from).collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn resolve_builds_only_what_the_files_name_and_reads_directories_and_stdin() {
    let fx = Fixture::new("two-bins");
    let k8s = fx.root.join("k8s");
    std::fs::create_dir_all(k8s.join("nested")).unwrap();
    std::fs::write(k8s.join("worker.yaml"), pod("worker", "worker")).unwrap();
    std::fs::write(k8s.join("nested/api.yml"), pod("api", "api")).unwrap();
    std::fs::write(k8s.join("notes.md"), "not: [yaml\n").unwrap();

    // One file naming one of three binaries: only that one is built.
    let run = fx.run(&["resolve", "-f", "k8s/worker.yaml"]).ok();
    assert_eq!(built(&run.stderr), ["worker"], "{}", run.stderr);
    assert!(!fx.out().join("api").exists() && !fx.out().join("worker-admin").exists());
    let worker = fx.image_json("worker")["reference"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        run.stdout,
        pod("worker", "worker").replace("containerize://worker", &worker)
    );

    // A directory: its YAML files only (notes.md is skipped), nested ones with -R.
    let run = fx.run(&["resolve", "-f", "k8s"]).ok();
    assert_eq!(built(&run.stderr), ["worker"], "{}", run.stderr);
    let run = fx.run(&["resolve", "-R", "-f", "k8s"]).ok();
    assert_eq!(built(&run.stderr), ["api", "worker"], "{}", run.stderr);
    let api = fx.image_json("api")["reference"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        run.stdout
            .contains(&format!("image: {api}   # keep this comment\n"))
    );
    assert!(
        run.stdout
            .contains(&format!("image: {worker}   # keep this comment\n"))
    );
    assert_eq!(run.stdout.matches("\n---\n").count(), 1, "{}", run.stdout);
    let out = fx.tmp.path().join("resolved.yaml");
    std::fs::write(&out, &run.stdout).unwrap();
    validate_k8s("1.30", &[&out]);

    // stdin, as in `... | cargo containerize resolve -f - | kubectl apply -f -`.
    let mut child = containerize_cmd(&fx.root)
        .args(["resolve", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pod("admin", "worker-admin").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(built(&stderr), ["worker-admin"], "{stderr}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("image: worker-admin:latest@sha256:"));

    // A file naming no binary is printed as it is, with nothing built.
    std::fs::write(k8s.join("plain.yaml"), "a: 1 # as is\n").unwrap();
    let run = fx.run(&["resolve", "-f", "k8s/plain.yaml"]).ok();
    assert_eq!(run.stdout, "a: 1 # as is\n");
    assert!(built(&run.stderr).is_empty(), "{}", run.stderr);
}
