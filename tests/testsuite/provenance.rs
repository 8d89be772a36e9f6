//! SLSA provenance (issue 16): an in-toto Statement v1 per image and platform, validated
//! with in-toto-attestation's protobuf Statement and SLSA Provenance v1 types; its subject
//! is the platform manifest in the layout; byte-identical from another directory; the CI
//! builder and invocation from GitHub Actions' variables; attached next to the SBOMs in the
//! layout and as OCI 1.1 referrers (API and tag fallback) with both SBOMs, and an
//! unchanged re-push writes nothing.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{self, Fixture, Registry, kit, require, validate_layout};

const IN_TOTO: &str = "application/vnd.in-toto+json";
const LOCAL_BUILDER: &str = "https://github.com/cargo-containerize/cargo-containerize/blob/main/docs/provenance.md#local-builder";
const EPOCH: [(&str, &str); 1] = [("SOURCE_DATE_EPOCH", "1700000000")];

fn provenance_path(fx: &Fixture, image: &str, platform: &str) -> PathBuf {
    fx.out().join(image).join(format!(
        "provenance.{}.intoto.json",
        platform.replace('/', "-")
    ))
}

fn sbom_path(fx: &Fixture, platform: &str, ext: &str) -> PathBuf {
    fx.out()
        .join("hello-http")
        .join(format!("sbom.{}.{ext}.json", platform.replace('/', "-")))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `validate-provenance.py` (in-toto-attestation's Statement and SLSA v1 protobufs plus
/// the spec's required fields), with the expected subject, builder and invocation.
#[track_caller]
fn validate_provenance(path: &Path, subject: &str, builder: &str, invocation: &str) {
    require("python3");
    let script = support::repo().join("tests/testsuite/support/validate-provenance.py");
    let mut cmd = Command::new(script);
    cmd.args(["--expect-subject", subject])
        .args(["--expect-builder", builder])
        .args(["--expect-invocation", invocation])
        .arg(path);
    support::output_within(&mut cmd, 120);
}

/// (platform, manifest digest) of every platform of an image, from its image.json.
fn platforms(fx: &Fixture, image: &str) -> Vec<(String, String)> {
    fx.image_json(image)["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap().to_string(),
                p["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn provenance_validates_and_its_subject_is_the_platform_manifest_in_the_layout() {
    let fx = Fixture::new("hello-http");
    fx.run_with(&["--platform", "all", "-q"], &EPOCH).ok();
    let index = read_json(&fx.layout().join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let rustc = String::from_utf8(support::output_ok(
        Command::new("rustc").arg("-vV").current_dir(&fx.root),
    ))
    .unwrap();
    let release = rustc
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap();
    for (platform, digest) in platforms(&fx, "hello-http") {
        let path = provenance_path(&fx, "hello-http", &platform);
        validate_provenance(
            &path,
            &format!("hello-http@{digest}"),
            LOCAL_BUILDER,
            "none",
        );
        let statement = read_json(&path);
        // The subject is a platform manifest of the layout, for this platform.
        let manifest = support::json_blob(&fx.layout(), &digest);
        let config =
            support::json_blob(&fx.layout(), manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap(),
                config["architecture"].as_str().unwrap()
            ),
            platform
        );
        let def = &statement["predicate"]["buildDefinition"];
        let ext = &def["externalParameters"];
        assert_eq!(ext["platform"], platform.as_str());
        assert_eq!(
            ext["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        assert_eq!(ext["packages"], serde_json::json!(["hello-http"]));
        assert_eq!(ext["bins"], serde_json::json!(["hello-http"]));
        assert_eq!(ext["profile"], "release");
        assert_eq!(def["internalParameters"]["sourceDateEpoch"], 1_700_000_000);
        let deps = def["resolvedDependencies"].as_array().unwrap();
        let dep = |name: &str| {
            deps.iter()
                .find(|d| d["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {deps:?}"))
        };
        let lock = std::fs::read(fx.root.join("Cargo.lock")).unwrap();
        assert_eq!(
            dep("Cargo.lock")["digest"]["sha256"],
            sha256_hex(&lock).as_str()
        );
        assert_eq!(
            dep("rustc")["uri"],
            format!("pkg:generic/rustc@{release}").as_str()
        );
        // No metadata locally: no invocation and never a wall-clock time.
        assert!(
            statement["predicate"]["runDetails"]
                .get("metadata")
                .is_none()
        );

        // In the layout: an in-toto artifact about that manifest, holding the same bytes.
        let entry = entries
            .iter()
            .find(|m| {
                m["artifactType"] == IN_TOTO
                    && m["annotations"]["org.opencontainers.image.ref.name"]
                        == format!("hello-http:{}.provenance", digest.replace(':', "-")).as_str()
            })
            .unwrap_or_else(|| panic!("no provenance entry for {digest} in {index}"));
        let artifact = support::json_blob(&fx.layout(), entry["digest"].as_str().unwrap());
        assert_eq!(artifact["subject"]["digest"], digest.as_str());
        assert_eq!(artifact["layers"][0]["mediaType"], IN_TOTO);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            artifact["layers"][0]["digest"],
            format!("sha256:{}", sha256_hex(&bytes)).as_str()
        );
    }
    // The image index itself lists only the platform manifests.
    let top = fx.image_json("hello-http")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let image_index = support::json_blob(&fx.layout(), &top);
    for m in image_index["manifests"].as_array().unwrap() {
        assert!(m.get("artifactType").is_none(), "{image_index}");
    }
    validate_layout(&fx.layout());

    // Off by flag: the files and the artifacts go; by metadata too.
    fx.run_with(&["--platform", "all", "-q", "--provenance=false"], &EPOCH)
        .ok();
    assert!(!provenance_path(&fx, "hello-http", "linux/amd64").exists());
    let names = support::artifact_ref_names(&fx);
    assert!(
        names.iter().all(|n| !n.ends_with(".provenance")),
        "{names:?}"
    );
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize]",
            "[package.metadata.containerize]\nprovenance = false",
        )
    });
    fx.run_with(&["-q"], &EPOCH).ok();
    assert!(!provenance_path(&fx, "hello-http", "linux/amd64").exists());
    fx.run_with(&["-q", "--provenance"], &EPOCH).ok();
    assert!(provenance_path(&fx, "hello-http", "linux/amd64").exists());
}

#[test]
fn provenance_is_reproducible_and_names_the_ci_builder_and_run() {
    let a = Fixture::new("hello-http");
    let b = Fixture::new("hello-http");
    // The plan names the files before anything is built.
    let plan = a.run_with(&["plan", "--platform", "all"], &EPOCH).ok();
    assert!(
        plan.stdout.contains("provenance.linux-amd64.intoto.json")
            && plan.stdout.contains("provenance.linux-arm64.intoto.json"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(LOCAL_BUILDER), "{}", plan.stdout);
    a.run_with(&["-q"], &EPOCH).ok();
    b.run_with(&["-q"], &EPOCH).ok();
    let file =
        |fx: &Fixture| std::fs::read(provenance_path(fx, "hello-http", "linux/amd64")).unwrap();
    assert_eq!(
        file(&a),
        file(&b),
        "same provenance bytes from another directory"
    );
    let text = String::from_utf8(file(&a)).unwrap();
    assert!(
        !text.contains(a.tmp.path().to_str().unwrap()),
        "no checkout path"
    );

    // In GitHub Actions: the workflow at its ref is the builder, the run attempt the
    // invocation, and the run's repository and ref the source.
    let ci = [
        ("SOURCE_DATE_EPOCH", "1700000000"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/hello"),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/hello/.github/workflows/release.yml@refs/tags/v0.1.0",
        ),
        ("GITHUB_REF", "refs/tags/v0.1.0"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_ATTEMPT", "2"),
    ];
    a.run_with(&["-q"], &ci).ok();
    let (_, digest) = platforms(&a, "hello-http").remove(0);
    let path = provenance_path(&a, "hello-http", "linux/amd64");
    validate_provenance(
        &path,
        &format!("hello-http@{digest}"),
        "https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v0.1.0",
        "https://github.com/acme/hello/actions/runs/4242/attempts/2",
    );
    let statement = read_json(&path);
    let def = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        def["externalParameters"]["workflow"],
        serde_json::json!({
            "ref": "refs/tags/v0.1.0",
            "repository": "https://github.com/acme/hello",
            "path": ".github/workflows/release.yml",
        })
    );
    let source = &def["resolvedDependencies"][0];
    assert_eq!(
        source["uri"],
        "git+https://github.com/acme/hello@refs/tags/v0.1.0"
    );
    assert_eq!(
        source["digest"]["gitCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    // The image is the same: provenance is about the image, never in it.
    assert_eq!(
        a.image_json("hello-http")["digest"],
        b.image_json("hello-http")["digest"]
    );
}

/// Pushes hello-http for both platforms with both SBOM formats through a proxy that logs
/// every request; each platform manifest must list three referrers (CycloneDX, SPDX,
/// in-toto) the given way, each artifact's layer must be the file next to the image, and
/// an unchanged re-push must write nothing.
fn push_and_find_provenance(reg: &Registry, way: &str) {
    let proxy = FaultProxy::start(reg.host(), Faults::default());
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/prov", proxy.addr);
    let push = [
        "--platform",
        "all",
        "--push",
        "--repo",
        &repo,
        "--sbom",
        "cyclonedx,spdx",
    ];
    let run = fx.run_with(&push, &EPOCH).ok();
    for what in ["provenance", "SBOM (CycloneDX)", "SBOM (SPDX)"] {
        assert!(
            run.stderr.contains(&format!("Attached {what}")),
            "{}",
            run.stderr
        );
    }
    for (platform, digest) in platforms(&fx, "hello-http") {
        let at = format!("{}/prov/hello-http@{digest}", reg.host());
        let all = kit("referrers.py", &[way, "--expect-count", "3", &at]);
        eprintln!("referrers of {platform} {digest} ({way}):\n{all}");
        let index: Value = serde_json::from_str(&all).unwrap();
        let mut types: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["artifactType"].as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(
            types,
            [
                "application/spdx+json",
                "application/vnd.cyclonedx+json",
                IN_TOTO
            ]
        );
        // Each artifact, found by its type, carries the very file written next to the image.
        let files = [
            (IN_TOTO, provenance_path(&fx, "hello-http", &platform)),
            (
                "application/vnd.cyclonedx+json",
                sbom_path(&fx, &platform, "cdx"),
            ),
            ("application/spdx+json", sbom_path(&fx, &platform, "spdx")),
        ];
        for (artifact_type, file) in files {
            let only = kit(
                "referrers.py",
                &[
                    way,
                    "--artifact-type",
                    artifact_type,
                    "--expect-count",
                    "1",
                    &at,
                ],
            );
            let only: Value = serde_json::from_str(&only).unwrap();
            let artifact = only["manifests"][0]["digest"].as_str().unwrap();
            let url = format!(
                "http://{}/v2/prov/hello-http/manifests/{artifact}",
                reg.host()
            );
            let manifest: Value =
                serde_json::from_slice(&support::output_ok(Command::new("curl").args([
                    "-sf",
                    "--max-time",
                    "30",
                    "-H",
                    "Accept: application/vnd.oci.image.manifest.v1+json",
                    &url,
                ])))
                .unwrap();
            assert_eq!(manifest["subject"]["digest"], digest.as_str());
            assert_eq!(manifest["artifactType"], artifact_type);
            let local = std::fs::read(&file).unwrap();
            assert_eq!(
                manifest["layers"][0]["digest"],
                format!("sha256:{}", sha256_hex(&local)).as_str(),
                "{}",
                file.display()
            );
        }
        // The subject names the repository it was pushed to.
        validate_provenance(
            &provenance_path(&fx, "hello-http", &platform),
            &format!("{repo}/hello-http@{digest}"),
            LOCAL_BUILDER,
            "none",
        );
    }
    // An unchanged re-push writes nothing: no blob, manifest, referrer or tag.
    proxy.reset_stats();
    fx.run_with(&[&push[..], &["-q"]].concat(), &EPOCH).ok();
    let writes: Vec<String> = proxy
        .stats()
        .log
        .iter()
        .filter(|l| !l.starts_with("HEAD ") && !l.starts_with("GET "))
        .cloned()
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    let (_, digest) = platforms(&fx, "hello-http").remove(0);
    kit(
        "referrers.py",
        &[
            way,
            "--expect-count",
            "3",
            &format!("{}/prov/hello-http@{digest}", reg.host()),
        ],
    );
}

#[test]
fn push_attaches_provenance_found_through_the_referrers_api() {
    require("ferro-oci-server");
    let reg = Registry::start("none", &["--referrers"]);
    push_and_find_provenance(&reg, "--require-api");
}

#[test]
fn push_attaches_provenance_found_through_the_tag_fallback_on_distribution() {
    let reg = Registry::start("none", &[]);
    push_and_find_provenance(&reg, "--require-fallback");
}
