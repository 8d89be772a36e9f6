//! Selecting binaries in a multi-package workspace the way cargo does (-p, --bin,
//! --workspace, --exclude), and one layout holding every image.

use crate::support::{Fixture, ref_names, run_once, validate_layout};

#[test]
fn default_members_give_one_image_per_binary_in_one_layout() {
    let fx = Fixture::new("two-bins");
    let run = fx.run(&[]).ok();
    let names: Vec<String> = run
        .refs()
        .iter()
        .map(|r| r.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["api", "worker", "worker-admin"], "{}", run.stdout);
    assert_eq!(
        ref_names(&fx),
        [
            "api:0.1.0",
            "api:latest",
            "worker-admin:0.1.0",
            "worker-admin:latest",
            "worker:0.1.0",
            "worker:latest"
        ]
    );
    validate_layout(&fx.layout());
    let out = run_once(
        &format!("oci:{}:worker-admin:latest", fx.layout().display()),
        "amd64",
        &[],
    );
    assert!(out.contains("worker-admin"), "{out}");
    for image in ["api", "worker", "worker-admin"] {
        assert!(fx.out().join(image).join("image.json").is_file());
    }
}

#[test]
fn package_bin_and_exclude_flags_select_like_cargo() {
    let fx = Fixture::new("two-bins");
    let run = fx
        .run(&["-p", "worker", "--bin", "worker-admin", "-t", "dev"])
        .ok();
    assert_eq!(run.refs().len(), 1);
    assert!(
        run.refs()[0].starts_with("worker-admin:dev@sha256:"),
        "{}",
        run.stdout
    );

    // A later run for another package keeps the first image in the layout.
    let run = fx.run(&["--workspace", "--exclude", "worker"]).ok();
    assert_eq!(run.refs().len(), 1);
    assert!(run.refs()[0].starts_with("api:latest@"));
    assert_eq!(
        ref_names(&fx),
        ["api:0.1.0", "api:latest", "worker-admin:dev"]
    );
    validate_layout(&fx.layout());
}

#[test]
fn unknown_package_or_binary_is_a_usage_error_listing_the_choices() {
    let fx = Fixture::new("two-bins");
    let run = fx.run(&["-p", "nope"]).fails_with(2);
    assert!(
        run.stderr
            .contains("package `nope` is not a member of this workspace"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("api, greeter-lib, worker"),
        "{}",
        run.stderr
    );
    let run = fx.run(&["--bin", "nope"]).fails_with(2);
    assert!(
        run.stderr.contains("no binary target named `nope`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("api, worker, worker-admin"),
        "{}",
        run.stderr
    );
    let run = fx.run(&["-p", "greeter-lib"]).fails_with(2);
    assert!(
        run.stderr.contains("no binary targets selected"),
        "{}",
        run.stderr
    );
    assert!(
        !fx.layout().join("index.json").exists(),
        "nothing may be written on a usage error"
    );
}
