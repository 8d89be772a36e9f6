//! `cargo containerize plan` and `--dry-run`: they print the plan (text, or the `plan` and
//! `finished` events), build and write nothing, and show exactly what a real run then
//! does.

use crate::support::{self, Fixture};

#[track_caller]
fn assert_nothing_written(fx: &Fixture) {
    assert!(
        !fx.root.join("target").exists(),
        "plan/--dry-run must not write target/ (not even target/containerize)"
    );
}

#[test]
fn plan_prints_images_platforms_tags_refs_and_outputs_and_writes_nothing() {
    let fx = Fixture::new("hello-http");
    let run = fx
        .run(&[
            "plan",
            "--platform",
            "all",
            "--push",
            "--repo",
            "127.0.0.1:5000/ci",
        ])
        .ok();
    assert_eq!(
        run.stdout,
        "\
image hello-http (package hello-http v0.1.0, bin hello-http)
  platforms  linux/amd64, linux/arm64
  tags       latest, 0.1.0
  push       127.0.0.1:5000/ci/hello-http:latest, 127.0.0.1:5000/ci/hello-http:0.1.0
  output     target/containerize/hello-http/ (image.json, sbom.linux-amd64.cdx.json, sbom.linux-arm64.cdx.json, provenance.linux-amd64.intoto.json, provenance.linux-arm64.intoto.json, kubernetes.yaml, kustomization.yaml)

build linux/amd64 (x86_64-unknown-linux-musl, --profile release): -p hello-http --bin hello-http
build linux/arm64 (aarch64-unknown-linux-musl, --profile release): -p hello-http --bin hello-http
outputs
  layout     target/containerize/oci/
  provenance builder https://github.com/cargo-containerize/cargo-containerize/blob/main/docs/provenance.md#local-builder
  kubernetes target/containerize/kubernetes.yaml, target/containerize/kustomization.yaml
  compose    target/containerize/compose.yaml
"
    );
    assert!(
        run.stderr
            .contains("Planned 1 image; nothing was built or written"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Compiling"), "{}", run.stderr);
    assert_nothing_written(&fx);

    // --dry-run on the default command and on `resolve` print the same.
    let dry = fx
        .run(&[
            "--dry-run",
            "--platform",
            "all",
            "--push",
            "--repo",
            "127.0.0.1:5000/ci",
        ])
        .ok();
    assert_eq!(dry.stdout, run.stdout);
    let resolve = fx
        .run(&[
            "resolve",
            "-f",
            "app.yaml",
            "--dry-run",
            "--platform",
            "all",
            "--push",
            "--repo",
            "127.0.0.1:5000/ci",
        ])
        .ok();
    assert_eq!(resolve.stdout, run.stdout);
    assert_nothing_written(&fx);
}

#[test]
fn dry_run_events_validate_and_match_the_real_run() {
    let fx = Fixture::new("hello-http");
    let args = ["--message-format", "json", "--sbom", "none"];
    let dry = fx.run(&[&args[..], &["--dry-run"]].concat()).ok();
    let events = support::validate_events(&dry.stdout);
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["plan", "finished"]);
    assert_eq!(events[1]["success"], true);
    assert_eq!(events[1]["images"], 1);
    assert_eq!(events[0]["push"], false);
    let out_dir = fx.root.join("target/containerize/hello-http");
    assert_eq!(events[0]["images"][0]["out_dir"], out_dir.to_str().unwrap());
    assert_nothing_written(&fx);

    // The plan a real run starts from is the one the dry run printed.
    let real = fx.run(&args).ok();
    let real_events = support::validate_events(&real.stdout);
    assert_eq!(real_events[0], events[0]);
    assert!(out_dir.join("image.json").is_file());
}

#[test]
fn plan_errors_have_their_exit_codes_and_end_the_stream() {
    let fx = Fixture::new("hello-http");
    let run = fx
        .run(&["plan", "--message-format", "json", "--bin", "nope"])
        .fails_with(2);
    let events = support::validate_events(&run.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "finished");
    assert_eq!(events[0]["exit_code"], 2);
    assert!(
        run.stderr.contains("no binary target named `nope`"),
        "{}",
        run.stderr
    );

    let run = fx.run(&["plan", "--push"]).fails_with(2);
    assert!(
        run.stderr.contains("--push needs a repository"),
        "{}",
        run.stderr
    );
    // --tag-from-git outside a tagged commit is a planning error too, found without a build.
    let run = fx.run(&["--dry-run", "--tag-from-git"]).fails_with(2);
    assert!(run.stderr.contains("HEAD has no tag"), "{}", run.stderr);
    assert_nothing_written(&fx);
}
