//! The CycloneDX and SPDX SBOMs of every image (issues 9 and 16): strict schema validation
//! (CycloneDX 1.6, `pyspdxtools -i`), the same content in both formats, the `required`
//! set against `cargo tree` on both platforms with and without an optional feature, the
//! comparison with `cargo cyclonedx`, byte-identical output and the artifacts in the OCI
//! layout. Discovery from the image digest in registries with and without the referrers
//! API, next to the provenance, is in `provenance.rs`.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Fixture, kit, require, validate_layout};

/// `gitdep`'s commit: fixed author, committer and dates make the same hash every time,
/// so the fixture's committed Cargo.lock stays valid.
const GITDEP_REV: &str = "58d496c855b2483813cae64130ea1a27b79c124b";
const PLATFORMS: [(&str, &str); 2] = [
    ("linux-amd64", "x86_64-unknown-linux-musl"),
    ("linux-arm64", "aarch64-unknown-linux-musl"),
];

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
        .env("GIT_COMMITTER_NAME", "fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `testdata/sbom-deps` with its `gitdep` served from a bare repository next to it.
pub(crate) fn sbom_deps() -> Fixture {
    let fx = Fixture::new("sbom-deps");
    let work = fx.tmp.path().join("gitdep-work");
    let bare = fx.tmp.path().join("gitdep.git");
    std::fs::rename(fx.root.join("gitdep"), &work).unwrap();
    git(&work, &["init", "-q", "-b", "main", "."]);
    git(&work, &["add", "-A"]);
    git(
        &work,
        &[
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "gitdep 0.2.0",
        ],
    );
    git(
        fx.tmp.path(),
        &["clone", "-q", "--bare", "gitdep-work", "gitdep.git"],
    );
    let url = format!("file://{}", bare.display());
    for file in ["Cargo.toml", "Cargo.lock"] {
        fx.edit(file, |s| {
            s.replace("GITDEP_URL", &url)
                .replace("GITDEP_REV", GITDEP_REV)
        });
    }
    fx
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sbom_path(fx: &Fixture, image: &str, platform: &str) -> PathBuf {
    fx.out()
        .join(image)
        .join(format!("sbom.{platform}.cdx.json"))
}

fn spdx_path(fx: &Fixture, image: &str, platform: &str) -> PathBuf {
    fx.out()
        .join(image)
        .join(format!("sbom.{platform}.spdx.json"))
}

/// `pyspdxtools -i FILE` (spdx-tools: SPDX 2.3 schema, ids, relationships, license
/// expressions against the SPDX license list); it prints nothing when the file is valid.
#[track_caller]
fn validate_spdx(path: &Path) {
    require("pyspdxtools");
    let out = support::output_within(Command::new("pyspdxtools").arg("-i").arg(path), 120);
    eprintln!(
        "pyspdxtools -i {}: valid {}",
        path.display(),
        String::from_utf8_lossy(&out)
    );
}

/// purl → (SHA-256 hashes) of every package in an SPDX document.
fn spdx_purls(doc: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for p in doc["packages"].as_array().unwrap() {
        let Some(purl) = p["externalRefs"]
            .as_array()
            .and_then(|r| r.iter().find(|e| e["referenceType"] == "purl"))
        else {
            continue;
        };
        let sums = p["checksums"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|c| format!("{}:{}", c["algorithm"], c["checksumValue"]))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(purl["referenceLocator"].as_str().unwrap().to_string(), sums);
    }
    out
}

/// The same, for the crates (and the root) of a CycloneDX document.
fn cdx_purls(doc: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let root = std::iter::once(&doc["metadata"]["component"]);
    for c in root.chain(doc["components"].as_array().unwrap()) {
        let Some(purl) = c["purl"].as_str() else {
            continue;
        };
        let sums = c["hashes"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let alg = h["alg"].as_str().unwrap().replace('-', "");
                        format!("\"{alg}\":{}", h["content"])
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(purl.to_string(), sums);
    }
    out
}

/// Strict schema validation + the test kit's Rust checks (the base's files are `file`
/// components without a pkg:cargo purl, the base itself an `operating-system`).
#[track_caller]
fn validate_sbom(path: &Path, cargo_tree: Option<&Path>) {
    let mut args = vec![
        "--spec-version",
        "1.6",
        "--exempt-type",
        "operating-system",
        "--exempt-type",
        "file",
    ];
    if let Some(t) = cargo_tree {
        args.extend(["--expect-cargo-tree", t.to_str().unwrap()]);
    }
    args.push(path.to_str().unwrap());
    kit("validate-sbom.py", &args);
}

/// `cargo tree -e normal,no-proc-macro --target T -f '{p}'` for the fixture, to a file.
fn cargo_tree(fx: &Fixture, triple: &str, features: &[&str], out: &Path) -> BTreeSet<String> {
    let mut cmd = Command::new("cargo");
    cmd.args([
        "tree",
        "-e",
        "normal,no-proc-macro",
        "--target",
        triple,
        "-f",
        "{p}",
        "--prefix",
        "none",
        "--no-dedupe",
        "--offline",
    ])
    .args(features)
    .current_dir(&fx.root)
    .env_remove("CARGO_TARGET_DIR");
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out, &o.stdout).unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Names of the `required` components plus the root.
/// The executable `/app/<bin>` from the image's last layer for `platform`.
fn binary_in_image(fx: &Fixture, image: &str, platform: &str) -> Vec<u8> {
    use std::io::Read;
    let summary = fx.image_json(image);
    let wanted = platform.replace('-', "/");
    let entry = summary["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == wanted.as_str())
        .unwrap_or_else(|| panic!("no {wanted} in {summary}"));
    let manifest = support::json_blob(&fx.layout(), entry["digest"].as_str().unwrap());
    let layer = manifest["layers"].as_array().unwrap().last().unwrap();
    let bytes = support::blob(&fx.layout(), layer["digest"].as_str().unwrap());
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches("./") == format!("app/{image}") {
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("no /app/{image} in the last layer of {wanted}");
}

/// The package names `rust-audit-info` reads out of `binary`.
fn audit_info(fx: &Fixture, binary: &[u8]) -> BTreeSet<String> {
    support::require("rust-audit-info");
    let path = fx.tmp.path().join("audited-binary");
    std::fs::write(&path, binary).unwrap();
    let out = std::process::Command::new("rust-audit-info")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn required(sbom: &Value) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["scope"] == "required")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    out.insert(
        sbom["metadata"]["component"]["name"]
            .as_str()
            .unwrap()
            .into(),
    );
    out
}

fn component<'a>(sbom: &'a Value, name: &str) -> &'a Value {
    sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

/// `cargo cyclonedx` for the same crate and target: (required-or-unscoped, excluded).
fn cargo_cyclonedx(
    fx: &Fixture,
    triple: &str,
    features: &[&str],
) -> (BTreeSet<String>, BTreeSet<String>) {
    require("cargo-cyclonedx");
    let name = format!("cdx-{triple}");
    let o = Command::new("cargo")
        .args([
            "cyclonedx",
            "-f",
            "json",
            "--spec-version",
            "1.5",
            "--target",
            triple,
            "--override-filename",
            &name,
            "-q",
        ])
        .args(features)
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cargo cyclonedx: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bom = read_json(&fx.root.join(format!("{name}.json")));
    let (mut req, mut exc) = (BTreeSet::new(), BTreeSet::new());
    for c in bom["components"].as_array().unwrap() {
        let n = c["name"].as_str().unwrap().to_string();
        if c["scope"] == "excluded" {
            exc.insert(n);
        } else {
            req.insert(n);
        }
    }
    req.insert(
        bom["metadata"]["component"]["name"]
            .as_str()
            .unwrap()
            .into(),
    );
    (req, exc)
}

/// What `cargo cyclonedx` 0.5.9 lists as required that is not linked into the binary:
/// the proc-macro serde_derive and its host-only dependencies, and `log`, which only the
/// dev-dependency's `memchr/logging` feature turns on (it unifies dev features, as
/// `cargo metadata` does; the build does not). It lists the build-dependency autocfg as
/// `excluded`; we leave build-time crates out.
const CYCLONEDX_EXTRAS: [&str; 6] = [
    "log",
    "proc-macro2",
    "quote",
    "serde_derive",
    "syn",
    "unicode-ident",
];

#[test]
fn sbom_deps_required_components_equal_cargo_tree_on_both_platforms() {
    let fx = sbom_deps();
    for features in [&[][..], &["--features", "fast-hash"][..]] {
        let mut args = vec!["--platform", "all", "-q"];
        args.extend_from_slice(features);
        fx.run(&args).ok();
        for (platform, triple) in PLATFORMS {
            let path = sbom_path(&fx, "sbom-deps", platform);
            let tree_file = fx.tmp.path().join(format!("tree-{platform}.txt"));
            let tree = cargo_tree(&fx, triple, features, &tree_file);
            validate_sbom(&path, Some(&tree_file));
            let sbom = read_json(&path);
            let ours = required(&sbom);
            assert_eq!(ours, tree, "{platform} {features:?}");

            // What is (not) there, by kind of dependency.
            for absent in ["fastrand", "autocfg", "serde_derive", "syn", "log"] {
                assert!(!ours.contains(absent), "{absent} in {platform}");
            }
            assert_eq!(ours.contains("hex"), platform == "linux-arm64");
            assert_eq!(ours.contains("fnv"), !features.is_empty());
            assert!(ours.contains("gitdep") && ours.contains("serde_core"));
            for c in sbom["components"].as_array().unwrap() {
                if c["type"] == "library" {
                    assert_eq!(c["scope"], "required", "{c}");
                }
            }
            let gitdep = component(&sbom, "gitdep");
            assert!(
                gitdep["purl"]
                    .as_str()
                    .unwrap()
                    .starts_with("pkg:cargo/gitdep@0.2.0?vcs_url=git%2Bfile://"),
                "{gitdep}"
            );
            assert!(gitdep["purl"].as_str().unwrap().ends_with(GITDEP_REV));
            let itoa = component(&sbom, "itoa");
            assert_eq!(itoa["hashes"][0]["alg"], "SHA-256");
            // The crate's checksum as Cargo.lock records it, not just any 64 characters.
            assert_eq!(
                itoa["hashes"][0]["content"].as_str().unwrap(),
                lock_checksum(&fx.root, "itoa", itoa["version"].as_str().unwrap()),
                "{itoa}"
            );
            let root = &sbom["metadata"]["component"];
            assert_eq!(root["bom-ref"], "path+.#sbom-deps@0.3.1");
            assert_eq!(root["licenses"][0]["expression"], "Apache-2.0");
            // The hash of the binary in the image, not a crate checksum.
            let in_image = binary_in_image(&fx, "sbom-deps", platform);
            let sha = sha256_hex(&in_image);
            assert_eq!(root["hashes"][0]["content"], sha.as_str());
            assert_eq!(root["hashes"][1]["alg"], "SHA-512");
            assert_eq!(root["hashes"][1]["content"], sha512_hex(&in_image).as_str());
            // That binary carries the same list, readable by cargo-auditable's reader.
            assert_eq!(audit_info(&fx, &in_image), ours, "{platform} {features:?}");
            // The graph: root → gitdep → itoa.
            let deps = sbom["dependencies"].as_array().unwrap();
            let gitdep_ref = gitdep["bom-ref"].as_str().unwrap();
            let entry = deps.iter().find(|d| d["ref"] == gitdep_ref).unwrap();
            assert_eq!(entry["dependsOn"][0], "pkg:cargo/itoa@1.0.19");

            let (theirs, excluded) = cargo_cyclonedx(&fx, triple, features);
            let extra: BTreeSet<&str> = theirs.difference(&ours).map(String::as_str).collect();
            let missing: BTreeSet<&String> = ours.difference(&theirs).collect();
            eprintln!(
                "{platform} {features:?}: ours {} = cargo tree {}; cargo-cyclonedx {} required + {} excluded; extra there: {extra:?}",
                ours.len(),
                tree.len(),
                theirs.len(),
                excluded.len()
            );
            assert!(missing.is_empty(), "cargo-cyclonedx lacks {missing:?}");
            assert!(
                extra.iter().all(|e| CYCLONEDX_EXTRAS.contains(e)),
                "unexplained difference from cargo-cyclonedx: {extra:?}"
            );
        }
    }
    // The artifacts are in the layout, with their subjects, and pass the strict checks.
    validate_layout(&fx.layout());
}

/// The `checksum` Cargo.lock records for `name` `version`.
#[track_caller]
fn lock_checksum(root: &Path, name: &str, version: &str) -> String {
    let lock: toml::Table = std::fs::read_to_string(root.join("Cargo.lock"))
        .unwrap()
        .parse()
        .unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some(name) && p["version"].as_str() == Some(version))
        .and_then(|p| p.get("checksum"))
        .and_then(|c| c.as_str())
        .unwrap_or_else(|| panic!("no checksum for {name} {version} in Cargo.lock"))
        .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha512_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(bytes))
}

/// The SBOM with what changes with the toolchain (the binary's hashes) or with the tool's
/// release (the base's and the tool's versions) replaced; the crate's own version stays.
fn redact(sbom: &Value, binary_sha: &str, binary_sha512: &str) -> String {
    fn walk(v: &mut Value, tool: &str) {
        match v {
            Value::Object(map) => {
                let base_like = matches!(
                    map.get("type").and_then(Value::as_str),
                    Some("operating-system" | "file")
                ) || map.get("name").and_then(Value::as_str)
                    == Some("cargo-containerize");
                if base_like && map.get("version").and_then(Value::as_str) == Some(tool) {
                    map.insert("version".into(), "[TOOL-VERSION]".into());
                }
                for child in map.values_mut() {
                    walk(child, tool);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, tool)),
            Value::String(s) if s.starts_with("base:") => {
                *s = s.replace(&format!("@{tool}"), "@[TOOL-VERSION]");
            }
            _ => {}
        }
    }
    let mut v = sbom.clone();
    walk(&mut v, env!("CARGO_PKG_VERSION"));
    serde_json::to_string_pretty(&v)
        .unwrap()
        .replace(binary_sha, "[BINARY-SHA256]")
        .replace(binary_sha512, "[BINARY-SHA512]")
}

#[test]
fn hello_http_sbom_matches_the_snapshot_and_is_identical_from_another_directory() {
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let a = Fixture::new("hello-http");
    let b = Fixture::new("hello-http");
    a.run_with(&["-q"], &epoch).ok();
    b.run_with(&["-q"], &epoch).ok();
    let path = sbom_path(&a, "hello-http", "linux-amd64");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(sbom_path(&b, "hello-http", "linux-amd64")).unwrap(),
        "same SBOM bytes from another checkout directory"
    );
    validate_sbom(&path, None);
    let sbom: Value = serde_json::from_slice(&bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        !text.contains(a.tmp.path().to_str().unwrap()),
        "no checkout path"
    );
    assert!(sbom.get("serialNumber").is_none());
    assert_eq!(sbom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let hash = |i: usize| {
        sbom["metadata"]["component"]["hashes"][i]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    insta::assert_snapshot!("hello_http_sbom", redact(&sbom, &hash(0), &hash(1)));

    // The layout holds it as an artifact whose subject is the platform manifest.
    let index = read_json(&a.layout().join("index.json"));
    let summary = a.image_json("hello-http");
    let subject = summary["platforms"][0]["digest"].as_str().unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.cyclonedx+json")
        .expect("an SBOM entry in index.json");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        format!("hello-http:{}.sbom", subject.replace(':', "-")).as_str()
    );
    let manifest = support::json_blob(&a.layout(), entry["digest"].as_str().unwrap());
    assert_eq!(manifest["subject"]["digest"], subject);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(text.as_bytes())).as_str()
    );
    validate_layout(&a.layout());

    // --sbom none: the stale file goes, and the layout drops the SBOM artifact (the
    // provenance stays).
    a.run_with(&["-q", "--sbom", "none"], &epoch).ok();
    assert!(!path.exists());
    let index = read_json(&a.layout().join("index.json"));
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["artifactType"] != "application/vnd.cyclonedx+json"),
        "{index}"
    );
    validate_layout(&a.layout());
}

/// `--sbom cyclonedx,spdx`: both documents for every platform, valid per their own
/// validators, listing the same crates with the same checksums; both are artifacts in the
/// layout; `--sbom spdx` alone drops the CycloneDX files; `none` with a format is refused.
#[test]
fn spdx_and_cyclonedx_list_the_same_content_and_both_validate() {
    let fx = sbom_deps();
    fx.run(&["--platform", "all", "-q", "--sbom", "cyclonedx,spdx"])
        .ok();
    for (platform, _) in PLATFORMS {
        let cdx_file = sbom_path(&fx, "sbom-deps", platform);
        let spdx_file = spdx_path(&fx, "sbom-deps", platform);
        validate_sbom(&cdx_file, None);
        validate_spdx(&spdx_file);
        let (cdx, spdx) = (read_json(&cdx_file), read_json(&spdx_file));
        assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
        assert_eq!(
            spdx["creationInfo"]["created"],
            cdx["metadata"]["timestamp"]
        );
        // Every crate (and the root) with its purl and checksums, in both.
        let crates = |m: std::collections::BTreeMap<String, Vec<String>>| {
            m.into_iter()
                .filter(|(p, _)| p.starts_with("pkg:cargo/") && !p.contains("webpki-root-certs"))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (ours_cdx, ours_spdx) = (crates(cdx_purls(&cdx)), crates(spdx_purls(&spdx)));
        assert_eq!(ours_cdx, ours_spdx, "{platform}");
        assert_eq!(ours_cdx.len(), required(&cdx).len(), "{platform}");
        // The binary: the hashes of the executable in the image.
        let bin = binary_in_image(&fx, "sbom-deps", platform);
        let root = &ours_spdx["pkg:cargo/sbom-deps@0.3.1"];
        assert_eq!(
            root,
            &vec![
                format!("\"SHA256\":\"{}\"", sha256_hex(&bin)),
                format!("\"SHA512\":\"{}\"", sha512_hex(&bin)),
            ]
        );
        // Each crate's checksum is Cargo.lock's.
        let itoa = spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "itoa")
            .unwrap();
        assert_eq!(
            itoa["checksums"][0]["checksumValue"],
            lock_checksum(&fx.root, "itoa", itoa["versionInfo"].as_str().unwrap()).as_str()
        );
        assert_eq!(itoa["licenseDeclared"], "MIT OR Apache-2.0");
        // The same graph: one DEPENDS_ON per CycloneDX dependsOn entry.
        let edges: usize = cdx["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["dependsOn"].as_array().map_or(0, Vec::len))
            .sum();
        let depends_on = spdx["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relationshipType"] == "DEPENDS_ON")
            .count();
        assert_eq!(depends_on, edges, "{platform}");
        let text = std::fs::read_to_string(&spdx_file).unwrap();
        assert!(
            !text.contains(fx.root.to_str().unwrap()),
            "no checkout path"
        );
    }
    let names = support::artifact_ref_names(&fx);
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".sbom")).count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".spdx")).count(),
        2,
        "{names:?}"
    );
    validate_layout(&fx.layout());

    fx.run(&["--platform", "all", "-q", "--sbom", "spdx"]).ok();
    for (platform, _) in PLATFORMS {
        assert!(!sbom_path(&fx, "sbom-deps", platform).exists());
        assert!(spdx_path(&fx, "sbom-deps", platform).exists());
    }
    let names = support::artifact_ref_names(&fx);
    assert!(names.iter().all(|n| !n.ends_with(".sbom")), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".spdx")).count(),
        2,
        "{names:?}"
    );

    let refused = fx.run(&["--sbom", "none,spdx"]).fails_with(2);
    assert!(
        refused.stderr.contains("`none` cannot be combined"),
        "{}",
        refused.stderr
    );
}

#[test]
fn sbom_subcommand_writes_the_same_sbom_and_no_image() {
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let full = Fixture::new("hello-http");
    full.run_with(&["-q"], &epoch).ok();
    let only = Fixture::new("hello-http");
    let run = only.run_with(&["sbom", "-q"], &epoch).ok();
    let path = sbom_path(&only, "hello-http", "linux-amd64");
    assert_eq!(run.stdout.trim(), path.to_str().unwrap());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(sbom_path(&full, "hello-http", "linux-amd64")).unwrap(),
        "the same bytes as the SBOM of a full build"
    );
    assert!(!only.layout().exists(), "no OCI layout is written");
    assert!(!only.out().join("hello-http/image.json").exists());
    validate_sbom(&path, None);

    // For CI: the same as JSON events (plan, sbom-written, finished), valid per the schema.
    let json = only
        .run_with(&["sbom", "--message-format", "json"], &epoch)
        .ok();
    let reasons: Vec<String> = support::validate_events(&json.stdout)
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, ["plan", "sbom-written", "finished"]);
}

/// The dependency list is on by default and off with `--auditable=false` or
/// `auditable = false` in the metadata: then the image holds cargo's executable as is.
#[test]
fn auditable_data_is_on_by_default_and_off_by_flag_or_metadata() {
    let fx = Fixture::new("hello-http");
    let cargo_built = || {
        std::fs::read(
            fx.root
                .join("target/x86_64-unknown-linux-musl/release/hello-http"),
        )
        .unwrap()
    };
    fx.run(&["--no-kube", "-q"]).ok();
    let with = binary_in_image(&fx, "hello-http", "linux-amd64");
    assert_ne!(
        with,
        cargo_built(),
        "the image's binary carries the section"
    );
    assert_eq!(
        audit_info(&fx, &with),
        BTreeSet::from(["hello-http".to_string()])
    );
    fx.run(&["--no-kube", "-q", "--auditable=false"]).ok();
    assert_eq!(
        binary_in_image(&fx, "hello-http", "linux-amd64"),
        cargo_built()
    );
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize]",
            "[package.metadata.containerize]\nauditable = false",
        )
    });
    fx.run(&["--no-kube", "-q"]).ok();
    assert_eq!(
        binary_in_image(&fx, "hello-http", "linux-amd64"),
        cargo_built()
    );
    // The flag wins over the metadata.
    fx.run(&["--no-kube", "-q", "--auditable"]).ok();
    assert_eq!(binary_in_image(&fx, "hello-http", "linux-amd64"), with);
}
