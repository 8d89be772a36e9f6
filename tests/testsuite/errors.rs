//! Bad input gets a clear error that says what to do, with a distinct exit code, and
//! leaves no output behind.

use crate::support::{self, Fixture};

#[track_caller]
fn assert_nothing_written(fx: &Fixture) {
    assert!(
        !fx.layout().join("index.json").exists(),
        "a failed run must not write a layout"
    );
}

#[test]
fn unknown_metadata_key_names_key_table_and_file() {
    let fx = Fixture::new("two-bins");
    fx.edit("crates/api/Cargo.toml", |s| {
        format!("{s}\n[package.metadata.containerize]\nexpose = [8080]\n")
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("error: unknown key `expose` in [package.metadata.containerize] of crates/api/Cargo.toml\n  --> crates/api/Cargo.toml:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`exposed-ports`"), "{}", run.stderr);
    assert_nothing_written(&fx);
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let fx = Fixture::new("two-bins");
    fx.edit("Cargo.toml", |s| {
        format!("{s}\n[workspace.metadata.containerize]\nplatforms = \"linux/amd64\"\n")
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("invalid `platforms` in [workspace.metadata.containerize] of Cargo.toml"),
        "{}",
        run.stderr
    );

    let fx = Fixture::new("two-bins");
    fx.edit("crates/worker/Cargo.toml", |s| {
        format!("{s}\n[package.metadata.containerize.bin.worker-admin]\nexposed-ports = [0]\n")
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("invalid `exposed-ports[0]` in [package.metadata.containerize.bin.worker-admin] of crates/worker/Cargo.toml: port 0 is out of range"),
        "{}",
        run.stderr
    );

    let fx = Fixture::new("two-bins");
    fx.edit("crates/worker/Cargo.toml", |s| {
        format!("{s}\n[package.metadata.containerize.bin.wrker]\nargs = []\n")
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(run.stderr.contains("[package.metadata.containerize.bin.wrker] in crates/worker/Cargo.toml names no binary of package `worker`"), "{}", run.stderr);
    assert_nothing_written(&fx);
}

#[test]
fn bad_platform_flag_and_missing_assets_are_clear() {
    let fx = Fixture::new("hello-http");
    let run = fx.run(&["--platform", "linux/s390x"]).fails_with(2);
    assert!(
        run.stderr.contains(
            "unsupported platform `linux/s390x` (supported: linux/amd64, linux/arm64, all)"
        ),
        "{}",
        run.stderr
    );
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize]",
            "[package.metadata.containerize]\nassets = \"no-such-dir\"",
        )
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(run.stderr.contains("assets directory"), "{}", run.stderr);
    assert!(run.stderr.contains("no-such-dir"), "{}", run.stderr);
    assert_nothing_written(&fx);
}

#[test]
fn a_compile_error_reports_cargo_failure_with_exit_code_3() {
    let fx = Fixture::new("hello-http");
    fx.edit("src/main.rs", |s| {
        format!("{s}\nfn broken() -> u32 {{ \"x\" }}\n")
    });
    let run = fx.run(&[]).fails_with(3);
    assert!(
        run.stderr.contains("mismatched types"),
        "cargo's diagnostics are shown: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`cargo build` for linux/amd64 failed"),
        "{}",
        run.stderr
    );
    assert_nothing_written(&fx);
}

#[test]
fn outside_a_workspace_says_where_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::containerize_cmd(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`cargo metadata` failed"), "{stderr}");
    assert!(stderr.contains("--manifest-path"), "{stderr}");
}
