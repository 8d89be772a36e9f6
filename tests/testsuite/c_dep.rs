//! A crate that compiles C code builds statically for both architectures: musl-gcc for
//! x86_64, cargo-zigbuild for aarch64.

use crate::support::{Fixture, require, run_once, validate_layout};

#[test]
fn crate_with_c_code_builds_static_and_runs_on_amd64_and_arm64() {
    require("musl-gcc");
    require("cargo-zigbuild");
    let fx = Fixture::new("c-dep");
    let run = fx
        .run(&["--platform", "linux/amd64,linux/arm64", "-v"])
        .ok();
    assert!(run.stderr.contains("cargo with musl-gcc"), "{}", run.stderr);
    assert!(run.stderr.contains("cargo-zigbuild"), "{}", run.stderr);
    validate_layout(&fx.layout());
    let image = format!("oci:{}:c-dep:latest", fx.layout().display());
    assert_eq!(run_once(&image, "amd64", &[]).trim(), "2+3=5");
    assert_eq!(run_once(&image, "arm64", &[]).trim(), "2+3=5");
}
