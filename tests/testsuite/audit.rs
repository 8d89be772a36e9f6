//! The vulnerability gate (issue 19): `cargo containerize audit` and `--audit` against a
//! fixture advisory database made here (a git repository in advisory-db's layout, real
//! RustSec TOML + Markdown files), on `testdata/sbom-deps`, which links itoa, memchr,
//! serde and gitdep (and hex on arm64 only), uses serde_derive (a proc-macro), autocfg (a
//! build-dependency) and fastrand (a dev-dependency). Only the linked crates count; the
//! CycloneDX vulnerabilities document validates against the 1.6 schema and is attached
//! like the SBOM; `cargo audit` on the same database is compared.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::sbom::sbom_deps;
use crate::support::{self, Fixture, Registry, kit, require};

const EPOCH: [(&str, &str); 1] = [("SOURCE_DATE_EPOCH", "1700000000")];

/// One advisory file, in the database's format.
fn advisory(id: &str, package: &str, extra: &str, patched: &str, title: &str) -> String {
    format!(
        "```toml\n[advisory]\nid = \"{id}\"\npackage = \"{package}\"\ndate = \"2026-01-15\"\nurl = \"https://example.com/{id}\"\ncategories = [\"memory-corruption\"]\nkeywords = [\"fixture\"]\n{extra}\n[versions]\npatched = [{patched}]\n```\n\n# {title}\n\nA fixture advisory for the tests of cargo containerize.\n"
    )
}

const LINKED: &str = "RUSTSEC-2026-9001";
const PROC_MACRO: &str = "RUSTSEC-2026-9002";
const DEV_DEP: &str = "RUSTSEC-2026-9003";
const UNMAINTAINED: &str = "RUSTSEC-2026-9004";
const BUILD_DEP: &str = "RUSTSEC-2026-9005";
const ARM_ONLY: &str = "RUSTSEC-2026-9006";

fn commit(dir: &Path, message: &str) {
    support::git(dir, &["add", "-A"]);
    support::git(
        dir,
        &["-c", "commit.gpgsign=false", "commit", "-q", "-m", message],
    );
}

fn write_advisory(db: &Path, package: &str, id: &str, text: &str) {
    let dir = db.join("crates").join(package);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{id}.md")), text).unwrap();
}

/// The fixture database, a git repository at `<tmp>/advisory-db-src`: a high-severity
/// vulnerability in itoa (linked), a critical one in serde_derive (proc-macro), one
/// without a score in fastrand (dev-dependency) and autocfg (build-dependency), and an
/// unmaintained notice for memchr (linked).
fn advisory_db(fx: &Fixture) -> PathBuf {
    let db = fx.tmp.path().join("advisory-db-src");
    std::fs::create_dir_all(db.join("crates")).unwrap();
    support::git(&db, &["init", "-q", "-b", "main", "."]);
    write_advisory(
        &db,
        "itoa",
        LINKED,
        &advisory(
            LINKED,
            "itoa",
            "aliases = [\"CVE-2026-99001\"]\ncvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H\"\n",
            "\">= 1.0.20\"",
            "Integer formatting writes past its buffer",
        ),
    );
    write_advisory(
        &db,
        "serde_derive",
        PROC_MACRO,
        &advisory(
            PROC_MACRO,
            "serde_derive",
            "cvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"\n",
            "\">= 1.0.230\"",
            "Derived code reads uninitialized memory",
        ),
    );
    write_advisory(
        &db,
        "fastrand",
        DEV_DEP,
        &advisory(DEV_DEP, "fastrand", "", "\">= 2.6.0\"", "Predictable seeds"),
    );
    write_advisory(
        &db,
        "autocfg",
        BUILD_DEP,
        &advisory(
            BUILD_DEP,
            "autocfg",
            "",
            "\">= 1.6.0\"",
            "Probe runs the wrong compiler",
        ),
    );
    write_advisory(
        &db,
        "memchr",
        UNMAINTAINED,
        &advisory(
            UNMAINTAINED,
            "memchr",
            "informational = \"unmaintained\"\n",
            "",
            "memchr is unmaintained",
        ),
    );
    commit(&db, "fixture advisories");
    db
}

fn audit(fx: &Fixture, db: &Path, extra: &[&str]) -> support::Run {
    // The fixture database has no `origin`: it is used as it is, without --offline (which
    // cargo would also obey, and the fixture's git dependency must be fetched once).
    let mut args = vec![
        "audit",
        "--platform",
        "all",
        "--advisory-db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fx.run_with(&args, &EPOCH)
}

fn vex_path(fx: &Fixture, platform: &str) -> PathBuf {
    fx.out()
        .join("sbom-deps")
        .join(format!("vulnerabilities.{platform}.cdx.json"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The vulnerabilities of a document: id → (analysis state, affects ref).
fn vulnerabilities(doc: &Value) -> Vec<(String, String, String)> {
    doc["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["analysis"]["state"].as_str().unwrap().to_string(),
                v["affects"][0]["ref"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn only_the_linked_crates_advisory_fails_the_audit() {
    let fx = sbom_deps();
    let db = advisory_db(&fx);
    let run = audit(&fx, &db, &[]).fails_with(6);
    eprintln!("{}", run.stderr);
    let e = &run.stderr;
    assert!(
        e.contains(&format!(
            "error: {LINKED}: itoa 1.0.19 is vulnerable: Integer formatting writes past its buffer"
        )),
        "{e}"
    );
    assert!(
        e.contains(
            "note: linked into sbom-deps (linux/amd64, linux/arm64): sbom-deps → itoa 1.0.19"
        ),
        "{e}"
    );
    assert!(
        e.contains("note: severity high (CVSS 7.5, CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H)"),
        "{e}"
    );
    assert!(e.contains("help: upgrade to >=1.0.20"), "{e}");
    // The proc-macro, the dev- and the build-dependency are reported, not counted.
    assert!(
        e.contains(&format!(
            "note: {PROC_MACRO}: serde_derive 1.0.229 is vulnerable"
        )),
        "{e}"
    );
    assert!(
        e.contains("a proc-macro: compiled for the build host, never linked"),
        "{e}"
    );
    for id in [DEV_DEP, BUILD_DEP] {
        assert!(e.contains(&format!("note: {id}: ")), "{id}: {e}");
    }
    assert!(
        e.contains(&format!(
            "warning: {UNMAINTAINED}: memchr 2.8.3 is unmaintained"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: the images link 1 vulnerable crate: {LINKED} (itoa 1.0.19)"
        )),
        "{e}"
    );
    assert!(
        e.contains("Audited 1 vulnerability, 1 warning, 3 not in the image"),
        "{e}"
    );
    // The documents are written even on failure; stdout lists them on success.
    assert!(vex_path(&fx, "linux-amd64").is_file() && vex_path(&fx, "linux-arm64").is_file());
    assert_eq!(run.stdout, "");
    // --severity: high still fails on CVSS 7.5, critical lets it pass as a warning.
    audit(&fx, &db, &["--severity", "high"]).fails_with(6);
    let run = audit(&fx, &db, &["--severity", "critical"]).ok();
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        [
            vex_path(&fx, "linux-amd64").to_str().unwrap(),
            vex_path(&fx, "linux-arm64").to_str().unwrap()
        ]
    );
    assert!(
        run.stderr
            .contains("warning: RUSTSEC-2026-9001: itoa 1.0.19 is vulnerable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: below --severity critical: does not fail the run"),
        "{}",
        run.stderr
    );
    // --ignore, by id or by alias; --deny warnings then fails on the unmaintained crate.
    audit(&fx, &db, &["--ignore", LINKED]).ok();
    audit(&fx, &db, &["--ignore", "CVE-2026-99001"]).ok();
    let run = audit(&fx, &db, &["--ignore", LINKED, "--deny", "warnings"]).fails_with(6);
    assert!(
        run.stderr.contains(&format!(
            "error: {UNMAINTAINED}: memchr 2.8.3 is unmaintained"
        )),
        "{}",
        run.stderr
    );
    audit(&fx, &db, &["--ignore", LINKED, "--deny", "unsound"]).ok();
}

#[test]
fn the_vulnerabilities_document_is_cyclonedx_1_6_and_names_the_sbom_components() {
    let fx = sbom_deps();
    let db = advisory_db(&fx);
    fx.run_with(&["sbom", "--platform", "all"], &EPOCH).ok();
    audit(&fx, &db, &[]).fails_with(6);
    for platform in ["linux-amd64", "linux-arm64"] {
        let path = vex_path(&fx, platform);
        kit(
            "validate-sbom.py",
            &["--spec-version", "1.6", path.to_str().unwrap()],
        );
        let doc = read_json(&path);
        let sbom = read_json(
            &fx.out()
                .join("sbom-deps")
                .join(format!("sbom.{platform}.cdx.json")),
        );
        let sbom_refs: BTreeSet<String> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["bom-ref"].as_str().map(String::from))
            .collect();
        assert_eq!(
            doc["metadata"]["component"]["bom-ref"],
            sbom["metadata"]["component"]["bom-ref"]
        );
        let vulns = vulnerabilities(&doc);
        eprintln!("{platform}: {vulns:?}");
        let (_, state, reference) = vulns.iter().find(|v| v.0 == LINKED).unwrap();
        assert_eq!(state, "in_triage");
        assert!(sbom_refs.contains(reference), "{reference} not in the SBOM");
        for id in [PROC_MACRO, DEV_DEP, BUILD_DEP] {
            let (_, state, reference) = vulns.iter().find(|v| v.0 == *id).unwrap();
            assert_eq!(state, "not_affected", "{id}");
            assert!(
                !sbom_refs.contains(reference),
                "{id}: {reference} is in the SBOM"
            );
        }
        // Informational advisories are warnings, not vulnerabilities.
        assert!(vulns.iter().all(|v| v.0 != UNMAINTAINED));
        let proc_macro = doc["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == PROC_MACRO)
            .unwrap();
        assert_eq!(proc_macro["analysis"]["justification"], "code_not_present");
        assert_eq!(proc_macro["ratings"][0]["severity"], "critical");
        assert_eq!(proc_macro["ratings"][0]["method"], "CVSSv31");
        let itoa = doc["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == LINKED)
            .unwrap();
        assert_eq!(itoa["references"][0]["id"], "CVE-2026-99001");
        assert_eq!(itoa["affects"][0]["versions"][0]["status"], "affected");
    }
    // The same database and checkout give the same bytes.
    let before = std::fs::read(vex_path(&fx, "linux-amd64")).unwrap();
    audit(&fx, &db, &[]).fails_with(6);
    assert_eq!(before, std::fs::read(vex_path(&fx, "linux-amd64")).unwrap());
}

#[test]
fn audit_flags_without_audit_are_refused_unless_they_come_from_the_environment() {
    let fx = Fixture::new("hello-http");
    for args in [
        &["--severity", "high"][..],
        &["--ignore", LINKED],
        &["--deny", "warnings"],
        &["--advisory-db", "db"],
        &["--advisory-db-url", "https://example.invalid/db.git"],
    ] {
        let mut all = vec!["--dry-run"];
        all.extend(args);
        let run = fx.run(&all).fails_with(2);
        assert!(
            run.stderr.contains(&format!(
                "error: {} sets how the vulnerability gate judges, so it needs --audit",
                args[0]
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("help: add --audit"), "{}", run.stderr);
    }
    // Set for every job of a pipeline, the variables wait for a run that audits.
    fx.run_with(
        &["--dry-run"],
        &[
            ("CARGO_CONTAINERIZE_AUDIT_SEVERITY", "high"),
            ("CARGO_CONTAINERIZE_ADVISORY_DB", "db"),
        ],
    )
    .ok();
}

#[test]
fn the_metadata_ignore_list_needs_a_reason() {
    let fx = sbom_deps();
    let db = advisory_db(&fx);
    fx.edit("Cargo.toml", |s| {
        format!(
            "{s}\n[workspace.metadata.containerize.audit]\nignore = [{{ id = \"{LINKED}\", reason = \"no untrusted integers reach itoa here\" }}]\n"
        )
    });
    let run = audit(&fx, &db, &[]).ok();
    assert!(
        run.stderr.contains("note: ignored by [workspace.metadata.containerize] of Cargo.toml: no untrusted integers reach itoa here"),
        "{}",
        run.stderr
    );
    let doc = read_json(&vex_path(&fx, "linux-amd64"));
    let (_, state, _) = vulnerabilities(&doc)
        .into_iter()
        .find(|v| v.0 == LINKED)
        .unwrap();
    assert_eq!(state, "not_affected");

    fx.edit("Cargo.toml", |s| {
        s.replace(
            &format!("{{ id = \"{LINKED}\", reason = \"no untrusted integers reach itoa here\" }}"),
            &format!("\"{LINKED}\""),
        )
    });
    let run = audit(&fx, &db, &[]).fails_with(2);
    assert!(
        run.stderr.contains(&format!(
            "has no reason: write {{ id = \"{LINKED}\", reason = \"why it does not apply\" }}"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--> Cargo.toml:"), "{}", run.stderr);
}

#[test]
fn a_missing_database_offline_is_a_clear_error_and_online_it_is_cloned_then_updated() {
    let fx = sbom_deps();
    let src = advisory_db(&fx);
    let db = fx.tmp.path().join("home").join("advisory-db");
    let env = [
        ("SOURCE_DATE_EPOCH", "1700000000"),
        ("CARGO_CONTAINERIZE_ADVISORY_DB", db.to_str().unwrap()),
    ];
    // --offline is cargo's too: its git dependency must be there first.
    support::output_within(
        Command::new("cargo").arg("fetch").current_dir(&fx.root),
        300,
    );
    let run = fx
        .run_with(&["audit", "--platform", "all", "--offline"], &env)
        .fails_with(2);
    assert!(
        run.stderr.contains(&format!(
            "error: no advisory database at `{}`, and --offline forbids cloning it",
            db.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("git clone https://github.com/RustSec/advisory-db.git"),
        "{}",
        run.stderr
    );
    assert!(!db.exists());

    // A URL that does not answer: an error, and nothing half made beside the database.
    let run = fx
        .run_with(
            &[
                "audit",
                "--advisory-db-url",
                &format!("file://{}/nowhere", fx.tmp.path().display()),
            ],
            &env,
        )
        .fails_with(2);
    assert!(
        run.stderr.contains("failed to clone the advisory database"),
        "{}",
        run.stderr
    );
    let leftovers: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(leftovers, Vec::<std::ffi::OsString>::new());

    let url = format!("file://{}", src.display());
    let run = fx
        .run_with(
            &["audit", "--platform", "all", "--advisory-db-url", &url],
            &env,
        )
        .fails_with(6);
    assert!(
        run.stderr
            .contains(&format!("Fetching advisory database from {url}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("cloned)"), "{}", run.stderr);
    assert!(db.join("crates/itoa").is_dir());

    // A new advisory upstream, for hex, which only the arm64 binary links: the next run
    // updates the clone and finds it there, and only there.
    write_advisory(
        &src,
        "hex",
        ARM_ONLY,
        &advisory(
            ARM_ONLY,
            "hex",
            "cvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H\"\n",
            "\">= 0.4.4\"",
            "Decoding panics on odd input",
        ),
    );
    commit(&src, "hex advisory");
    let run = fx
        .run_with(&["audit", "--platform", "all", "--ignore", LINKED], &env)
        .fails_with(6);
    assert!(run.stderr.contains("updated)"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("note: linked into sbom-deps (linux/arm64): sbom-deps → hex 0.4.3"),
        "{}",
        run.stderr
    );
    // Offline, the clone is used as it is.
    let run = fx
        .run_with(
            &[
                "audit",
                "--platform",
                "all",
                "--offline",
                "--ignore",
                &format!("{LINKED},{ARM_ONLY}"),
            ],
            &env,
        )
        .ok();
    assert!(run.stderr.contains("as it is)"), "{}", run.stderr);
}

/// `--audit` on a push: a vulnerable image is not written or pushed; once the advisory is
/// ignored, the vulnerabilities documents go out as referrers next to the SBOMs.
fn gate_then_attach(reg: &Registry, way: &str) {
    let fx = sbom_deps();
    let db = advisory_db(&fx);
    let repo = format!("{}/audit", reg.host());
    let push = [
        "--platform",
        "all",
        "--push",
        "--repo",
        &repo,
        "--audit",
        "--advisory-db",
        db.to_str().unwrap(),
    ];
    let run = fx.run_with(&push, &EPOCH).fails_with(6);
    assert!(
        run.stderr.contains("the images link 1 vulnerable crate"),
        "{}",
        run.stderr
    );
    assert_eq!(reg.tags("audit/sbom-deps"), Vec::<String>::new());
    assert!(!fx.out().join("sbom-deps/image.json").exists());

    let run = fx
        .run_with(&[&push[..], &["--ignore", LINKED]].concat(), &EPOCH)
        .ok();
    assert!(
        run.stderr.contains("Attached vulnerabilities (CycloneDX)"),
        "{}",
        run.stderr
    );
    assert!(!reg.tags("audit/sbom-deps").is_empty());
    let summary = fx.image_json("sbom-deps");
    for p in summary["platforms"].as_array().unwrap() {
        let digest = p["digest"].as_str().unwrap();
        let platform = p["platform"].as_str().unwrap().replace('/', "-");
        let at = format!("{repo}/sbom-deps@{digest}");
        let listed = kit(
            "referrers.py",
            &[
                way,
                "--artifact-type",
                "application/vnd.cyclonedx+json",
                &at,
            ],
        );
        eprintln!("referrers of {platform} ({way}):\n{listed}");
        let index: Value = serde_json::from_str(&listed).unwrap();
        let vex = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["dev.cargo-containerize.content"] == "vulnerabilities")
            .unwrap_or_else(|| panic!("no vulnerabilities referrer: {listed}"));
        let url = format!(
            "http://{}/v2/audit/sbom-deps/manifests/{}",
            reg.host(),
            vex["digest"].as_str().unwrap()
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
        assert_eq!(manifest["subject"]["digest"], digest);
        let sum = support::output_ok(Command::new("sha256sum").arg(vex_path(&fx, &platform)));
        let hex = String::from_utf8_lossy(&sum[..64]).into_owned();
        assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{hex}"));
    }
}

#[test]
fn audit_gates_a_push_and_attaches_the_document_through_the_referrers_api() {
    require("ferro-oci-server");
    let reg = Registry::start("none", &["--referrers"]);
    gate_then_attach(&reg, "--require-api");
}

#[test]
fn audit_gates_a_push_and_attaches_the_document_through_the_tag_fallback() {
    let reg = Registry::start("none", &[]);
    gate_then_attach(&reg, "--require-fallback");
}

/// `cargo audit` on the same database reads the whole lockfile: it reports every
/// vulnerable package, linked or not. The difference is exactly what `audit` reports as
/// not in the image.
#[test]
fn cargo_audit_on_the_same_database_reports_a_superset() {
    require("cargo-audit");
    let fx = sbom_deps();
    let db = advisory_db(&fx);
    let out = Command::new("cargo")
        .args(["audit", "--no-fetch", "--json", "--db"])
        .arg(&db)
        .current_dir(&fx.root)
        .output()
        .unwrap();
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cargo audit: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let their_vulns: BTreeSet<String> = theirs["vulnerabilities"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["advisory"]["id"].as_str().unwrap().to_string())
        .collect();
    let their_warnings: BTreeSet<String> = theirs["warnings"]
        .as_object()
        .into_iter()
        .flat_map(|w| w.values())
        .flat_map(|list| list.as_array().cloned().unwrap_or_default())
        .filter_map(|w| w["advisory"]["id"].as_str().map(String::from))
        .collect();
    let run = audit(&fx, &db, &["--message-format", "json"]).fails_with(6);
    let events = support::validate_events(&run.stdout);
    let findings: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "audit-finding")
        .collect();
    let ours = |status: &str| -> BTreeSet<String> {
        findings
            .iter()
            .filter(|f| f["kind"] == "vulnerability" && f["status"] == status)
            .map(|f| f["advisory"].as_str().unwrap().to_string())
            .collect()
    };
    let (linked, not_in_image) = (ours("vulnerable"), ours("not-in-image"));
    eprintln!(
        "cargo audit: vulnerabilities {their_vulns:?}, warnings {their_warnings:?}\ncargo containerize audit: linked {linked:?}, not in the image {not_in_image:?}"
    );
    assert_eq!(linked, BTreeSet::from([LINKED.to_string()]));
    let all: BTreeSet<String> = linked.union(&not_in_image).cloned().collect();
    assert_eq!(their_vulns, all);
    assert_eq!(their_warnings, BTreeSet::from([UNMAINTAINED.to_string()]));
}
