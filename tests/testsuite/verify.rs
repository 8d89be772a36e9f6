//! `cargo containerize verify`: a signed push verifies against a fresh rebuild of the same
//! checkout (signatures, attestations, every platform's manifest); the wrong key fails;
//! after one changed source line it fails naming the binary's layer and file, after a
//! changed asset naming that file; exit code 5 and nothing pushed or tagged by verify.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use crate::support::{self, Fixture, Registry};

const EPOCH: [(&str, &str); 1] = [("SOURCE_DATE_EPOCH", "1700000000")];

#[test]
fn verify_passes_on_a_rebuild_and_names_the_layer_and_file_that_differ() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    std::fs::create_dir_all(fx.root.join("static")).unwrap();
    std::fs::write(fx.root.join("static/index.html"), "<h1>hello</h1>\n").unwrap();
    fx.edit("Cargo.toml", |t| {
        t.replace(
            "exposed-ports = [8080]",
            "exposed-ports = [8080]\nassets = \"static\"",
        )
    });
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = support::keypair(keys.path(), "signer");
    let (_, other) = support::keypair(keys.path(), "other");
    let (key, public, other) = (
        key.to_str().unwrap().to_string(),
        public.to_str().unwrap().to_string(),
        other.to_str().unwrap().to_string(),
    );
    let repo = format!("{}/verify", reg.host());
    fx.run_with(
        &[
            "--platform",
            "all",
            "--push",
            "--repo",
            &repo,
            "--sign-key",
            &key,
        ],
        &EPOCH,
    )
    .ok();
    let digest = fx.image_json("hello-http")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let image = format!("{repo}/hello-http@{digest}");
    let tags_before = reg.tags("verify/hello-http");

    // A fresh rebuild of the same checkout matches, signatures and all.
    std::fs::remove_dir_all(fx.root.join("target/containerize")).unwrap();
    let ok = fx
        .run_with(
            &["verify", &image, "--key", &public, "--repo", &repo],
            &EPOCH,
        )
        .ok();
    eprintln!("{}", ok.stderr);
    assert_eq!(ok.stdout.trim(), image);
    for line in [
        "signature of index",
        "signature of linux/amd64 manifest",
        "signature of linux/arm64 manifest",
        "signed attestation (https://slsa.dev/provenance/v1)",
        "signed attestation (https://cyclonedx.org/bom)",
        "provenance (https://slsa.dev/provenance/v1) of linux/arm64",
        "SBOM (CycloneDX) is attached to linux/amd64",
        "Verified linux/amd64 manifest",
        "Verified linux/arm64 manifest",
        // The attached SBOMs are the rebuilt ones, byte for byte.
        "Verified linux/amd64 SBOM (CycloneDX) is the one this checkout writes",
        "Verified linux/arm64 SBOM (CycloneDX) is the one this checkout writes",
    ] {
        assert!(ok.stderr.contains(line), "{line}:\n{}", ok.stderr);
    }

    // Another key's signatures do not count.
    let wrong = fx
        .run_with(
            &["verify", &image, "--key", &other, "--repo", &repo],
            &EPOCH,
        )
        .fails_with(5);
    assert!(
        wrong.stderr.contains("has no signature by this key"),
        "{}",
        wrong.stderr
    );
    assert!(
        support::says_something(&wrong.stderr).is_ok(),
        "{}",
        wrong.stderr
    );

    // One changed source line: the binary's layer and the binary are named.
    let main_rs = std::fs::read_to_string(fx.root.join("src/main.rs")).unwrap();
    fx.edit("src/main.rs", |s| {
        s.replacen("\"hello from {}\"", "\"hello again from {}\"", 1)
    });
    let changed = fx
        .run_with(&["verify", &image, "--repo", &repo], &EPOCH)
        .fails_with(5);
    eprintln!("{}", changed.stderr);
    assert!(
        changed.stderr.contains(&format!("{image} does not verify")),
        "{}",
        changed.stderr
    );
    assert!(
        changed
            .stderr
            .contains("first differing file /app/hello-http"),
        "{}",
        changed.stderr
    );
    assert!(
        changed.stderr.contains("rootfs.diff_ids"),
        "{}",
        changed.stderr
    );
    std::fs::write(fx.root.join("src/main.rs"), main_rs).unwrap();

    // One changed asset: that file is named.
    std::fs::write(fx.root.join("static/index.html"), "<h1>changed</h1>\n").unwrap();
    let asset = fx
        .run_with(&["verify", &image, "--repo", &repo], &EPOCH)
        .fails_with(5);
    eprintln!("{}", asset.stderr);
    assert!(
        asset.stderr.contains("static/index.html"),
        "{}",
        asset.stderr
    );
    // verify pushes and tags nothing.
    assert_eq!(reg.tags("verify/hello-http"), tags_before);
}
