//! Same commit → same digests, from any directory: two clones in different places, each
//! with its own target directory, give byte-identical images, and the binaries carry no
//! trace of where they were built.

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command;

use crate::support::{self, Fixture, containerize_cmd};

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn two_checkouts_in_different_directories_give_identical_digests() {
    let origin = Fixture::new("hello-http");
    git(&origin.root, &["init", "-q", "-b", "main"]);
    git(&origin.root, &["add", "-A"]);
    git(&origin.root, &["commit", "-q", "-m", "fixture"]);

    let mut results = Vec::new();
    for name in ["first-checkout", "somewhere/else/entirely"] {
        let dir = origin.tmp.path().join(name);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        git(
            origin.tmp.path(),
            &[
                "clone",
                "-q",
                origin.root.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        let out = containerize_cmd(&dir)
            .args(["--platform", "all", "-q"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("target/containerize/hello-http/image.json")).unwrap(),
        )
        .unwrap();

        // No absolute build path survives in the binaries.
        for triple in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
            let bin =
                std::fs::read(dir.join("target").join(triple).join("release/hello-http")).unwrap();
            let needle = dir.to_str().unwrap().as_bytes();
            assert!(
                !bin.windows(needle.len()).any(|w| w == needle),
                "{triple} binary contains {}",
                dir.display()
            );
        }
        results.push((stdout, summary));
    }
    assert_eq!(results[0].0, results[1].0, "different references");
    assert_eq!(
        results[0].1["platforms"], results[1].1["platforms"],
        "different platform digests"
    );
    eprintln!("reproducible digest: {}", results[0].0.trim());

    // `created` comes from the commit time.
    let layout = origin
        .tmp
        .path()
        .join("first-checkout/target/containerize/oci");
    let digest = results[0].1["platforms"][0]["digest"].as_str().unwrap();
    let manifest = support::json_blob(&layout, digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"]
            .as_str()
            .unwrap()
            .len(),
        40
    );
}

#[test]
fn source_date_epoch_sets_created_and_changes_nothing_else_when_repeated() {
    let fx = Fixture::new("hello-http");
    let a = fx
        .run_with(&["-q"], &[("SOURCE_DATE_EPOCH", "1700000000")])
        .ok();
    std::fs::remove_dir_all(fx.out()).unwrap();
    let b = fx
        .run_with(&["-q"], &[("SOURCE_DATE_EPOCH", "1700000000")])
        .ok();
    assert_eq!(a.stdout, b.stdout);
    let summary = fx.image_json("hello-http");
    let manifest = support::json_blob(&fx.layout(), summary["digest"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let c = fx
        .run_with(&["-q"], &[("SOURCE_DATE_EPOCH", "1700000001")])
        .ok();
    assert_ne!(a.stdout, c.stdout);
}
