//! `--push` against real registries on loopback (CNCF distribution with no auth, Basic and
//! Bearer token auth), through a fault-injecting proxy; results are pulled back with
//! skopeo, validated, and run with podman.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::process::Command;

use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{self, Container, Fixture, Registry};

fn fast_retries<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("CARGO_CONTAINERIZE_RETRY_BASE_MS", "20"),
        ("CARGO_CONTAINERIZE_RETRY_ATTEMPTS", "6"),
    ]
}

#[test]
fn multi_arch_push_pulls_back_valid_and_runs_on_both_architectures() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    let refs_file = fx.tmp.path().join("refs.txt");
    let run = fx
        .run(&[
            "--platform",
            "all",
            "--push",
            "--repo",
            &repo,
            "--image-refs",
            refs_file.to_str().unwrap(),
        ])
        .ok();
    let reference = run.stdout.trim().to_string();
    assert!(
        reference.starts_with(&format!("{repo}/hello-http@sha256:")),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&refs_file).unwrap(),
        format!("{reference}\n")
    );
    let summary = fx.image_json("hello-http");
    assert_eq!(summary["pushed"]["reference"], reference.as_str());
    assert_eq!(
        summary["digest"].as_str().unwrap(),
        reference.rsplit_once('@').unwrap().1,
        "local and pushed digests agree"
    );
    assert_eq!(reg.tags("team/hello-http"), ["0.1.0", "latest"]);
    reg.validate(&reference);
    for arch in ["amd64", "arm64"] {
        let c = Container::start(&reference, arch, "/healthz", &[]);
        let (code, body) = c.get("/");
        assert_eq!(code, 200);
        assert!(
            body.contains(if arch == "amd64" { "x86_64" } else { "aarch64" }),
            "{body}"
        );
    }
}

#[test]
fn second_push_uploads_nothing_and_shared_base_is_mounted() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(reg.host(), Faults::default());
    let fx = Fixture::new("two-bins");
    let repo = format!("{}/team", proxy.addr);
    let run = fx.run(&["--push", "--repo", &repo]).ok();
    assert_eq!(run.refs().len(), 3, "{}", run.stdout);
    // api, worker and worker-admin share the base layer: uploaded once, then mounted.
    assert!(run.stderr.contains("1 mounted"), "{}", run.stderr);
    let first = proxy.stats().blob_bytes;
    assert!(first > 0);
    proxy.reset_stats();
    let again = fx.run(&["--push", "--repo", &repo]).ok();
    assert_eq!(again.stdout, run.stdout);
    assert_eq!(proxy.stats().blob_bytes, 0, "{:?}", proxy.stats().log);
    for image in ["api", "worker", "worker-admin"] {
        assert_eq!(fx.image_json(image)["pushed"]["uploaded_bytes"], 0);
    }
    // Nothing is written at all: the manifests, their tags and the SBOMs are all there.
    let writes = |stats: &support::proxy::Stats| -> Vec<String> {
        let reads = ["HEAD ", "GET "];
        let log = stats.log.iter();
        log.filter(|l| !reads.iter().any(|r| l.starts_with(r)))
            .cloned()
            .collect()
    };
    assert_eq!(writes(&proxy.stats()), Vec::<String>::new());
    // A new tag on an unchanged image: one manifest PUT per image, nothing else.
    proxy.reset_stats();
    fx.run(&["--push", "--repo", &repo, "-t", "extra"]).ok();
    let puts = writes(&proxy.stats());
    assert_eq!(puts.len(), 3, "{puts:?}");
    assert!(
        puts.iter()
            .all(|l| l.starts_with("PUT ") && l.contains("/manifests/extra")),
        "{puts:?}"
    );
    eprintln!("first push: {first} blob bytes; second push: 0");
}

#[test]
fn basic_auth_from_docker_config_and_wrong_password_fails_cleanly() {
    let reg = Registry::start("basic", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    let docker_config = reg.var("REGISTRY_DOCKER_CONFIG").to_string();
    let run = fx
        .run_with(
            &["--push", "--repo", &repo],
            &[("DOCKER_CONFIG", &docker_config)],
        )
        .ok();
    reg.validate(run.stdout.trim());

    let bad = fx.run_with(
        &["--push", "--repo", &repo, "-t", "bad"],
        &[
            (
                "CARGO_CONTAINERIZE_REGISTRY_USERNAME",
                reg.var("REGISTRY_USER"),
            ),
            ("CARGO_CONTAINERIZE_REGISTRY_PASSWORD", "wrong-password"),
        ],
    );
    let bad = bad.fails_with(4);
    assert!(
        bad.stderr.contains("refused the credentials"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("cargo containerize login"),
        "{}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("wrong-password"),
        "the password must never be printed"
    );
    assert!(!reg.tags("team/hello-http").contains(&"bad".to_string()));

    let anonymous = fx
        .run_with(
            &["--push", "--repo", &repo, "-t", "anon"],
            &[("DOCKER_CONFIG", "/nonexistent")],
        )
        .fails_with(4);
    assert!(
        anonymous.stderr.contains("none are configured") || anonymous.stderr.contains("refused"),
        "{}",
        anonymous.stderr
    );
}

#[test]
fn bearer_token_auth_pushes_and_read_only_user_is_denied() {
    let reg = Registry::start("token", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    let run = fx
        .run_with(
            &["--push", "--repo", &repo, "--platform", "all"],
            &reg.cred_env("REGISTRY_"),
        )
        .ok();
    reg.validate(run.stdout.trim());
    let ro = fx
        .run_with(
            &["--push", "--repo", &format!("{}/other", reg.host())],
            &reg.cred_env("REGISTRY_RO_"),
        )
        .fails_with(4);
    assert!(ro.stderr.contains("can pull but not push"), "{}", ro.stderr);
}

#[test]
fn transient_faults_are_retried_and_the_registry_ends_up_exact() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            too_many: 2,
            unavailable: 3,
            drop_blob_uploads: 2,
            ..Default::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    let mut args = vec!["--push", "--repo", repo.as_str(), "--platform", "all"];
    args.push("-j1");
    let run = fx.run_with(&args, &fast_retries()).ok();
    let log = proxy.stats().log;
    assert!(log.iter().any(|l| l.ends_with("-> 429")), "{log:?}");
    assert!(
        log.iter().filter(|l| l.ends_with("-> 0")).count() == 2,
        "{log:?}"
    );
    let reference = run.stdout.trim().replace(&proxy.addr, reg.host());
    reg.validate(&reference);
}

#[test]
fn endless_faults_fail_with_a_clear_error_and_no_tag() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            always_fail_blob_uploads: true,
            ..Default::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    let run = fx
        .run_with(&["--push", "--repo", &repo], &fast_retries())
        .fails_with(4);
    assert!(run.stderr.contains("gave up on"), "{}", run.stderr);
    assert!(
        run.stderr.contains("no tag points at a partial image"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert!(
        reg.tags("team/hello-http").is_empty(),
        "no tag may exist after a failed push"
    );
}

#[test]
fn push_without_repository_explains_the_three_ways() {
    let fx = Fixture::new("hello-http");
    let run = fx.run(&["--push"]).fails_with(2);
    for way in ["--repo", "CARGO_CONTAINERIZE_REPO", "repository ="] {
        assert!(run.stderr.contains(way), "{way}: {}", run.stderr);
    }
}

#[test]
fn tag_from_git_publishes_semver_tags_and_refuses_dirty_trees() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    support::git_tag(&fx.root, "v1.2.3");
    let repo = format!("{}/rel", reg.host());
    fx.run(&["--push", "--repo", &repo, "--tag-from-git"]).ok();
    assert_eq!(reg.tags("rel/hello-http"), ["1", "1.2", "1.2.3", "latest"]);
    fx.edit("src/main.rs", |s| s.replace("tmp ok", "tmp changed"));
    let dirty = fx
        .run(&["--push", "--repo", &repo, "--tag-from-git"])
        .fails_with(2);
    assert!(
        dirty.stderr.contains("uncommitted changes"),
        "{}",
        dirty.stderr
    );
    // Default tags of a dirty tree carry `-dirty` on the commit tag.
    let run = fx.run(&["--push", "--repo", &repo]).ok();
    let tags = reg.tags("rel/hello-http");
    assert!(
        tags.iter().any(|t| t.ends_with("-dirty")),
        "{tags:?} {}",
        run.stderr
    );
}

#[test]
fn login_checks_and_stores_credentials_then_push_uses_them() {
    use std::io::Write;
    use std::process::Stdio;
    let reg = Registry::start("token", &[]);
    let fx = Fixture::new("hello-http");
    let docker_dir = fx.tmp.path().join("docker");
    let login = |password: &str| {
        let mut child = support::containerize_cmd(&fx.root)
            .args([
                "login",
                reg.host(),
                "-u",
                reg.var("REGISTRY_USER"),
                "--password-stdin",
            ])
            .env("DOCKER_CONFIG", &docker_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("not-the-password");
    assert_eq!(
        bad.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !docker_dir.join("config.json").exists(),
        "a failed login stores nothing"
    );
    let good = login(reg.var("REGISTRY_PASSWORD"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let cfg = std::fs::read_to_string(docker_dir.join("config.json")).unwrap();
    assert!(cfg.contains(reg.host()), "{cfg}");
    let run = fx
        .run_with(
            &["--push", "--repo", &format!("{}/team", reg.host())],
            &[("DOCKER_CONFIG", docker_dir.to_str().unwrap())],
        )
        .ok();
    reg.validate(run.stdout.trim());
}

#[test]
fn credential_helpers_and_podman_auth_files_are_used() {
    let reg = Registry::start("basic", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    // A docker-credential helper on PATH, speaking the helper protocol (`get` on stdin).
    let bin = fx.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kit");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n",
            reg.var("REGISTRY_USER"),
            reg.var("REGISTRY_PASSWORD")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_dir = fx.tmp.path().join("docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"kit"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = fx
        .run_with(
            &["--push", "--repo", &repo, "-v"],
            &[
                ("DOCKER_CONFIG", docker_dir.to_str().unwrap()),
                ("PATH", &path),
            ],
        )
        .ok();
    assert!(run.stderr.contains("config.json"), "{}", run.stderr);
    assert!(
        !run.stderr.contains(reg.var("REGISTRY_PASSWORD")),
        "no secret in -v output"
    );

    // podman's auth.json via REGISTRY_AUTH_FILE.
    let run = fx
        .run_with(
            &["--push", "--repo", &repo, "-t", "podman"],
            &[
                ("DOCKER_CONFIG", "/nonexistent"),
                ("REGISTRY_AUTH_FILE", reg.var("REGISTRY_AUTH_JSON")),
            ],
        )
        .ok();
    assert!(run.stdout.starts_with(&repo));
    assert!(reg.tags("team/hello-http").contains(&"podman".to_string()));
}

#[test]
fn base_image_from_a_registry_is_used_by_digest_per_platform() {
    let reg = Registry::start("none", &[]);
    let bases = Fixture::new("two-bins");
    let base_run = bases
        .run(&[
            "-p",
            "api",
            "--platform",
            "all",
            "--push",
            "--repo",
            &format!("{}/bases", reg.host()),
        ])
        .ok();
    let base_ref = base_run.stdout.trim().to_string();
    let base_digest = base_ref.rsplit_once('@').unwrap().1.to_string();

    let fx = Fixture::new("hello-http");
    let base_tag = format!("{}/bases/api:latest", reg.host());
    let run = fx
        .run(&[
            "--platform",
            "all",
            "--base",
            &base_tag,
            "--push",
            "--repo",
            &format!("{}/app", reg.host()),
        ])
        .ok();
    assert!(run.stderr.contains("Pulling base image"), "{}", run.stderr);
    let reference = run.stdout.trim().to_string();
    reg.validate(&reference);

    let layout = fx.layout();
    let index = support::json_blob(
        &layout,
        fx.image_json("hello-http")["digest"].as_str().unwrap(),
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.base.name"],
        base_tag.as_str()
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    let base_index = support::json_blob(&bases.layout(), &base_digest);
    for (ours, theirs) in index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(base_index["manifests"].as_array().unwrap())
    {
        assert_eq!(ours["platform"], theirs["platform"]);
        let m = support::json_blob(&layout, ours["digest"].as_str().unwrap());
        let b = support::json_blob(&bases.layout(), theirs["digest"].as_str().unwrap());
        let ours_layers: Vec<&str> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap())
            .collect();
        let base_layers: Vec<&str> = b["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap())
            .collect();
        assert_eq!(
            ours_layers.len(),
            base_layers.len() + 1,
            "base layers + our binary"
        );
        assert_eq!(
            &ours_layers[..base_layers.len()],
            &base_layers[..],
            "the base's layers come first, unchanged"
        );
    }
    let c = Container::start(&reference, "arm64", "/healthz", &[]);
    assert_eq!(c.get("/healthz").0, 200);

    // A single-platform base cannot serve another platform: a clear error, nothing pushed.
    let single = bases
        .run(&[
            "-p",
            "worker",
            "--bin",
            "worker",
            "--push",
            "--repo",
            &format!("{}/bases", reg.host()),
        ])
        .ok();
    let err = fx
        .run(&[
            "--platform",
            "all",
            "--base",
            single.stdout.trim(),
            "--push",
            "--repo",
            &format!("{}/bad", reg.host()),
        ])
        .fails_with(4);
    assert!(
        err.stderr.contains("the base image is built for amd64"),
        "{}",
        err.stderr
    );
    assert!(reg.tags("bad/hello-http").is_empty());

    // Pinned by digest, the base is resolved once; later runs need no registry at all.
    let pinned_base = format!("{}/bases/api@{base_digest}", reg.host());
    let pinned = Fixture::new("hello-http");
    let args = ["--platform", "all", "--base", pinned_base.as_str()];
    let first = pinned.run(&args).ok();
    assert!(
        first.stderr.contains("Pulling base image"),
        "{}",
        first.stderr
    );
    drop(reg); // any request would now fail
    let again = pinned.run(&args).ok();
    assert!(
        again.stderr.contains("Fresh base image"),
        "{}",
        again.stderr
    );
    assert_eq!(
        again.stdout, first.stdout,
        "the same image, with no request made"
    );
    // The same base as a workspace setting instead of the flag: the same image.
    pinned.edit("Cargo.toml", |s| {
        s.replace(
            "[workspace]",
            &format!("[workspace]\n\n[workspace.metadata.containerize]\nbase = \"{pinned_base}\""),
        )
    });
    let from_metadata = pinned.run(&["--platform", "all"]).ok();
    assert_eq!(from_metadata.stdout, first.stdout);
}

#[test]
fn hostile_registries_are_caught_and_nothing_is_tagged() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    let cases = [
        (
            "wrong digest",
            Faults {
                wrong_blob_digest: true,
                ..Default::default()
            },
            "reported digest sha256:0000",
        ),
        (
            "truncated blob",
            Faults {
                truncate_blob_uploads: true,
                ..Default::default()
            },
            "DIGEST_INVALID",
        ),
        (
            "fake success",
            Faults {
                fake_blob_success: true,
                ..Default::default()
            },
            "MANIFEST_BLOB_UNKNOWN",
        ),
    ];
    for (i, (what, faults, expected)) in cases.into_iter().enumerate() {
        let proxy = FaultProxy::start(reg.host(), faults);
        let repo = format!("{}/hostile{i}", proxy.addr);
        let run = fx
            .run_with(&["--push", "--repo", &repo], &fast_retries())
            .fails_with(4);
        assert!(run.stderr.contains(expected), "{what}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{what}");
        assert!(
            reg.tags(&format!("hostile{i}/hello-http")).is_empty(),
            "{what}: a tag was set"
        );
    }
}

#[test]
fn fifty_binaries_package_in_one_run() {
    let fx = Fixture::new("two-bins");
    let bin_dir = fx.root.join("crates/worker/src/bin");
    for i in 0..48 {
        std::fs::write(
            bin_dir.join(format!("job-{i:02}.rs")),
            format!("fn main() {{ println!(\"job {i}\"); }}\n"),
        )
        .unwrap();
    }
    let out = support::containerize_cmd(&fx.root)
        .args(["-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        refs.lines().count(),
        51,
        "api, worker, worker-admin and 48 jobs"
    );
    support::validate_layout(&fx.layout());
    // Packaging alone (cargo's build is done): peak memory stays small with 51 images.
    let timed = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_cargo-containerize"))
        .args(["containerize", "-q", "--compression-level", "1"])
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(timed.status.success());
    let stderr = String::from_utf8_lossy(&timed.stderr);
    let kib: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    eprintln!("peak RSS packaging 51 images: {} MiB", kib / 1024);
    assert!(kib < 200 * 1024, "peak RSS {kib} KiB");
}

/// Blob storage on another host (S3/GCS behind ECR, GCR, Harbor…): uploads go to the
/// session `Location` there and base-image blobs are fetched through a 307 to it, and the
/// registry credentials never reach that host.
#[test]
fn blob_storage_on_another_host_works_and_never_sees_credentials() {
    use base64::Engine;
    let reg = Registry::start("basic", &[]);
    let presigned = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(reg.creds())
    );
    let storage = FaultProxy::start(
        reg.host(),
        Faults {
            presigned_authorization: Some(presigned),
            ..Faults::default()
        },
    );
    let front = FaultProxy::start(
        reg.host(),
        Faults {
            storage_host: Some(storage.addr.clone()),
            ..Faults::default()
        },
    );
    let creds = reg.cred_env("REGISTRY_");
    let base = Fixture::new("hello-http");
    let repo = format!("{}/team", front.addr);
    let run = base.run_with(&["--push", "--repo", &repo], &creds).ok();
    let pushed = run.stdout.trim().to_string();
    // The blobs went to the storage host, without the registry's credentials.
    let stored = storage.stats();
    assert!(stored.blob_bytes > 0, "{:?}", stored.log);
    assert_eq!(stored.with_authorization, 0, "{:?}", stored.log);
    assert!(front.stats().with_authorization > 0);
    reg.validate(&pushed.replacen(&front.addr, reg.host(), 1));

    // Pulling a base image follows the 307 to the storage host, again without credentials.
    storage.reset_stats();
    let app = Fixture::new("two-bins");
    let run = app
        .run_with(
            &["-p", "api", "--base", &pushed, "--push", "--repo", &repo],
            &creds,
        )
        .ok();
    let redirected = front.stats().log.iter().any(|l| l.ends_with("-> 307"));
    assert!(redirected, "{:?}", front.stats().log);
    let fetched = storage.stats();
    assert!(
        fetched.log.iter().any(|l| l.starts_with("GET ")),
        "{:?}",
        fetched.log
    );
    assert_eq!(fetched.with_authorization, 0, "{:?}", fetched.log);
    reg.validate(&run.stdout.trim().replacen(&front.addr, reg.host(), 1));
}

/// A bearer token that expires in the middle of a push (distribution accepts tokens about
/// 60 s past `exp`, so the manifest PUT is held for 65 s): the registry answers 401, the
/// client fetches a fresh token and the push completes.
#[test]
fn an_expired_bearer_token_is_refreshed_mid_push() {
    let reg = Registry::start("token", &["--token-ttl", "2"]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            stall_first_manifest_put: Some(std::time::Duration::from_secs(65)),
            ..Faults::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    // The held PUT must outlast the token, not the client's patience.
    let mut env = reg.cred_env("REGISTRY_").to_vec();
    env.push(("CARGO_CONTAINERIZE_READ_TIMEOUT", "120"));
    let run = fx.run_with(&["--push", "--repo", &repo], &env).ok();
    let log = proxy.stats().log;
    let manifest_puts: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains("/manifests/sha256:"))
        .collect();
    assert!(
        manifest_puts.len() >= 2 && manifest_puts[0].ends_with("-> 401"),
        "the stalled PUT carried an expired token, then was retried: {log:?}"
    );
    reg.validate(&run.stdout.trim().replacen(&proxy.addr, reg.host(), 1));
}

/// The machine's hostname when it resolves to 127.0.0.1 only (as /etc/hosts usually
/// has it): a loopback registry the tool does not recognize as local, so it speaks HTTPS
/// to it as to any remote registry.
fn loopback_hostname() -> Option<String> {
    use std::net::ToSocketAddrs;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let host = host.trim().to_string();
    let addrs: Vec<_> = (host.as_str(), 443).to_socket_addrs().ok()?.collect();
    let only_loopback = !addrs.is_empty()
        && addrs
            .iter()
            .all(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST);
    (only_loopback && host != "localhost").then_some(host)
}

/// A private CA and a server certificate for `host` and 127.0.0.1, made with openssl:
/// returns (CA certificate, server certificate, server key).
fn private_ca(dir: &std::path::Path, host: &str) -> [std::path::PathBuf; 3] {
    let run = |args: &[&str]| {
        support::output_ok(Command::new("openssl").args(args).current_dir(dir));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=containerize test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let subj = format!("/CN={host}");
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &subj,
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext"),
        format!(
            "subjectAltName=DNS:{host},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    ["ca.pem", "server.pem", "server.key"].map(|f| dir.join(f))
}

/// A registry behind TLS with a private CA: refused at once with what to do, then pushed
/// with `--registry-ca`, and with `SSL_CERT_FILE`.
#[test]
fn tls_registry_with_a_private_ca() {
    let host = loopback_hostname().expect(
        "this test needs the machine's hostname to resolve to 127.0.0.1 only: add \
         `127.0.0.1 $(hostname)` to /etc/hosts (scripts/install-test-deps.sh does)",
    );
    support::require("openssl");
    let reg = Registry::start("none", &[]);
    let pki = tempfile::tempdir().unwrap();
    let [ca, cert, key] = private_ca(pki.path(), &host);
    let tls = FaultProxy::start_tls(reg.host(), &cert, &key);
    let port = tls.addr.rsplit_once(':').unwrap().1;
    let registry = format!("{host}:{port}");
    let repo = format!("{registry}/team");
    let fx = Fixture::new("hello-http");

    let untrusted = fx.run(&["--push", "--repo", &repo]).fails_with(4);
    assert!(
        untrusted.stderr.contains("is not trusted") && untrusted.stderr.contains("--registry-ca"),
        "{}",
        untrusted.stderr
    );
    assert!(
        !untrusted.stderr.contains("attempt"),
        "not retried: {}",
        untrusted.stderr
    );

    let ca = ca.to_str().unwrap();
    let pushed = fx
        .run(&["--push", "--repo", &repo, "--registry-ca", ca])
        .ok();
    let log = tls.stats().log;
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT ") && l.contains("/manifests/")),
        "{log:?}"
    );
    reg.validate(&pushed.stdout.trim().replacen(&registry, reg.host(), 1));

    let via_env = fx
        .run_with(
            &["--push", "--repo", &repo, "-t", "env"],
            &[("SSL_CERT_FILE", ca)],
        )
        .ok();
    assert_eq!(
        via_env.stdout.rsplit_once('@').unwrap().1,
        pushed.stdout.rsplit_once('@').unwrap().1
    );
}
