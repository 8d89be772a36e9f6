//! `--load[=RUNTIME]`: the built images go into a real local runtime — Debian's dockerd,
//! podman, containerd (through `ctr`) — under every `<image>:<tag>` (and `REPO/...` with
//! `--repo`), the runtime lists them under the names it normalizes to, and runs the
//! hello-http image with HTTP 200. `--tarball` is one archive both `docker load` and
//! `podman load` accept. Each daemon runs in a temp dir of its own, stopped by PID.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::runtimes::{Containerd, Dockerd, Podman, alive, describe, free_port, http_get};
use crate::support::{Fixture, Run, containerize_cmd, ref_names, require, validate_events};

/// A repository with a registry host, so that no runtime rewrites it.
const REPO: &str = "registry.example.com/team";

/// A build + load gets this long before the test fails (a hung `docker load` must not
/// hang the suite).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// `cargo containerize ARGS` with `env`, bounded by RUN_TIMEOUT.
#[track_caller]
fn run(fx: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out_path = fx.tmp.path().join("run.stdout");
    let err_path = fx.tmp.path().join("run.stderr");
    let mut cmd = containerize_cmd(&fx.root);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "cargo containerize {args:?} did not finish within {}s\nstdout:\n{stdout}\nstderr:\n{stderr}",
            RUN_TIMEOUT.as_secs()
        );
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// `<image>:<tag>` of every image in the fixture's layout (SBOM artifacts left out),
/// without any repository prefix.
fn layout_refs(fx: &Fixture) -> BTreeSet<String> {
    ref_names(fx)
        .iter()
        .map(|r| r.rsplit('/').next().unwrap().to_string())
        .collect()
}

/// What `--load` should give for this layout: every `<image>:<tag>`, plus
/// `REPO/<image>:<tag>` with a repository.
fn expected_refs(fx: &Fixture, repo: Option<&str>) -> BTreeSet<String> {
    let base = layout_refs(fx);
    let mut all = base.clone();
    if let Some(repo) = repo {
        all.extend(base.iter().map(|r| format!("{repo}/{r}")));
    }
    all
}

/// A podman listing with podman's prefixes for short names taken off: podman names a
/// short name `localhost/NAME` when it loads an OCI archive but `docker.io/library/NAME`
/// when it loads a docker archive (podman 4.3 tries docker-archive first, so an archive
/// with a `manifest.json` gets the latter). Both resolve as `NAME` in `podman run`.
fn podman_short(listed: &[String]) -> Vec<String> {
    listed
        .iter()
        .map(|r| {
            r.strip_prefix("localhost/")
                .or_else(|| r.strip_prefix("docker.io/library/"))
                .unwrap_or(r)
                .to_string()
        })
        .collect()
}

/// containerd's spelling: short names become `docker.io/library/NAME:TAG`.
fn containerd_name(r: &str) -> String {
    if has_domain(r) {
        r.to_string()
    } else {
        format!("docker.io/library/{r}")
    }
}

fn has_domain(r: &str) -> bool {
    r.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    })
}

/// Every expected reference is printed on stdout, one per line (alone or followed by
/// `@digest` / whitespace).
#[track_caller]
fn assert_printed(run: &Run, expected: &BTreeSet<String>) {
    for r in expected {
        let found = run.stdout.lines().any(|l| {
            l == r
                || l.strip_prefix(r.as_str()).is_some_and(|rest| {
                    rest.starts_with('@') || rest.starts_with(char::is_whitespace)
                })
        });
        assert!(
            found,
            "loaded reference {r} is not printed on stdout\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
    }
}

#[track_caller]
fn assert_listed(runtime: &str, listed: &[String], expected: &BTreeSet<String>, run: &Run) {
    let listed: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        &listed, expected,
        "{runtime} lists other images than expected\nlast cargo containerize stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

#[track_caller]
fn assert_serves(port: u16) {
    let (code, body) = http_get(port, "/").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("x86_64"), "{body}");
}

/// The two fixtures every runtime test loads: two-bins (three images, default tags) and
/// hello-http with `--repo`. Returns the fixtures' expected references.
fn load_both(runtime: &str, env: &[(&str, &str)]) -> (BTreeSet<String>, Run) {
    let load = format!("--load={runtime}");
    let two = Fixture::new("two-bins");
    let run_two = run(&two, &[&load], env).ok();
    let mut expected = expected_refs(&two, None);
    for image in ["api", "worker", "worker-admin"] {
        for tag in ["0.1.0", "latest"] {
            assert!(
                expected.contains(&format!("{image}:{tag}")),
                "layout lacks {image}:{tag}: {expected:?}"
            );
        }
    }
    assert_printed(&run_two, &expected_refs(&two, None));

    let hello = Fixture::new("hello-http");
    let run_hello = run(&hello, &[&load, "--repo", REPO], env).ok();
    let hello_refs = expected_refs(&hello, Some(REPO));
    for r in [
        "hello-http:latest".to_string(),
        "hello-http:0.1.0".to_string(),
        format!("{REPO}/hello-http:latest"),
        format!("{REPO}/hello-http:0.1.0"),
    ] {
        assert!(hello_refs.contains(&r), "{hello_refs:?}");
    }
    assert_printed(&run_hello, &hello_refs);
    // The OCI layout is written as without --load.
    assert!(hello.layout().join("index.json").is_file());
    expected.extend(hello_refs);
    (expected, run_hello)
}

/// `os/arch` of an image in dockerd.
fn platform_of(d: &Dockerd, image: &str) -> String {
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        image,
    ]);
    out.trim().to_string()
}

#[test]
fn load_docker_puts_every_image_and_tag_into_dockerd_which_runs_hello_http() {
    let d = Dockerd::start();
    let (expected, last) = load_both("docker", &[("DOCKER_HOST", d.host())]);
    assert_listed("docker", &d.images(), &expected, &last);
    // The image is for the host platform.
    assert_eq!(platform_of(&d, "hello-http:latest"), "linux/amd64");
    let port = free_port();
    let _c = d.serve("hello-http:latest", port);
    assert_serves(port);
}

#[test]
fn load_podman_puts_every_image_and_tag_into_podman_which_runs_hello_http() {
    let p = Podman::new();
    let (expected, last) = load_both("podman", &p.env());
    assert_listed("podman", &podman_short(&p.images()), &expected, &last);
    let port = free_port();
    let _c = p.serve("hello-http:latest", port);
    assert_serves(port);
}

#[test]
fn load_containerd_imports_every_image_and_tag_into_k8s_io_and_ctr_runs_hello_http() {
    let c = Containerd::start();
    let (expected, last) = load_both("containerd", &c.env());
    let expected: BTreeSet<String> = expected.iter().map(|r| containerd_name(r)).collect();
    assert_listed(
        "containerd (namespace k8s.io)",
        &c.images("k8s.io"),
        &expected,
        &last,
    );
    let port = free_port();
    let _t = c.serve("k8s.io", "docker.io/library/hello-http:latest", port);
    assert_serves(port);
}

#[test]
fn containerd_namespace_flag_picks_the_namespace() {
    let c = Containerd::start();
    let fx = Fixture::new("hello-http");
    let run = run(
        &fx,
        &["--load", "containerd", "--containerd-namespace", "ctz-test"],
        &c.env(),
    )
    .ok();
    let expected: BTreeSet<String> = expected_refs(&fx, None)
        .iter()
        .map(|r| containerd_name(r))
        .collect();
    assert_listed(
        "containerd (namespace ctz-test)",
        &c.images("ctz-test"),
        &expected,
        &run,
    );
    assert!(c.images("k8s.io").is_empty(), "{:?}", c.images("k8s.io"));
    let pid = c.pid();
    drop(c);
    assert_gone("containerd", pid);
}

/// The process is gone (allowing a few seconds for the zombie to be reaped).
#[track_caller]
fn assert_gone(what: &str, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(pid),
        "{what} (pid {pid}) still runs after the harness stopped it"
    );
}

#[test]
fn bare_load_picks_docker_when_dockerd_answers() {
    let d = Dockerd::start();
    let p = Podman::new();
    let fx = Fixture::new("hello-http");
    let mut env = vec![("DOCKER_HOST", d.host())];
    env.extend(p.env());
    let run = run(&fx, &["--load"], &env).ok();
    let expected = expected_refs(&fx, None);
    assert_printed(&run, &expected);
    assert_listed("docker", &d.images(), &expected, &run);
    assert!(
        p.images().is_empty(),
        "podman got images too: {:?}",
        p.images()
    );
}

#[test]
fn load_env_variable_selects_podman() {
    let p = Podman::new();
    let fx = Fixture::new("hello-http");
    let mut env = vec![("CARGO_CONTAINERIZE_LOAD", "podman")];
    env.extend(p.env());
    let run = run(&fx, &[], &env).ok();
    let expected = expected_refs(&fx, None);
    assert_printed(&run, &expected);
    assert_listed("podman", &podman_short(&p.images()), &expected, &run);
}

#[test]
fn json_stream_has_one_image_loaded_event_per_image() {
    let p = Podman::new();
    let fx = Fixture::new("two-bins");
    let run = run(
        &fx,
        &["--message-format", "json", "--load", "podman"],
        &p.env(),
    )
    .ok();
    let events = validate_events(&run.stdout);
    let loaded: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["reason"] == "image-loaded")
        .collect();
    assert_eq!(
        loaded.len(),
        3,
        "one per image (api, worker, worker-admin):\n{}",
        run.stdout
    );
    assert_eq!(
        events.last().unwrap()["reason"],
        "finished",
        "{}",
        run.stdout
    );
    let expected = expected_refs(&fx, None);
    assert_listed("podman", &podman_short(&p.images()), &expected, &run);
}

/// `tar -xOf ARCHIVE FILE`.
fn tar_member(archive: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{member} is not in {}: {}",
        archive.display(),
        describe(&out)
    );
    out.stdout
}

#[test]
fn tarball_with_three_tags_loads_into_docker_and_podman() {
    let fx = Fixture::new("two-bins");
    let tarball = fx.tmp.path().join("images.tar");
    let run = run(
        &fx,
        &[
            "--tarball",
            tarball.to_str().unwrap(),
            "-t",
            "a",
            "-t",
            "b",
            "-t",
            "c",
        ],
        &[],
    )
    .ok();
    let mut expected = BTreeSet::new();
    for image in ["api", "worker", "worker-admin"] {
        for tag in ["a", "b", "c"] {
            expected.insert(format!("{image}:{tag}"));
        }
    }

    // One archive: an OCI layout plus docker's manifest.json with every tag.
    let manifest: serde_json::Value =
        serde_json::from_slice(&tar_member(&tarball, "manifest.json")).unwrap();
    let repo_tags: BTreeSet<String> = manifest
        .as_array()
        .expect("manifest.json is an array")
        .iter()
        .flat_map(|m| m["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    assert_eq!(repo_tags, expected, "RepoTags in manifest.json");
    tar_member(&tarball, "oci-layout");
    tar_member(&tarball, "index.json");

    let d = Dockerd::start();
    let tar = tarball.to_str().unwrap();
    let out = d.docker_ok(&["load", "-i", tar]);
    assert_listed("docker", &d.images(), &expected, &run);
    assert!(out.contains("api:a"), "{out}");
    // The harness stops dockerd (and the containerd it started) by PID.
    let pid = d.pid();
    drop(d);
    assert_gone("dockerd", pid);

    let p = Podman::new();
    p.podman_ok(&["load", "-i", tar]);
    assert_listed("podman", &podman_short(&p.images()), &expected, &run);
}

#[test]
fn tarball_platform_picks_the_image_docker_loads() {
    let fx = Fixture::new("hello-http");
    let tarball = fx.tmp.path().join("arm.tar");
    let tar = tarball.to_str().unwrap();
    // Only amd64 built: arm64 cannot be in the archive's manifest.json.
    let bad = run(
        &fx,
        &["--tarball", tar, "--tarball-platform", "linux/arm64"],
        &[],
    )
    .fails_with(2);
    assert!(
        bad.stderr.contains("not built for it") && bad.stderr.contains("--platform"),
        "{}",
        bad.stderr
    );
    assert!(!tarball.exists(), "an archive was written");
    let run = run(
        &fx,
        &[
            "--platform",
            "all",
            "--tarball",
            tar,
            "--tarball-platform",
            "linux/arm64",
        ],
        &[],
    )
    .ok();
    let d = Dockerd::start();
    d.docker_ok(&["load", "-i", tar]);
    assert_listed("docker", &d.images(), &expected_refs(&fx, None), &run);
    assert_eq!(platform_of(&d, "hello-http:latest"), "linux/arm64");
}

#[test]
fn load_with_an_unknown_runtime_is_a_usage_error() {
    let fx = Fixture::new("hello-http");
    let run = run(&fx, &["--load", "nerdctl"], &[]).fails_with(2);
    for name in ["nerdctl", "docker", "podman", "containerd"] {
        assert!(
            run.stderr.contains(name),
            "stderr should name {name}:\n{}",
            run.stderr
        );
    }
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn load_docker_without_a_daemon_fails_and_keeps_the_layout() {
    require("docker");
    let fx = Fixture::new("hello-http");
    let run = run(
        &fx,
        &["--load", "docker"],
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
    )
    .fails_with(1);
    assert!(
        run.stderr.contains("/nonexistent.sock"),
        "the error should name the socket it tried:\n{}",
        run.stderr
    );
    assert!(
        fx.layout().join("index.json").is_file(),
        "the OCI layout is written before loading:\n{}",
        run.stderr
    );
}

/// `cargo containerize run` serves on the published port as the Deployment would run it
/// (uid 65532, read-only root, a writable /tmp), and Ctrl-C ends it with 130 and no
/// container left behind.
#[test]
fn run_serves_like_the_deployment_and_ctrl_c_exits_130_leaving_no_container() {
    use std::os::unix::process::CommandExt;
    let p = Podman::new();
    let fx = Fixture::new("hello-http");
    let port = free_port();
    let publish = format!("{port}:8080");
    let mut cmd = containerize_cmd(&fx.root);
    cmd.args(["run", "--runtime", "podman", "-q", "--publish", &publish])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(fx.tmp.path().join("run.stderr")).unwrap())
        .process_group(0);
    for (k, v) in p.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let stderr = || std::fs::read_to_string(fx.tmp.path().join("run.stderr")).unwrap_or_default();
    // Build + load + start: bounded.
    let deadline = Instant::now() + RUN_TIMEOUT;
    let whoami = loop {
        if let Ok((200, body)) = http_get(port, "/whoami") {
            break body;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("run exited early ({status}):\n{}", stderr());
        }
        assert!(
            Instant::now() < deadline,
            "nothing served on {port}:\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(whoami.contains("65532"), "not uid 65532: {whoami}");
    assert_eq!(
        http_get(port, "/tmpcheck").unwrap().0,
        200,
        "/tmp is writable"
    );
    let ro = p.podman_ok(&["ps", "--format", "{{.ID}}"]);
    let id = ro.lines().next().expect("a running container").to_string();
    let inspect = p.podman_ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}",
        &id,
    ]);
    assert!(inspect.starts_with("true"), "read-only root: {inspect}");
    // Ctrl-C reaches the whole foreground group, as a terminal sends it.
    // SAFETY: kill(2) on the child's own process group.
    unsafe { libc::kill(-pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            panic!("run did not stop within 60 s of Ctrl-C:\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "{}", stderr());
    let left = p.podman_ok(&["ps", "-a", "--format", "{{.ID}}"]);
    assert!(left.trim().is_empty(), "containers left behind: {left}");
}

#[test]
fn run_with_several_images_is_a_usage_error_listing_them() {
    let fx = Fixture::new("two-bins");
    let run = run(&fx, &["run", "--runtime", "podman"], &[]).fails_with(2);
    for bin in ["api", "worker"] {
        assert!(run.stderr.contains(bin), "{}", run.stderr);
    }
    assert!(run.stderr.contains("--bin"), "{}", run.stderr);
    assert!(
        !fx.layout().join("index.json").exists(),
        "nothing was built"
    );
}
