//! `--compression zstd`: zstd layers that the runtimes which read them actually run
//! (podman and containerd, each pulling from a registry), the same digest from any directory,
//! and a clear refusal where a docker archive would need gzip.

use std::process::Command;

use serde_json::Value;

use crate::support::runtimes::{Containerd, Podman, describe, free_port, http_get};
use crate::support::{Fixture, Registry, json_blob, require};

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Every layer of the image's manifest, by media type.
fn layer_types(fx: &Fixture, image: &str) -> Vec<String> {
    let digest = fx.image_json(image)["digest"].as_str().unwrap().to_string();
    let manifest = json_blob(&fx.layout(), &digest);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

/// The kit's layout checker (hashes, sizes, tar safety, and each zstd layer decompressed
/// to its diff_id), with no warning allowed: a layer it could not decompress would be one.
/// (Debian's umoci 0.4 and oci-image-tool 1.0 predate zstd layers; podman and containerd
/// run the image below instead.)
#[track_caller]
fn check_layout(fx: &Fixture) {
    require("zstd");
    let out = Command::new("python3")
        .arg(crate::support::testkit("oci-layout-check.py"))
        .arg(fx.layout())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" 0 warning(s)"), "{text}");
}

#[test]
fn zstd_images_run_under_podman_and_containerd() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    let run = fx
        .run(&["--compression", "zstd", "--push", "--repo", &repo])
        .ok();
    assert_eq!(
        layer_types(&fx, "hello-http"),
        [ZSTD, ZSTD],
        "base and binary"
    );
    check_layout(&fx);
    // The registry holds the same manifest, zstd layers and all.
    require("skopeo");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}/hello-http:latest"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", describe(&raw));
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"] == ZSTD),
        "{manifest}"
    );
    let pushed = run.refs()[0].clone();

    // podman, pulled from the registry.
    let p = Podman::new();
    let name = format!("{repo}/hello-http:latest");
    p.podman_ok(&["pull", "-q", "--tls-verify=false", &name]);
    let port = free_port();
    let _c = p.serve(&name, port);
    let (code, body) = http_get(port, "/").unwrap();
    assert_eq!(code, 200, "{body}");

    // containerd, pulled from the registry by digest.
    let c = Containerd::start();
    let out = Command::new("ctr")
        .args([
            "--address",
            c.address(),
            "-n",
            "k8s.io",
            "images",
            "pull",
            "--plain-http",
        ])
        .arg(&pushed)
        .envs(c.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctr pull {pushed}: {}",
        describe(&out)
    );
    let port = free_port();
    let _t = c.serve("k8s.io", &pushed, port);
    let (code, body) = http_get(port, "/").unwrap();
    assert_eq!(code, 200, "{body}");
}

#[test]
fn zstd_layers_are_reproducible_and_cached_apart_from_gzip() {
    let a = Fixture::new("hello-http");
    let b = Fixture::new("hello-http");
    a.run(&["--compression", "zstd"]).ok();
    b.run_with(&[], &[("CARGO_CONTAINERIZE_COMPRESSION", "zstd")])
        .ok();
    let digest = |fx: &Fixture| fx.image_json("hello-http")["digest"].clone();
    assert_eq!(digest(&a), digest(&b), "same commit, two directories");
    // Switching back to gzip is a different image, not a stale cache hit.
    let zstd: Value = digest(&a);
    a.run(&[]).ok();
    assert_ne!(digest(&a), zstd);
    assert!(
        layer_types(&a, "hello-http")
            .iter()
            .all(|t| t.ends_with("+gzip"))
    );
    // The workspace metadata's key is used when no flag is given.
    a.edit("Cargo.toml", |s| {
        s.replace(
            "[workspace]\n",
            "[workspace]\n[workspace.metadata.containerize]\ncompression = \"zstd\"\n",
        )
    });
    a.run(&[]).ok();
    assert_eq!(digest(&a), zstd);
}

#[test]
fn zstd_with_a_docker_archive_or_a_package_table_is_an_error() {
    let fx = Fixture::new("hello-http");
    let tar = fx.tmp.path().join("images.tar");
    let run = fx
        .run(&["--compression", "zstd", "--tarball", tar.to_str().unwrap()])
        .fails_with(2);
    assert!(
        run.stderr.contains("--tarball") && run.stderr.contains("--compression gzip"),
        "{}",
        run.stderr
    );
    assert!(!tar.exists() && !fx.layout().exists(), "nothing is written");
    let run = fx
        .run(&["--compression", "zstd", "--load", "podman"])
        .fails_with(2);
    assert!(run.stderr.contains("--load"), "{}", run.stderr);
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize]\n",
            "[package.metadata.containerize]\ncompression = \"zstd\"\n",
        )
    });
    let run = fx.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("compression") && run.stderr.contains("workspace.metadata"),
        "{}",
        run.stderr
    );
}
