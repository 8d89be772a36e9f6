//! One CI runner per platform, joined in the registry: `--push --per-platform` from two
//! clones of one commit (each its own target directory), then `merge` from a third. The
//! merged index is the one a single `--platform all` run pushes, byte for byte, on
//! distribution and on ferro-oci-server (which keeps the runners' SBOMs as referrers);
//! podman runs both platforms from the merged tag. A missing platform or one from another
//! commit fails with no tag moved.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{
    self, Container, Fixture, Registry, Run, clone, commit_all, containerize_cmd, git,
};

fn run(dir: &Path, args: &[&str]) -> Run {
    Run::of(containerize_cmd(dir).args(args).output().unwrap())
}

fn digest(reference: &str) -> &str {
    reference.trim().rsplit_once('@').unwrap().1
}

/// The raw manifest or index at `reference` (no `docker://`), via skopeo.
fn raw(reference: &str) -> Vec<u8> {
    support::require("skopeo");
    support::output_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]))
}

/// The short commit of the checkout at `dir`.
fn short_commit(dir: &Path) -> String {
    let out = support::output_ok(
        Command::new("git")
            .args(["rev-parse", "--short=7", "HEAD"])
            .current_dir(dir),
    );
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn per_platform_runners_merge_into_the_index_a_single_run_pushes() {
    support::require("ferro-oci-server");
    let dist = Registry::start("none", &[]);
    let ferro = Registry::start("none", &["--referrers"]);
    let origin = Fixture::new("hello-http");
    commit_all(&origin.root);
    let runners = [
        ("linux/amd64", "amd64", clone(&origin, "runner-amd64")),
        ("linux/arm64", "arm64", clone(&origin, "runner-arm64")),
    ];
    let merger = clone(&origin, "merge job");
    let commit = short_commit(&merger);
    // On ferro-oci-server the runners and the merge also sign (the merge signs the index).
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = support::keypair(keys.path(), "ci");
    let (key, public) = (key.to_str().unwrap(), public.to_str().unwrap());

    for reg in [&dist, &ferro] {
        let repo = format!("{}/team", reg.host());
        let signing: &[&str] = if std::ptr::eq(reg, &ferro) {
            &["--sign-key", key]
        } else {
            &[]
        };
        for (platform, arch, dir) in &runners {
            let mut args = vec![
                "--push",
                "--per-platform",
                "--platform",
                platform,
                "--repo",
                &repo,
            ];
            args.extend(signing);
            let pushed = run(dir, &args).ok();
            // The platform's own manifest, under TAG-ARCH tags only.
            let manifest: Value = serde_json::from_slice(&raw(pushed.stdout.trim())).unwrap();
            assert_eq!(
                manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
                "{platform}"
            );
            assert!(
                pushed.stderr.contains(&format!("latest-{arch}")),
                "{}",
                pushed.stderr
            );
        }
        let mut per_platform = vec![
            "0.1.0-amd64".to_string(),
            "0.1.0-arm64".into(),
            format!("{commit}-amd64"),
            format!("{commit}-arm64"),
            "latest-amd64".into(),
            "latest-arm64".into(),
        ];
        per_platform.sort();
        assert_eq!(
            reg.tags("team/hello-http"),
            per_platform,
            "no plain tag yet"
        );

        let mut merge_args = vec![
            "merge",
            "--platform",
            "all",
            "--repo",
            &repo,
            "--message-format",
            "json",
        ];
        merge_args.extend(signing);
        let merged = run(&merger, &merge_args).ok();
        let events = support::validate_events(&merged.stdout);
        let pushed = events
            .iter()
            .find(|e| e["reason"] == "image-pushed")
            .unwrap_or_else(|| panic!("no image-pushed event: {}", merged.stdout));
        let reference = pushed["reference"].as_str().unwrap().to_string();
        assert_eq!(pushed["uploaded_bytes"], 0, "nothing is uploaded again");
        assert!(
            !merged.stderr.contains("Building") && !merged.stderr.contains("Compiling"),
            "merge builds nothing: {}",
            merged.stderr
        );
        let mut all = per_platform.clone();
        all.extend(["0.1.0".to_string(), commit.clone(), "latest".into()]);
        all.sort();
        assert_eq!(reg.tags("team/hello-http"), all);
        let index: Value = serde_json::from_slice(&raw(&reference)).unwrap();
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let archs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"]);
        reg.validate(&reference);
        // The YAML of the merge job is pinned to the index.
        let yaml =
            std::fs::read_to_string(merger.join("target/containerize/hello-http/kubernetes.yaml"))
                .unwrap();
        assert!(yaml.contains(&reference), "{yaml}");
        let summary: Value = serde_json::from_slice(
            &std::fs::read(merger.join("target/containerize/hello-http/image.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["digest"], digest(&reference));
        eprintln!("merged on {}: {reference}", reg.host());

        // The runners' image.json files (CI artifacts) name each platform by digest:
        // `merge --from` reads the platforms so, and joins the same index.
        let files: Vec<String> = runners
            .iter()
            .map(|(_, _, dir)| {
                let f = dir.join("target/containerize/hello-http/image.json");
                f.to_str().unwrap().to_string()
            })
            .collect();
        let mut from_args = vec!["merge", "--platform", "all", "--repo", &repo, "-v"];
        from_args.extend(signing);
        from_args.push("--from");
        from_args.extend(files.iter().map(String::as_str));
        let from = run(&merger, &from_args).ok();
        assert_eq!(digest(&from.stdout), digest(&reference), "{}", from.stderr);
        for (platform, _, _) in &runners {
            let by_digest = format!("Reading {repo}/hello-http@sha256:");
            assert!(
                from.stderr
                    .lines()
                    .any(|l| l.trim_start().starts_with(&by_digest)
                        && l.ends_with(&format!("({platform})"))),
                "{}",
                from.stderr
            );
        }
        // A file of another repository is refused before anything is read.
        let other = run(
            &merger,
            &[
                "merge",
                "--platform",
                "all",
                "--repo",
                &format!("{}/elsewhere", reg.host()),
                "--from",
                &files[0],
            ],
        )
        .fails_with(2);
        assert!(
            other.stderr.contains("but this merge joins"),
            "{}",
            other.stderr
        );

        if std::ptr::eq(reg, &ferro) {
            // The runners' SBOMs stay attached to the platform manifests, found through
            // the referrers API.
            for m in index["manifests"].as_array().unwrap() {
                let url = format!(
                    "http://{}/v2/team/hello-http/referrers/{}",
                    reg.host(),
                    m["digest"].as_str().unwrap()
                );
                let listing: Value =
                    serde_json::from_slice(&support::output_ok(Command::new("curl").args([
                        "-sf",
                        "--max-time",
                        "30",
                        &url,
                    ])))
                    .unwrap();
                let types: Vec<&str> = listing["manifests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|r| r["artifactType"].as_str())
                    .collect();
                assert!(
                    types.contains(&"application/vnd.cyclonedx+json"),
                    "{listing}"
                );
            }
            // The runners signed their platforms and the merge the index: `verify`
            // checks all three signatures and rebuilds both platforms to the same digests.
            let verified = run(
                &merger,
                &["verify", &reference, "--key", public, "--repo", &repo],
            )
            .ok();
            assert_eq!(verified.stdout.trim(), reference);
            for what in [
                "signature of index",
                "signature of linux/amd64 manifest",
                "signature of linux/arm64 manifest",
            ] {
                assert!(
                    verified.stderr.contains(what),
                    "{what}: {}",
                    verified.stderr
                );
            }
        } else {
            for arch in ["amd64", "arm64"] {
                let tag = format!("{repo}/hello-http:0.1.0");
                let c = Container::start(&tag, arch, "/healthz", &[]);
                let (code, body) = c.get("/");
                assert_eq!(code, 200);
                let uname = if arch == "amd64" { "x86_64" } else { "aarch64" };
                assert!(body.contains(uname), "{body}");
            }
        }
    }

    // The same commit built for both platforms on one machine: the same index, byte for
    // byte, as the merge of the runners' images.
    let single = run(
        &merger,
        &[
            "--push",
            "--platform",
            "all",
            "--repo",
            &format!("{}/single", dist.host()),
        ],
    )
    .ok();
    let merged_ref = format!("{}/team/hello-http:latest", dist.host());
    assert_eq!(raw(single.stdout.trim()), raw(&merged_ref));
    assert_eq!(
        raw(&merged_ref),
        raw(&format!("{}/team/hello-http:latest", ferro.host()))
    );

    // Both platforms pushed on their own from one machine: one reference per platform on
    // stdout, and image.json records each platform's push (no index was pushed).
    let both = run(
        &merger,
        &[
            "--push",
            "--per-platform",
            "--platform",
            "all",
            "--repo",
            &format!("{}/both", dist.host()),
        ],
    )
    .ok();
    let lines: Vec<&str> = both.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", both.stdout);
    let summary: Value = serde_json::from_slice(
        &std::fs::read(merger.join("target/containerize/hello-http/image.json")).unwrap(),
    )
    .unwrap();
    assert!(summary.get("pushed").is_none(), "{summary}");
    for (line, (platform, arch)) in lines
        .iter()
        .zip([("linux/amd64", "amd64"), ("linux/arm64", "arm64")])
    {
        let p = &summary["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["platform"] == platform)
            .unwrap()["pushed"];
        assert_eq!(p["reference"], *line, "{summary}");
        assert!(
            p["tags"]
                .as_array()
                .unwrap()
                .contains(&Value::from(format!("latest-{arch}"))),
            "{summary}"
        );
        let manifest: Value = serde_json::from_slice(&raw(line)).unwrap();
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
    }

    // A platform that was never pushed: named, and no tag moves.
    let repo = format!("{}/team", dist.host());
    let (_, _, amd) = &runners[0];
    let args = |tag: &'static str| {
        vec![
            "--push",
            "--per-platform",
            "--platform",
            "linux/amd64",
            "--repo",
            repo.as_str(),
            "-t",
            tag,
        ]
    };
    run(amd, &args("only-amd64")).ok();
    let missing = run(
        &merger,
        &[
            "merge",
            "--platform",
            "all",
            "--repo",
            &repo,
            "-t",
            "only-amd64",
        ],
    )
    .fails_with(4);
    assert!(
        missing.stderr.contains(&format!(
            "{repo}/hello-http:only-amd64-arm64 does not exist: no linux/arm64 image to merge"
        )),
        "{}",
        missing.stderr
    );
    assert!(!dist.tags("team/hello-http").contains(&"only-amd64".into()));

    // The arm64 runner on a later commit: refused, naming both commits; no tag moves.
    let (_, _, arm) = &runners[1];
    git(arm, &["commit", "-q", "--allow-empty", "-m", "later"]);
    run(amd, &args("mixed")).ok();
    let mut arm_args = args("mixed");
    arm_args[3] = "linux/arm64";
    run(arm, &arm_args).ok();
    let mixed = run(
        &merger,
        &["merge", "--platform", "all", "--repo", &repo, "-t", "mixed"],
    )
    .fails_with(4);
    assert!(
        mixed
            .stderr
            .contains("cannot be merged as linux/arm64: it was built from commit"),
        "{}",
        mixed.stderr
    );
    assert!(
        mixed.stderr.contains("no tag was moved"),
        "{}",
        mixed.stderr
    );
    let tags = dist.tags("team/hello-http");
    assert!(!tags.contains(&"mixed".into()), "{tags:?}");
    assert!(tags.contains(&"mixed-arm64".into()), "{tags:?}");
}

#[test]
fn merge_refuses_flags_that_build_or_write_images() {
    let fx = Fixture::new("hello-http");
    let r = fx
        .run(&["merge", "--repo", "127.0.0.1:1/team", "--tarball", "x.tar"])
        .fails_with(2);
    assert!(
        r.stderr
            .contains("`cargo containerize merge` takes no --tarball"),
        "{}",
        r.stderr
    );
    assert!(!fx.root.join("target").exists(), "nothing was written");
    let r = fx.run(&["--per-platform"]).fails_with(2);
    assert!(r.stderr.contains("--push"), "{}", r.stderr);
    // A 125-character tag is valid, its `-arm64` form is not: refused before building.
    let long = "v".repeat(125);
    let r = fx
        .run(&[
            "--per-platform",
            "--push",
            "--repo",
            "127.0.0.1:9/x",
            "--platform",
            "all",
            "-t",
            &long,
        ])
        .fails_with(2);
    assert!(
        r.stderr.contains(&format!(
            "--per-platform tag `{long}-amd64` of image `hello-http` is not a valid tag"
        )),
        "{}",
        r.stderr
    );
    assert!(!fx.root.join("target").exists(), "nothing was written");

    // `--from` files that cannot be used are refused before any registry is asked.
    let files = tempfile::tempdir().unwrap();
    let not_json = files.path().join("notes.txt");
    std::fs::write(&not_json, "not an image.json").unwrap();
    let other = files.path().join("image.json");
    std::fs::write(
        &other,
        serde_json::json!({
            "name": "other",
            "tags": ["latest"],
            "digest": "sha256:00",
            "media_type": "application/vnd.oci.image.manifest.v1+json",
            "reference": "other:latest@sha256:00",
            "platforms": [{
                "platform": "linux/amd64",
                "digest": "sha256:00",
                "compressed_size": 1,
                "pushed": {
                    "reference": "127.0.0.1:1/team/other@sha256:00",
                    "repository": "127.0.0.1:1/team/other",
                    "tags": ["latest-amd64"],
                    "uploaded_bytes": 0
                }
            }],
            "layout": "../oci"
        })
        .to_string(),
    )
    .unwrap();
    for (file, says) in [
        (files.path().join("missing.json"), "the file cannot be read"),
        (not_json, "the file is not an image.json of this tool"),
        (
            other,
            "the file describes image `other`, which this merge does not select",
        ),
    ] {
        let r = fx
            .run(&[
                "merge",
                "--repo",
                "127.0.0.1:1/team",
                "--from",
                file.to_str().unwrap(),
            ])
            .fails_with(2);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(
            r.stderr.contains("help: give the image.json"),
            "{}",
            r.stderr
        );
    }
}
