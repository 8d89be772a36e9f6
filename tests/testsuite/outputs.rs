//! Extra outputs (another OCI layout, an OCI archive for `podman load`), assets, and the
//! incremental no-op re-run.

use crate::support::{self, Fixture, json_blob, require, run_once, validate_layout};

#[test]
fn extra_layout_and_tarball_hold_the_same_image() {
    require("podman");
    let fx = Fixture::new("hello-http");
    let extra = fx.tmp.path().join("extra-layout");
    let tarball = fx.tmp.path().join("image.tar");
    let run = fx
        .run(&[
            "--oci-layout-path",
            extra.to_str().unwrap(),
            "--tarball",
            tarball.to_str().unwrap(),
        ])
        .ok();
    validate_layout(&extra);
    let digest = fx.image_json("hello-http")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run.stdout.contains(&digest));
    assert!(
        extra
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
            .is_file()
    );
    let out = run_once(
        &format!("oci-archive:{}:hello-http:latest", tarball.display()),
        "amd64",
        &["echo", "from", "archive"],
    );
    assert_eq!(out.trim(), "from archive");
    // The archive is a valid tar of a layout.
    let unpacked = fx.tmp.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let ok = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    validate_layout(&unpacked);
}

#[test]
fn no_op_rerun_reuses_layers_and_keeps_the_digest() {
    let fx = Fixture::new("hello-http");
    let first = fx.run(&[]).ok();
    let second = fx.run(&[]).ok();
    assert_eq!(first.stdout, second.stdout);
    assert!(
        second
            .stderr
            .contains("Fresh hello-http v0.1.0 (linux/amd64)"),
        "{}",
        second.stderr
    );
    // Changing the code changes the digest and repackages.
    fx.edit("src/main.rs", |s| s.replace("tmp ok", "tmp OK"));
    let third = fx.run(&[]).ok();
    assert_ne!(first.stdout, third.stdout);
    assert!(
        third.stderr.contains("Packaged hello-http"),
        "{}",
        third.stderr
    );
    // Old blobs are collected: the layout holds exactly the current image.
    validate_layout(&fx.layout());
    let blobs = std::fs::read_dir(fx.layout().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        blobs, 9,
        "manifest, config, base layer, binary layer; SBOM and provenance artifact manifests, empty config, SBOM, provenance"
    );
}

#[test]
fn assets_config_and_args_reach_the_image() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize]",
            "[package.metadata.containerize]\nassets = \"static\"\nargs = [\"echo\", \"from-args\"]\nlabels = { team = \"yes\" }\nworkdir = \"/app\"",
        )
    });
    fx.run(&[
        "--image-label",
        "team=from-cli",
        "--image-label",
        "tier=web",
        "--image-annotation",
        "org.example.note=a=b",
    ])
    .ok();
    validate_layout(&fx.layout());
    let summary = fx.image_json("hello-http");
    let manifest = json_blob(&fx.layout(), summary["digest"].as_str().unwrap());
    assert_eq!(manifest["annotations"]["org.example.note"], "a=b");
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        3,
        "base + assets + binary"
    );
    let config = json_blob(&fx.layout(), manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["echo", "from-args"])
    );
    // --image-label wins over the metadata's `labels` and adds to them.
    assert_eq!(config["config"]["Labels"]["team"], "from-cli");
    assert_eq!(config["config"]["Labels"]["tier"], "web");
    let image = format!("oci:{}:hello-http:latest", fx.layout().display());
    assert_eq!(run_once(&image, "amd64", &[]).trim(), "from-args");
    // The asset is in its own layer, world-readable, under /app/static.
    let assets = support::blob(
        &fx.layout(),
        manifest["layers"][1]["digest"].as_str().unwrap(),
    );
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(assets.as_slice()));
    let entries: Vec<(String, u32)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert!(
        entries.contains(&("app/static/index.html".to_string(), 0o644)),
        "{entries:?}"
    );
}
