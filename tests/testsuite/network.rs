//! Every network wait is bounded, and the bounds are the documented, configurable ones:
//! a registry that goes silent, trickles bytes, sends a giant document or cuts a blob
//! short ends the run (or is retried) within them; Ctrl-C during a push stops it at once;
//! a pull-only account and an impossible port get errors that say what is wrong.

// The fault matrix prints its table, as the other registry suites do.
#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{self, Fixture, Registry, Run, require};

/// Short bounds, so a stalled registry ends the run in seconds.
const FAST: [(&str, &str); 5] = [
    ("CARGO_CONTAINERIZE_CONNECT_TIMEOUT", "2"),
    ("CARGO_CONTAINERIZE_READ_TIMEOUT", "2"),
    ("CARGO_CONTAINERIZE_REQUEST_TIMEOUT", "3"),
    ("CARGO_CONTAINERIZE_RETRY_ATTEMPTS", "2"),
    ("CARGO_CONTAINERIZE_RETRY_BASE_MS", "10"),
];

/// Runs the tool with `env`, killed (and the test failed) after `limit`.
fn run_within(fx: &Fixture, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = support::containerize_cmd(&fx.root);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    wait_within(child, limit)
}

/// Waits for `child` at most `limit`; a child still running then is killed (with its
/// process group) and reported as hung.
fn wait_bounded(mut child: Child, limit: Duration) -> (Run, bool) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            return (Run::of(child.wait_with_output().unwrap()), true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Run::of(child.wait_with_output().unwrap()), false)
}

fn wait_within(child: Child, limit: Duration) -> Run {
    let (run, hung) = wait_bounded(child, limit);
    assert!(
        !hung,
        "still running after {limit:?}: a network wait is unbounded\nstderr:\n{}",
        run.stderr
    );
    run
}

/// hello-http pushed to `reg` as `team/base:latest`, to build on with `--base`.
fn push_base(reg: &Registry) {
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    fx.run(&[
        "--push",
        "--repo",
        &repo,
        "-t",
        "latest",
        "--sbom",
        "none",
        "--no-kube",
    ])
    .ok();
    // The image is `team/hello-http`; the tests build on it.
    assert_eq!(reg.tags("team/hello-http"), ["latest"]);
}

#[test]
fn a_registry_that_never_answers_is_given_up_on_within_the_read_timeout() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok((c, _)) = listener.accept() {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let fx = Fixture::new("hello-http");
    let repo = format!("{addr}/team");
    let started = Instant::now();
    let run = run_within(
        &fx,
        &["--push", "--repo", &repo, "-v"],
        &FAST,
        Duration::from_secs(40),
    )
    .fails_with(4);
    let took = started.elapsed();
    assert!(
        run.stderr.contains("timed out") || run.stderr.contains("operation timed out"),
        "says it timed out:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("CARGO_CONTAINERIZE_READ_TIMEOUT"),
        "names the bound to raise:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Retrying"),
        "-v shows the retry:\n{}",
        run.stderr
    );
    // Two attempts of 2 s each, plus the build: far below the 40 s bound.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    drop(held);
}

#[test]
fn a_blob_upload_that_is_never_answered_ends_within_the_request_timeout_and_tags_nothing() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            silent_blob_uploads: true,
            ..Faults::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    let run = run_within(
        &fx,
        &["--push", "--repo", &repo, "-v"],
        &FAST,
        Duration::from_secs(60),
    )
    .fails_with(4);
    assert!(
        run.stderr.contains("Retrying upload of sha256:"),
        "-v shows the retry:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(
        proxy.stats().log.iter().any(|l| l.ends_with("-> silent")),
        "{:?}",
        proxy.stats().log
    );
    assert!(reg.tags("team/hello-http").is_empty());
}

#[test]
fn ctrl_c_during_a_stalled_push_stops_at_once_with_130_and_no_tag() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            silent_blob_uploads: true,
            ..Faults::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    let mut cmd = support::containerize_cmd(&fx.root);
    cmd.args(["--push", "--repo", &repo])
        .env("CARGO_CONTAINERIZE_REQUEST_TIMEOUT", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    // Wait (bounded) until an upload hangs in the proxy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.stats().log.iter().any(|l| l.ends_with("-> silent")) {
        assert!(Instant::now() < deadline, "no upload reached the proxy");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pressed = Instant::now();
    // SAFETY: kill(2) on the child's own process group, as a terminal sends Ctrl-C.
    unsafe { libc::kill(-pid, libc::SIGINT) };
    let run = wait_within(child, Duration::from_secs(20)).fails_with(130);
    assert!(
        pressed.elapsed() < Duration::from_secs(5),
        "stopped {:?} after Ctrl-C:\n{}",
        pressed.elapsed(),
        run.stderr
    );
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert!(reg.tags("team/hello-http").is_empty());
}

#[test]
fn a_huge_or_trickled_base_manifest_is_refused_within_the_bounds() {
    let reg = Registry::start("none", &[]);
    push_base(&reg);
    for (faults, expect) in [
        (
            Faults {
                huge_manifest_gets: true,
                ..Faults::default()
            },
            "larger than 4194304 bytes (it says 314572800 bytes)",
        ),
        (
            Faults {
                trickle_manifest_gets: true,
                ..Faults::default()
            },
            "CARGO_CONTAINERIZE_REQUEST_TIMEOUT",
        ),
    ] {
        let proxy = FaultProxy::start(reg.host(), faults);
        let fx = Fixture::new("hello-http");
        let base = format!("{}/team/hello-http:latest", proxy.addr);
        let run = run_within(
            &fx,
            &["--base", &base, "--no-kube"],
            &FAST,
            Duration::from_secs(60),
        )
        .fails_with(4);
        assert!(run.stderr.contains(expect), "{expect}:\n{}", run.stderr);
        assert!(
            !fx.layout().join("index.json").exists(),
            "no image was written"
        );
    }
}

#[test]
fn a_base_blob_cut_short_is_downloaded_again() {
    let reg = Registry::start("none", &[]);
    push_base(&reg);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            // The config, then a layer.
            truncate_blob_gets: 2,
            ..Faults::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let base = format!("{}/team/hello-http:latest", proxy.addr);
    let run = run_within(
        &fx,
        &["--base", &base, "--no-kube", "-v"],
        &[("CARGO_CONTAINERIZE_RETRY_BASE_MS", "10")],
        Duration::from_secs(120),
    )
    .ok();
    assert_eq!(
        run.stderr.matches("Retrying download of").count(),
        2,
        "the config and the layer are fetched again:\n{}",
        run.stderr
    );
    let log = proxy.stats().log;
    assert!(
        log.iter().any(|l| l.ends_with("(truncated)")),
        "a blob was cut short: {log:?}"
    );
    support::validate_layout(&fx.layout());
}

#[test]
fn a_pull_only_account_is_told_it_may_not_push() {
    let reg = Registry::start("token", &[]);
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", reg.host());
    let run = run_within(
        &fx,
        &["--push", "--repo", &repo],
        &[
            (
                "CARGO_CONTAINERIZE_REGISTRY_USERNAME",
                reg.var("REGISTRY_RO_USER"),
            ),
            (
                "CARGO_CONTAINERIZE_REGISTRY_PASSWORD",
                reg.var("REGISTRY_RO_PASSWORD"),
            ),
        ],
        Duration::from_secs(120),
    )
    .fails_with(4);
    assert!(run.stderr.contains("insufficient_scope"), "{}", run.stderr);
    assert!(run.stderr.contains("write access"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("rejected the credentials"),
        "valid credentials are not called rejected:\n{}",
        run.stderr
    );
}

#[test]
fn an_impossible_port_or_a_zero_timeout_is_a_usage_error_at_once() {
    let fx = Fixture::new("hello-http");
    let started = Instant::now();
    let run = run_within(
        &fx,
        &["--push", "--repo", "127.0.0.1:99999/ns"],
        &[],
        Duration::from_secs(60),
    )
    .fails_with(2);
    assert!(run.stderr.contains("127.0.0.1:99999"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let run = run_within(
        &fx,
        &["--push", "--repo", "127.0.0.1:5000/ns"],
        &[("CARGO_CONTAINERIZE_READ_TIMEOUT", "0")],
        Duration::from_secs(60),
    )
    .fails_with(2);
    assert!(
        run.stderr.contains("CARGO_CONTAINERIZE_READ_TIMEOUT"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_tag_that_cannot_be_set_is_reported_with_exactly_the_tags_that_moved() {
    let reg = Registry::start("none", &[]);
    let proxy = FaultProxy::start(
        reg.host(),
        Faults {
            fail_tag_puts_after: Some(1),
            ..Faults::default()
        },
    );
    let fx = Fixture::new("hello-http");
    let repo = format!("{}/team", proxy.addr);
    let run = run_within(
        &fx,
        &["--push", "--repo", &repo, "-t", "latest", "-t", "0.1.0"],
        &FAST,
        Duration::from_secs(120),
    )
    .fails_with(4);
    let image = format!("{}/team/hello-http", proxy.addr);
    assert!(
        run.stderr.contains(&format!("moved: {image}:latest;")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("not moved: {image}:0.1.0")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("nothing was tagged"),
        "no false reassurance:\n{}",
        run.stderr
    );
    assert_eq!(reg.tags("team/hello-http"), ["latest"]);
    // The SBOM went out before any tag moved.
    let log = proxy.stats().log;
    let first_tag = log
        .iter()
        .position(|l| l.starts_with("PUT /v2/team/hello-http/manifests/latest"))
        .expect("a tag PUT");
    let sbom = log
        .iter()
        .position(|l| l.starts_with("PUT /v2/team/hello-http/manifests/sha256-"))
        .expect("the SBOM's referrers tag");
    assert!(sbom < first_tag, "{log:#?}");
}

/// The digest `repo:tag` points at in `reg` (None: no such tag).
fn tag_digest(reg: &Registry, repo: &str, tag: &str) -> Option<String> {
    require("skopeo");
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["120", "skopeo", "inspect", "--raw", "--tls-verify=false"]);
    let creds = reg.creds();
    if !creds.is_empty() {
        cmd.args(["--creds", &creds]);
    }
    let out = cmd
        .arg(format!("docker://{}/{repo}:{tag}", reg.host()))
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("manifest unknown") || err.contains("not found"),
            "skopeo inspect {repo}:{tag}: {err}"
        );
        return None;
    }
    use sha2::Digest;
    Some(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&out.stdout))
    ))
}

/// The fault-injection matrix: every fault the proxy can inject, against a push that
/// moves existing tags from an old image to a new one, with credentials. Every push must
/// end correctly (success with every tag on the complete new image, or a clear error with
/// every tag on a complete image and, when tags differ, exactly those reported), within
/// its bounds, and never print the password.
#[test]
fn the_fault_matrix_ends_every_push_correctly_within_its_bounds() {
    let reg = Registry::start("basic", &[]);
    let creds = reg.cred_env("REGISTRY_");
    let password = creds[1].1.to_string();
    let old = Fixture::new("hello-http");
    let new = Fixture::new("hello-http");
    new.edit("src/main.rs", |s| {
        format!("{s}\n// the new image\nconst _NEW: &str = \"new\";\n")
    });
    // (fault, whether retries get past it)
    let cases: Vec<(&str, Faults, bool)> = vec![
        (
            "429 with Retry-After, 3 times",
            Faults {
                too_many: 3,
                ..Faults::default()
            },
            true,
        ),
        (
            "503, 3 times",
            Faults {
                unavailable: 3,
                ..Faults::default()
            },
            true,
        ),
        (
            "503 forever",
            Faults {
                unavailable: 1000,
                ..Faults::default()
            },
            false,
        ),
        (
            "blob uploads dropped halfway, twice",
            Faults {
                drop_blob_uploads: 2,
                ..Faults::default()
            },
            true,
        ),
        (
            "every blob upload 503",
            Faults {
                always_fail_blob_uploads: true,
                ..Faults::default()
            },
            false,
        ),
        (
            "wrong blob digest reported",
            Faults {
                wrong_blob_digest: true,
                ..Faults::default()
            },
            false,
        ),
        (
            "blob uploads truncated",
            Faults {
                truncate_blob_uploads: true,
                ..Faults::default()
            },
            false,
        ),
        (
            "blob uploads acknowledged, not stored",
            Faults {
                fake_blob_success: true,
                ..Faults::default()
            },
            false,
        ),
        (
            "blob uploads never answered",
            Faults {
                silent_blob_uploads: true,
                ..Faults::default()
            },
            false,
        ),
        (
            "every tag PUT 503",
            Faults {
                fail_tag_puts_after: Some(0),
                ..Faults::default()
            },
            false,
        ),
        (
            "tag PUTs 503 after the first",
            Faults {
                fail_tag_puts_after: Some(1),
                ..Faults::default()
            },
            false,
        ),
    ];
    // The new image's digest, from a push of it that nothing disturbs.
    let baseline = new
        .run_with(
            &[
                "--push",
                "--repo",
                &format!("{}/baseline", reg.host()),
                "--no-kube",
                "-q",
            ],
            &creds,
        )
        .ok()
        .stdout;
    let new_digest = baseline.trim().rsplit_once('@').unwrap().1.to_string();
    // The short timeouts, with the default number of attempts.
    let mut env: Vec<(&str, &str)> = FAST
        .iter()
        .copied()
        .filter(|(k, _)| *k != "CARGO_CONTAINERIZE_RETRY_ATTEMPTS")
        .collect();
    env.extend(creds);
    let (mut correct, mut incomplete, mut mixed, mut secrets, mut hangs) = (0, 0, 0, 0, 0);
    for (i, (name, faults, recovers)) in cases.iter().enumerate() {
        let ns = format!("m{i}");
        let repo_path = format!("{ns}/hello-http");
        let direct = format!("{}/{ns}", reg.host());
        let old_ref = old
            .run_with(&["--push", "--repo", &direct, "--no-kube", "-q"], &creds)
            .ok()
            .stdout;
        let old_digest = old_ref.trim().rsplit_once('@').unwrap().1.to_string();
        let proxy = FaultProxy::start(reg.host(), faults.clone());
        let via = format!("{}/{ns}", proxy.addr);
        let started = Instant::now();
        let mut cmd = support::containerize_cmd(&new.root);
        cmd.args(["--push", "--repo", &via, "--no-kube"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let (run, hung) = wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(90));
        hangs += usize::from(hung);
        if run.stdout.contains(&password) || run.stderr.contains(&password) {
            secrets += 1;
        }
        let tags: Vec<(String, Option<String>)> = ["latest", "0.1.0"]
            .iter()
            .map(|t| (t.to_string(), tag_digest(&reg, &repo_path, t)))
            .collect();
        // Every tag points at a complete image: the old one, or the new one in full.
        let mut all_complete = true;
        for (tag, digest) in &tags {
            match digest.as_deref() {
                Some(d) if d == old_digest => {}
                Some(d) if d == new_digest => {
                    reg.validate(&format!("{}/{repo_path}@{d}", reg.host()))
                }
                other => {
                    all_complete = false;
                    eprintln!("{name}: {tag} points at {other:?}");
                }
            }
        }
        if !all_complete {
            incomplete += 1;
        }
        let moved: Vec<&str> = tags
            .iter()
            .filter(|(_, d)| d.as_deref() == Some(new_digest.as_str()))
            .map(|(t, _)| t.as_str())
            .collect();
        let is_mixed = !moved.is_empty() && moved.len() < tags.len();
        if is_mixed {
            mixed += 1;
        }
        let ended_correctly = all_complete
            && (run.code == 0) == *recovers
            && if run.code == 0 {
                moved.len() == tags.len()
            } else {
                run.code == 4
                    && (run.stderr.contains("error") || run.stderr.contains('×'))
                    && (!is_mixed
                        || moved
                            .iter()
                            .all(|t| run.stderr.contains(&format!("{via}/hello-http:{t}"))))
            };
        if ended_correctly {
            correct += 1;
        }
        eprintln!(
            "fault matrix: {name:<42} exit {:>3} in {:>5.1} s, tags moved {moved:?}{}",
            run.code,
            started.elapsed().as_secs_f64(),
            if ended_correctly {
                ""
            } else {
                "  <- NOT CORRECT"
            }
        );
        if !ended_correctly {
            eprintln!("{}", run.stderr);
        }
    }
    eprintln!(
        "fault matrix: {} faults injected, {correct} pushes ended correctly, {incomplete} tags on incomplete images, {mixed} mixed tag sets (each reported exactly), {secrets} secrets found, {hangs} hangs",
        cases.len()
    );
    assert_eq!(
        (correct, incomplete, secrets, hangs),
        (cases.len(), 0, 0, 0),
        "every push ends correctly, no tag on an incomplete image, no secret, no hang"
    );
}

#[test]
fn a_credential_helper_that_never_answers_is_given_up_on_within_the_read_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let reg = Registry::start("basic", &[]);
    let fx = Fixture::new("hello-http");
    // A helper waiting for a prompt nobody sees (bounded itself, so nothing outlives the test).
    let bin = fx.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-stuck");
    std::fs::write(&helper, "#!/bin/sh\nsleep 120\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_dir = fx.tmp.path().join("docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"stuck"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let repo = format!("{}/team", reg.host());
    let started = Instant::now();
    let run = run_within(
        &fx,
        &["--push", "--repo", &repo],
        &[
            ("DOCKER_CONFIG", docker_dir.to_str().unwrap()),
            ("PATH", &path),
            ("CARGO_CONTAINERIZE_READ_TIMEOUT", "2"),
        ],
        Duration::from_secs(60),
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no answer within 2 s"),
        "says the helper did not answer:\n{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    assert!(reg.tags("team/hello-http").is_empty());
}
