//! `--base` with the bases real registries serve, not only ones this tool built: a Docker
//! v2s2 manifest list, a single-platform Docker v2s2 manifest (both made by
//! `skopeo --format v2s2`), and a buildx-style OCI index that carries an attestation
//! manifest for `unknown/unknown`. Each one builds, validates and runs.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{self, Fixture, Registry, require, run_once, validate_layout};

fn skopeo(args: &[&str]) {
    require("skopeo");
    let out = Command::new("timeout")
        .arg("300")
        .arg("skopeo")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn inspect_raw(reference: &str) -> Value {
    require("skopeo");
    let out = Command::new("timeout")
        .args(["120", "skopeo", "inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let path = layout.join("blobs/sha256").join(&digest[7..]);
    std::fs::write(path, bytes).unwrap();
    digest
}

/// Adds a buildx-style attestation manifest (`unknown/unknown`, pointing at the amd64
/// manifest) to the index of `layout`'s only image.
fn add_attestation(layout: &Path) {
    let index_path = layout.join("index.json");
    let top: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = &top["manifests"][0];
    let image_index_digest = entry["digest"].as_str().unwrap();
    let image_index: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&image_index_digest[7..])).unwrap(),
    )
    .unwrap();
    let amd64 = image_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "_", "digest": {"sha256": &amd64[7..]}}],
        "predicate": {}
    });
    let statement = serde_json::to_vec(&statement).unwrap();
    let layer = write_blob(layout, &statement);
    let config = write_blob(layout, b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{
            "mediaType": "application/vnd.in-toto+json",
            "digest": layer,
            "size": statement.len(),
            "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
        }]
    }))
    .unwrap();
    let manifest_digest = write_blob(layout, &manifest);
    let mut new_index = image_index.clone();
    new_index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest.len(),
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {
            "vnd.docker.reference.digest": amd64,
            "vnd.docker.reference.type": "attestation-manifest"
        }
    }));
    let new_index = serde_json::to_vec(&new_index).unwrap();
    let new_digest = write_blob(layout, &new_index);
    let mut top = top.clone();
    top["manifests"][0]["digest"] = json!(new_digest);
    top["manifests"][0]["size"] = json!(new_index.len());
    std::fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
}

/// Layer digests of the manifest of `arch` in our image `name`.
fn our_layers(fx: &Fixture, name: &str, arch: &str) -> Vec<String> {
    let top = support::json_blob(
        &fx.layout(),
        fx.image_json(name)["digest"].as_str().unwrap(),
    );
    let manifest = match top["manifests"].as_array() {
        Some(list) => {
            let entry = list
                .iter()
                .find(|m| m["platform"]["architecture"] == arch)
                .unwrap();
            support::json_blob(&fx.layout(), entry["digest"].as_str().unwrap())
        }
        None => top,
    };
    for l in manifest["layers"].as_array().unwrap() {
        assert!(
            l["mediaType"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.oci.image.layer."),
            "OCI layer types only, even on a Docker base: {l}"
        );
    }
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Layer digests of the base's manifest for `arch` (an index/list entry, or itself).
fn base_layers(reference_repo: &str, top: &Value, arch: &str) -> Vec<String> {
    let manifest = match top["manifests"].as_array() {
        Some(list) => {
            let entry = list
                .iter()
                .find(|m| m["platform"]["architecture"] == arch)
                .unwrap();
            inspect_raw(&format!(
                "{reference_repo}@{}",
                entry["digest"].as_str().unwrap()
            ))
        }
        None => top.clone(),
    };
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn docker_v2s2_lists_and_manifests_and_buildx_indexes_with_attestations_work_as_bases() {
    let reg = Registry::start("none", &[]);
    let host = reg.host().to_string();
    // The base: two-bins' `api`, for both platforms, as this tool pushes it (OCI).
    let bases = Fixture::new("two-bins");
    bases
        .run(&[
            "-p",
            "api",
            "--platform",
            "all",
            "--push",
            "--repo",
            &format!("{host}/bases"),
            "--no-kube",
        ])
        .ok();
    let src = format!("docker://{host}/bases/api:latest");
    let tls = ["--src-tls-verify=false", "--dest-tls-verify=false"];
    // A Docker v2s2 manifest list, and a single-platform Docker v2s2 manifest.
    let mut args = vec!["copy", "--all", "--format", "v2s2"];
    args.extend(tls);
    let list_dest = format!("docker://{host}/bases/list:latest");
    args.extend([src.as_str(), list_dest.as_str()]);
    skopeo(&args);
    let mut args = vec!["copy", "--override-arch", "amd64", "--override-os", "linux"];
    args.extend(["--format", "v2s2"]);
    args.extend(tls);
    let single_dest = format!("docker://{host}/bases/single:latest");
    args.extend([src.as_str(), single_dest.as_str()]);
    skopeo(&args);
    // A buildx-style index: the same two manifests plus an attestation manifest.
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("buildx");
    let oci_ref = format!("oci:{}:latest", oci.display());
    skopeo(&["copy", "--all", "--src-tls-verify=false", &src, &oci_ref]);
    add_attestation(&oci);
    let buildx_dest = format!("docker://{host}/bases/buildx:latest");
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &oci_ref,
        &buildx_dest,
    ]);

    let list = inspect_raw(&format!("{host}/bases/list:latest"));
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let single = inspect_raw(&format!("{host}/bases/single:latest"));
    assert_eq!(
        single["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let buildx = inspect_raw(&format!("{host}/bases/buildx:latest"));
    assert!(
        buildx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["platform"]["architecture"] == "unknown"),
        "{buildx}"
    );

    for (name, top, platforms, arches) in [
        ("list", &list, "all", &["amd64", "arm64"][..]),
        ("single", &single, "linux/amd64", &["amd64"][..]),
        ("buildx", &buildx, "all", &["amd64", "arm64"][..]),
    ] {
        let fx = Fixture::new("two-bins");
        let base = format!("{host}/bases/{name}:latest");
        let run = fx.run(&[
            "-p",
            "worker",
            "--bin",
            "worker",
            "--platform",
            platforms,
            "--base",
            &base,
            "--no-kube",
        ]);
        let run = run.ok();
        assert!(
            run.stderr.contains("Pulling base image"),
            "{name}: {}",
            run.stderr
        );
        validate_layout(&fx.layout());
        // The provenance names the base by what was asked and the digest it resolved to,
        // the same digest the image's annotations record.
        let statement: Value = serde_json::from_slice(
            &std::fs::read(fx.out().join("worker/provenance.linux-amd64.intoto.json")).unwrap(),
        )
        .unwrap();
        let def = &statement["predicate"]["buildDefinition"];
        assert_eq!(def["externalParameters"]["base"], base.as_str());
        let dep = def["resolvedDependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == base.as_str())
            .unwrap_or_else(|| panic!("{name}: no base in {def}"));
        let amd64 = fx.image_json("worker")["platforms"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let manifest = support::json_blob(&fx.layout(), &amd64);
        let recorded = manifest["annotations"]["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap();
        assert_eq!(
            format!("sha256:{}", dep["digest"]["sha256"].as_str().unwrap()),
            recorded,
            "{name}"
        );
        assert_eq!(
            dep["uri"],
            format!("oci://{host}/bases/{name}@{recorded}").as_str()
        );
        for arch in arches {
            let ours = our_layers(&fx, "worker", arch);
            let theirs = base_layers(&format!("{host}/bases/{name}"), top, arch);
            assert_eq!(
                &ours[..theirs.len()],
                &theirs[..],
                "{name} {arch}: the base's layers come first, unchanged"
            );
            assert_eq!(ours.len(), theirs.len() + 1, "{name} {arch}: plus ours");
        }
        let image = format!("oci:{}:worker:latest", fx.layout().display());
        assert_eq!(
            run_once(&image, "amd64", &[]).trim(),
            "hello from worker",
            "{name}"
        );
    }
}
