//! Signing (`--sign-key`): every platform manifest, the index and every attestation get a
//! Sigstore bundle v0.3, attached as an OCI 1.1 referrer (referrers API on
//! ferro-oci-server, the tag fallback on distribution). The bundles are verified by an
//! independent implementation, sigstore-js (`support/sigstore-verify.js`), with the public
//! key: a wrong key, a tampered payload and a bundle moved to another digest are all
//! rejected. An unchanged re-push writes nothing; a bad key or passphrase fails before
//! anything is built.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Fixture, Registry, kit, require};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EPOCH: [(&str, &str); 1] = [("SOURCE_DATE_EPOCH", "1700000000")];

/// Where scripts/install-test-deps.sh puts sigstore-js.
fn sigstore_js() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let dir = cache.join("cargo-containerize-tests/sigstore-js");
    assert!(
        dir.join("node_modules/@sigstore/verify/package.json")
            .is_file(),
        "sigstore-js is missing from {}: run scripts/install-test-deps.sh",
        dir.display()
    );
    dir
}

/// sigstore-js's verdict on `bundle` with `public` (and, if given, the subject it must
/// name): Ok(its summary line) or Err(its reason).
fn sigstore_verify(bundle: &Path, public: &Path, subject: Option<&str>) -> Result<String, String> {
    require("node");
    let script = support::repo().join("tests/testsuite/support/sigstore-verify.js");
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", sigstore_js().join("node_modules"))
        .arg(script)
        .arg(bundle)
        .arg(public);
    if let Some(s) = subject {
        cmd.args(["--subject", s]);
    }
    let out = cmd.output().expect("node runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    match out.status.code() {
        Some(0) => Ok(text(&out.stdout)),
        Some(1) => Err(text(&out.stderr)),
        _ => panic!("sigstore-verify.js: {}", text(&out.stderr)),
    }
}

fn curl_json(url: &str) -> Vec<u8> {
    support::output_ok(Command::new("curl").args([
        "-sf",
        "--max-time",
        "20",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        url,
    ]))
}

/// The bundles attached to `digest`: (predicate type annotation, bundle bytes).
fn bundles_of(reg: &Registry, repo: &str, digest: &str, way: &str) -> Vec<(String, Vec<u8>)> {
    let at = format!("{}/{repo}@{digest}", reg.host());
    let listing = kit("referrers.py", &[way, "--artifact-type", BUNDLE, &at]);
    let index: Value = serde_json::from_str(&listing).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let url = format!(
                "http://{}/v2/{repo}/manifests/{}",
                reg.host(),
                m["digest"].as_str().unwrap()
            );
            let manifest: Value = serde_json::from_slice(&curl_json(&url)).unwrap();
            assert_eq!(manifest["artifactType"], BUNDLE);
            assert_eq!(manifest["subject"]["digest"], digest);
            assert_eq!(
                manifest["annotations"]["dev.sigstore.bundle.content"],
                "dsse-envelope"
            );
            let predicate = manifest["annotations"]["dev.sigstore.bundle.predicateType"]
                .as_str()
                .unwrap()
                .to_string();
            let layer = manifest["layers"][0]["digest"].as_str().unwrap();
            let blob = support::output_ok(Command::new("curl").args([
                "-sf",
                "--max-time",
                "20",
                &format!("http://{}/v2/{repo}/blobs/{layer}", reg.host()),
            ]));
            (predicate, blob)
        })
        .collect()
}

fn signed_push(reg: &Registry, way: &str) {
    let fx = Fixture::new("hello-http");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = support::keypair(keys.path(), "cosign");
    let repo = format!("{}/signed", reg.host());
    let push = [
        "--platform",
        "all",
        "--push",
        "--repo",
        &repo,
        "--sign-key",
        key.to_str().unwrap(),
    ];
    let run = fx.run_with(&push, &EPOCH).ok();
    // Two platforms: a signature each, plus one per SBOM and provenance; and the index's.
    assert!(
        run.stderr.contains("Signing 7 signature bundles"),
        "{}",
        run.stderr
    );
    let image = fx.image_json("hello-http");
    let index_digest = image["digest"].as_str().unwrap().to_string();
    let mut subjects: Vec<(String, usize)> = vec![(index_digest, 1)];
    for p in image["platforms"].as_array().unwrap() {
        subjects.push((p["digest"].as_str().unwrap().to_string(), 3));
    }
    let other = support::keypair(keys.path(), "other").1;
    for (digest, expected) in &subjects {
        let bundles = bundles_of(reg, "signed/hello-http", digest, way);
        let mut kinds: Vec<&str> = bundles.iter().map(|(p, _)| p.as_str()).collect();
        kinds.sort();
        eprintln!("bundles of {digest} ({way}): {kinds:?}");
        let want: &[&str] = if *expected == 1 {
            &["https://sigstore.dev/cosign/sign/v1"]
        } else {
            &[
                "https://cyclonedx.org/bom",
                "https://sigstore.dev/cosign/sign/v1",
                "https://slsa.dev/provenance/v1",
            ]
        };
        assert_eq!(kinds, want);
        for (predicate, bytes) in &bundles {
            let file = keys.path().join("bundle.json");
            std::fs::write(&file, bytes).unwrap();
            let ok = sigstore_verify(&file, &public, Some(digest))
                .unwrap_or_else(|e| panic!("sigstore-js rejects the {predicate} bundle: {e}"));
            eprintln!("sigstore-js: {ok}");
            assert!(ok.contains(&format!("predicateType={predicate}")), "{ok}");
            // The wrong key, and the right key for another digest, are refused.
            let wrong = sigstore_verify(&file, &other, Some(digest)).unwrap_err();
            assert!(wrong.contains("SIGNATURE_ERROR"), "{wrong}");
            let elsewhere = format!("sha256:{}", "0".repeat(64));
            let moved = sigstore_verify(&file, &public, Some(&elsewhere)).unwrap_err();
            assert!(moved.contains("subject mismatch"), "{moved}");
            // One byte of the signed statement changed: refused.
            let mut b: Value = serde_json::from_slice(bytes).unwrap();
            let payload = b["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::STANDARD;
            let mut raw = engine.decode(payload).unwrap();
            let at = raw.len() / 2;
            raw[at] ^= 0x01;
            b["dsseEnvelope"]["payload"] = Value::String(engine.encode(raw));
            std::fs::write(&file, serde_json::to_vec(&b).unwrap()).unwrap();
            let tampered = sigstore_verify(&file, &public, Some(digest)).unwrap_err();
            assert!(tampered.contains("SIGNATURE_ERROR"), "{tampered}");
        }
    }
    // Signatures are deterministic: the same build signed again uploads nothing new.
    fx.run_with(&push, &EPOCH).ok();
    assert_eq!(fx.image_json("hello-http")["pushed"]["uploaded_bytes"], 0);
    for (digest, expected) in &subjects {
        assert_eq!(
            bundles_of(reg, "signed/hello-http", digest, way).len(),
            *expected,
            "a re-push adds no bundle to {digest}"
        );
    }
}

#[test]
fn signed_push_bundles_verify_with_sigstore_js_through_the_referrers_api() {
    require("ferro-oci-server");
    let reg = Registry::start("none", &["--referrers"]);
    signed_push(&reg, "--require-api");
}

#[test]
fn signed_push_bundles_verify_with_sigstore_js_through_the_tag_fallback() {
    let reg = Registry::start("none", &[]);
    signed_push(&reg, "--require-fallback");
}

#[test]
fn bad_keys_and_passphrases_fail_before_anything_is_built() {
    let fx = Fixture::new("hello-http");
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = support::keypair(dir.path(), "cosign");
    let run = fx
        .run(&["--sign-key", public.to_str().unwrap()])
        .fails_with(2);
    assert!(run.stderr.contains("it is a public key"), "{}", run.stderr);
    assert!(!run.stderr.contains("Compiling"), "{}", run.stderr);
    assert!(
        support::says_something(&run.stderr).is_ok(),
        "{}",
        run.stderr
    );
    let missing = dir.path().join("nope.key");
    let run = fx
        .run(&["--sign-key", missing.to_str().unwrap()])
        .fails_with(2);
    assert!(
        run.stderr.contains("failed to read the signing key"),
        "{}",
        run.stderr
    );
    // An encrypted cosign key without its passphrase names the variable to set.
    let cosign = dir.path().join("cosign.key");
    std::fs::write(
        &cosign,
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
    )
    .unwrap();
    let run = fx
        .run(&["--sign-key", cosign.to_str().unwrap()])
        .fails_with(2);
    assert!(
        run.stderr.contains("CARGO_CONTAINERIZE_SIGN_PASSWORD"),
        "{}",
        run.stderr
    );
    assert!(!fx.out().join("oci").join("index.json").exists());
}

/// A cosign.key sealed by an independent implementation (Python: `cryptography`, hashlib's
/// scrypt and PyNaCl's secretbox, in go-securesystemslib's envelope, as `cosign
/// generate-key-pair` writes it) opens with its passphrase and signs; sigstore-js verifies
/// the signature with the public key made next to it. A wrong passphrase fails before
/// anything is built.
#[test]
fn a_cosign_key_sealed_by_pynacl_signs_what_sigstore_js_verifies() {
    let fx = Fixture::new("hello-http");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("cosign.key"), dir.path().join("cosign.pub"));
    support::output_within(
        Command::new(support::repo().join("tests/testsuite/support/seal-cosign-key.py"))
            .arg(&key)
            .arg(&public)
            .arg("correct horse battery staple"),
        120,
    );
    let sign = ["--sign-key", key.to_str().unwrap()];
    let run = fx
        .run_with(
            &sign,
            &[
                ("SOURCE_DATE_EPOCH", "1700000000"),
                ("CARGO_CONTAINERIZE_SIGN_PASSWORD", "wrong horse"),
            ],
        )
        .fails_with(2);
    assert!(
        run.stderr
            .contains("the passphrase does not decrypt the cosign key"),
        "{}",
        run.stderr
    );
    assert!(!fx.layout().join("index.json").exists());

    fx.run_with(
        &sign,
        &[
            ("SOURCE_DATE_EPOCH", "1700000000"),
            ("COSIGN_PASSWORD", "correct horse battery staple"),
        ],
    )
    .ok();
    // The manifest's signature bundle, from the OCI layout.
    let layout = fx.layout();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let image = fx.image_json("hello-http");
    let subject = image["platforms"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let signature = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|n| n == format!("hello-http:{}.sig", subject.replace(':', "-")))
        })
        .unwrap_or_else(|| panic!("no signature for {subject} in {index}"));
    let manifest = support::json_blob(&layout, signature["digest"].as_str().unwrap());
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        support::blob(&layout, manifest["layers"][0]["digest"].as_str().unwrap()),
    )
    .unwrap();
    let verdict = sigstore_verify(&bundle, &public, Some(&subject));
    eprintln!("sigstore-js on the bundle signed with the PyNaCl-sealed key: {verdict:?}");
    assert!(verdict.is_ok(), "{verdict:?}");
    let (_, other) = support::keypair(dir.path(), "other");
    assert!(sigstore_verify(&bundle, &other, Some(&subject)).is_err());
}
