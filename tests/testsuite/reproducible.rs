//! Same commit → same digests, from any directory: two clones in different places, each
//! with its own target directory, give byte-identical images, and the binaries carry no
//! trace of where they were built.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

use crate::support::{self, Fixture, clone, commit_all, containerize_cmd};

/// A cargo home of its own with the registry index and downloaded crates of the usual
/// one (the tests never reach the network), but nothing extracted or built yet.
fn other_cargo_home(at: &Path) -> std::path::PathBuf {
    let usual = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo")
        });
    let home = at.join("other cargo home");
    std::fs::create_dir_all(home.join("registry")).unwrap();
    for part in ["index", "cache"] {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(usual.join("registry").join(part))
            .arg(home.join("registry"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "copy {part} of the cargo registry");
    }
    home
}

#[test]
fn two_checkouts_in_different_directories_give_identical_digests() {
    let origin = Fixture::new("hello-http");
    commit_all(&origin.root);

    let mut results = Vec::new();
    for name in ["first-checkout", "somewhere/else/entirely"] {
        let dir = clone(&origin, name);
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

/// Issue 20, items 1 and 16: binaries that stamp the build time (C `__DATE__`/`__TIME__`
/// through the `cc` crate, a build script reading `SOURCE_DATE_EPOCH` or the clock) with a
/// crates.io dependency give the same digests from another directory, another
/// `CARGO_HOME`, another umask and `-j1` instead of `-j2`; with a user `RUSTFLAGS` value,
/// two directories agree too. The stamps are the commit time.
#[test]
fn r20_build_time_stamps_are_reproducible_across_homes_umasks_jobs_and_rustflags() {
    let origin = Fixture::new("stamped");
    commit_all(&origin.root);
    let home = other_cargo_home(origin.tmp.path());

    let build = |dir: &Path, umask: &str, jobs: &str, env: &[(&str, &str)]| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_cargo-containerize"));
        let inner = containerize_cmd(dir);
        for a in inner.get_args() {
            cmd.arg(a);
        }
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(dir).args(["-q", "--no-kube", "-j", jobs]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let a_dir = clone(&origin, "a");
    let a = build(&a_dir, "022", "2", &[]);
    let b_dir = clone(&origin, "b/somewhere else");
    let b = build(
        &b_dir,
        "077",
        "1",
        &[("CARGO_HOME", home.to_str().unwrap())],
    );
    assert_eq!(a.lines().count(), 2, "{a}");
    assert_eq!(a, b, "another directory, CARGO_HOME, umask and -j");

    // The stamps are the commit time (2024-05-01T12:00:00Z), not the clock.
    let release = a_dir.join("target/x86_64-unknown-linux-musl/release");
    let contains = |bin: &str, needle: &str| {
        let bytes = std::fs::read(release.join(bin)).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(
        contains("cstamp", "May  1 2024 12:00:00"),
        "cstamp's C stamp"
    );
    assert!(
        contains("timestamp", "built at 1714564800"),
        "timestamp's stamp"
    );

    let flags = [("RUSTFLAGS", "-C force-frame-pointers=yes")];
    let c = build(&clone(&origin, "c"), "022", "2", &flags);
    let d = build(&clone(&origin, "d/deeper/still"), "002", "2", &flags);
    assert_eq!(c, d, "a user RUSTFLAGS value in two directories");
    assert_ne!(a, c, "RUSTFLAGS reached the build");
    eprintln!("reproducible digests:\n{a}with RUSTFLAGS:\n{c}");
}
