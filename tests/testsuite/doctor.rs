//! `cargo containerize doctor` on fixtures: openssl-sys without `vendored` (named with
//! the crate that pulls it in), C-compiling crates per platform, the musl allocator,
//! missing targets of the active toolchain, and git states (another user's checkout, a
//! shallow clone); with `--message-format json`, one `doctor-finding` event each.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use serde_json::Value;

use crate::support::{self, Fixture};

fn findings(fx: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let mut all = vec!["doctor", "--message-format", "json"];
    all.extend(args);
    let run = fx.run_with(&all, env).ok();
    run.stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["reason"] == "doctor-finding")
        .collect()
}

fn kinds(findings: &[Value]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn openssl_without_vendored_is_named_with_its_chain_and_fix() {
    let fx = Fixture::new("doctor-openssl");
    let found = findings(&fx, &[], &[]);
    let ssl = found
        .iter()
        .find(|f| f["kind"] == "openssl-not-vendored")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(
        ssl["chain"],
        serde_json::json!(["doctor-openssl", "openssl-sys"])
    );
    assert!(
        ssl["fix"]
            .as_str()
            .unwrap()
            .contains("features = [\"vendored\"]"),
        "{ssl}"
    );
    assert_eq!(ssl["severity"], "warning");
    assert!(kinds(&found).contains(&"musl-allocator"), "{found:?}");

    let run = fx.run(&["doctor"]).ok();
    assert!(
        run.stderr.contains("warning: openssl-sys is built without `vendored`, and musl targets have no system OpenSSL: doctor-openssl → openssl-sys\n  help: enable its `vendored` feature"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: no global allocator crate in the graph"),
        "{}",
        run.stderr
    );
}

#[test]
fn c_crates_are_matched_with_each_platforms_compiler_and_an_allocator_is_seen() {
    let fx = Fixture::new("doctor-ring");
    // A PATH with cargo and rustup but no musl-gcc or cargo-zigbuild.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["cargo", "rustc", "rustup"] {
        let found = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(!found.trim().is_empty(), "`{tool}` is not installed");
        std::os::unix::fs::symlink(found.trim(), bin.path().join(tool)).unwrap();
    }
    let path = bin.path().to_str().unwrap();
    let found = findings(&fx, &["--platform", "all"], &[("PATH", path)]);
    let missing: Vec<&Value> = found
        .iter()
        .filter(|f| f["kind"] == "no-musl-compiler")
        .collect();
    assert_eq!(missing.len(), 2, "{found:?}");
    assert_eq!(
        missing[0]["packages"],
        serde_json::json!(["aws-lc-sys", "libmimalloc-sys", "ring"])
    );
    assert_eq!(missing[1]["compiler"], "aarch64-linux-musl-gcc");
    assert!(
        missing[1]["fix"]
            .as_str()
            .unwrap()
            .starts_with("pipx install cargo-zigbuild")
    );
    assert!(
        !kinds(&found).contains(&"musl-allocator"),
        "mimalloc is in the graph: {found:?}"
    );
    assert!(
        !kinds(&found).contains(&"openssl-not-vendored"),
        "{found:?}"
    );

    // With the real PATH (musl-tools and cargo-zigbuild are test prerequisites).
    support::require("musl-gcc");
    support::require("cargo-zigbuild");
    let found = findings(&fx, &["--platform", "all"], &[]);
    let tools: Vec<&str> = found
        .iter()
        .filter(|f| f["kind"] == "c-compiler")
        .map(|f| f["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["musl-gcc", "cargo-zigbuild"], "{found:?}");
}

#[test]
fn missing_targets_name_the_active_toolchain() {
    let fx = Fixture::new("doctor-ring");
    // The toolchain `cargo +NAME` would select (it sets RUSTUP_TOOLCHAIN): a real one,
    // so cargo runs; a rustup first on PATH that lists no musl target and records what
    // it was asked.
    let active = String::from_utf8(
        Command::new("rustup")
            .args(["show", "active-toolchain"])
            .output()
            .expect("rustup is not installed")
            .stdout,
    )
    .unwrap();
    let toolchain = active.split_whitespace().next().unwrap().to_string();
    let stub = tempfile::tempdir().unwrap();
    let log = stub.path().join("args");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {}\necho x86_64-unknown-linux-gnu\n",
        log.display()
    );
    let rustup = stub.path().join("rustup");
    std::fs::write(&rustup, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        stub.path().display(),
        std::env::var("PATH").unwrap()
    );
    let found = findings(
        &fx,
        &["--platform", "all"],
        &[("RUSTUP_TOOLCHAIN", &toolchain), ("PATH", &path)],
    );
    let fixes: Vec<&str> = found
        .iter()
        .filter(|f| f["kind"] == "missing-target")
        .map(|f| f["fix"].as_str().unwrap())
        .collect();
    assert_eq!(
        fixes,
        [
            format!("run: rustup target add x86_64-unknown-linux-musl --toolchain {toolchain}"),
            format!("run: rustup target add aarch64-unknown-linux-musl --toolchain {toolchain}"),
        ],
        "{found:?}"
    );
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(
        asked.contains(&format!("target list --installed --toolchain {toolchain}")),
        "{asked}"
    );
}

#[test]
fn git_refusal_and_shallow_clones_are_findings() {
    let fx = Fixture::new("doctor-ring");
    support::git_tag(&fx.root, "v0.1.0");
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test chowns a checkout: run as root"
    );
    support::output_ok(
        Command::new("chown")
            .args(["-R", "12345:12345"])
            .arg(&fx.root),
    );
    let found = findings(&fx, &[], &[]);
    let git = found
        .iter()
        .find(|f| f["kind"] == "git-refused")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert!(
        git["message"]
            .as_str()
            .unwrap()
            .contains("dubious ownership"),
        "{git}"
    );
    assert_eq!(
        git["fix"],
        format!(
            "if you trust this checkout, run: git config --global --add safe.directory {}",
            fx.root.display()
        )
    );

    let fx = Fixture::new("doctor-ring");
    support::git_tag(&fx.root, "v0.1.0");
    let clone = fx.tmp.path().join("shallow");
    support::output_ok(
        Command::new("git")
            .args(["clone", "-q", "--depth", "1", "--no-tags"])
            .arg(format!("file://{}", fx.root.display()))
            .arg(&clone),
    );
    let run = support::Run::of(
        support::containerize_cmd(&clone)
            .args(["doctor", "--message-format", "json"])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        run.stdout.contains("\"kind\":\"shallow-clone\""),
        "{}",
        run.stdout
    );
}

/// Issue 17: a failed build runs doctor to explain it, and the build's own help names
/// the openssl fix (not a C compiler, which is there).
#[test]
fn r17_a_failed_openssl_build_is_explained() {
    let fx = Fixture::new("doctor-openssl");
    let run = fx.run(&[]).fails_with(3);
    assert!(
        run.stderr.contains("note: the build failed, and `cargo containerize doctor` finds what may explain it\nwarning: openssl-sys is built without `vendored`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("if openssl-sys failed: musl targets have no system OpenSSL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("install musl-tools"), "{}", run.stderr);
}
