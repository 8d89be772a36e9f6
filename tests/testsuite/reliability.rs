//! Nothing lost, nothing leaked: SIGKILL at random points always leaves the previous or
//! the new layout; Ctrl-C exits 130 cleanly; concurrent runs serialize on a lock; a full
//! or read-only disk is a clear error with nothing partial left; secrets never reach any
//! output.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Fixture, Registry, containerize_cmd, kit};

fn index_digest(layout: &Path) -> Option<String> {
    let bytes = std::fs::read(layout.join("index.json")).ok()?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).expect("index.json is always complete JSON");
    v["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "hello-http:latest")
        .map(|m| m["digest"].as_str().unwrap().to_string())
}

/// A small deterministic generator for kill delays (the seed is printed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_at_random_points_leaves_the_previous_or_the_new_layout() {
    let fx = Fixture::new("hello-http");
    // Two variants of the same image (different timestamps), each built once to completion.
    let run_with_epoch = |epoch: &str| {
        containerize_cmd(&fx.root)
            .args(["--platform", "all", "-q"])
            .env("SOURCE_DATE_EPOCH", epoch)
            .output()
            .unwrap()
    };
    let mut digests = Vec::new();
    let mut full = Duration::ZERO;
    for epoch in ["1", "2"] {
        let started = Instant::now();
        let out = run_with_epoch(epoch);
        // The second run is warm (cargo has nothing to compile): kill within its span.
        full = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        digests.push(index_digest(&fx.layout()).unwrap());
    }
    assert_ne!(digests[0], digests[1]);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill test seed {seed}, full run {full:?}");
    let mut rng = Lcg(seed);
    let (mut killed, mut completed) = (0, 0);
    let iterations = 40;
    for i in 0..iterations {
        // Force real work: no cached layers.
        let _ = std::fs::remove_dir_all(fx.out().join("cache"));
        let epoch = if i % 2 == 0 { "1" } else { "2" };
        let mut child = containerize_cmd(&fx.root)
            .args(["--platform", "all", "-q"])
            .env("SOURCE_DATE_EPOCH", epoch)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_micros(rng.next() % (full.as_micros() as u64 + 1));
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            completed += 1
        } else {
            killed += 1
        }

        // Whatever happened, the layout is a valid one, pointing at one of the two images.
        let digest = index_digest(&fx.layout()).expect("index.json survives every kill");
        assert!(
            digests.contains(&digest),
            "iteration {i}: index.json points at {digest}"
        );
        kit("oci-layout-check.py", &[fx.layout().to_str().unwrap()]);
        let summary = std::fs::read(fx.out().join("hello-http/image.json")).unwrap();
        serde_json::from_slice::<serde_json::Value>(&summary).expect("image.json is complete");
    }
    eprintln!(
        "kill points tried: {iterations}; killed mid-run: {killed}; completed before the kill: {completed}; failures: 0"
    );
    // The next run repairs or reuses what is there, and the result is strictly valid.
    let out = run_with_epoch("1");
    assert!(out.status.success());
    assert_eq!(index_digest(&fx.layout()).unwrap(), digests[0]);
    support::validate_layout(&fx.layout());
}

#[test]
fn ctrl_c_stops_cleanly_with_exit_code_130() {
    let fx = Fixture::new("hello-http");
    let mut cmd = containerize_cmd(&fx.root);
    cmd.args(["--platform", "all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so the signal reaches it and cargo, as a terminal's Ctrl-C does.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pgid = i32::try_from(child.id()).unwrap();
    assert!(pgid > 1);
    // SAFETY: sends SIGINT to the child's own process group (a negative pid), nothing else.
    let rc = unsafe { libc::kill(-pgid, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(out.stdout.is_empty());
    if fx.layout().join("index.json").exists() {
        kit("oci-layout-check.py", &[fx.layout().to_str().unwrap()]);
    }
}

#[test]
fn concurrent_runs_on_one_target_dir_wait_for_each_other() {
    let fx = Fixture::new("hello-http");
    let spawn = || {
        containerize_cmd(&fx.root)
            .args(["--platform", "all"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn();
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn();
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let (ea, eb) = (
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
    );
    assert!(a.status.success() && b.status.success(), "{ea}\n{eb}");
    assert_eq!(a.stdout, b.stdout);
    // The tool's own lock on target/containerize, not cargo's lock on the build directory
    // (cargo prints "Blocking waiting for file lock on build directory" too).
    let ours = format!("Blocking waiting for file lock on {}", fx.out().display());
    assert!(
        ea.lines().chain(eb.lines()).any(|l| l.trim_start() == ours),
        "no `{ours}` line\n{ea}\n{eb}"
    );
    support::validate_layout(&fx.layout());
}

fn require_root() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test mounts small filesystems: run the suite as root (CI does)"
    );
}

struct Mount(std::path::PathBuf);
impl Mount {
    fn tmpfs(dir: &Path, opts: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs {opts}");
        Mount(dir.to_path_buf())
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_or_read_only_disks_are_clear_errors_and_leave_nothing_partial() {
    require_root();
    let fx = Fixture::new("hello-http");
    let full = fx.tmp.path().join("full");
    let _m = Mount::tmpfs(&full, "size=256k");
    let run = fx
        .run(&[
            "--oci-layout-path",
            full.join("layout").to_str().unwrap(),
            "--tarball",
            full.join("image.tar").to_str().unwrap(),
        ])
        .fails_with(1);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(full.to_str().unwrap()),
        "names the path: {}",
        run.stderr
    );
    assert!(
        !full.join("layout/index.json").exists(),
        "no index.json on a partial layout"
    );
    assert!(!full.join("image.tar").exists());
    let leftovers: Vec<_> = walk(&full)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    let ro = fx.tmp.path().join("ro");
    let _r = Mount::tmpfs(&ro, "ro,size=1m");
    let run = fx
        .run(&["--oci-layout-path", ro.join("layout").to_str().unwrap()])
        .fails_with(1);
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(ro.to_str().unwrap()), "{}", run.stderr);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
        out.push(e.path());
    }
    out
}

#[test]
fn secrets_never_reach_any_output() {
    use base64::Engine;
    let reg = Registry::start("basic", &[]);
    let fx = Fixture::new("hello-http");
    let user = reg.var("REGISTRY_USER").to_string();
    let password = reg.var("REGISTRY_PASSWORD").to_string();
    let canary = "canary-secret-4f8a1c9e";
    let repo = format!("{}/team", reg.host());
    let env = [
        ("CARGO_CONTAINERIZE_REGISTRY_USERNAME", user.as_str()),
        ("CARGO_CONTAINERIZE_REGISTRY_PASSWORD", password.as_str()),
        ("AWS_SECRET_ACCESS_KEY", canary),
        ("GITHUB_TOKEN", canary),
    ];
    let ok = fx
        .run_with(
            &["--push", "--repo", &repo, "-vv", "--platform", "all"],
            &env,
        )
        .ok();
    let json = fx
        .run_with(
            &["--push", "--repo", &repo, "--message-format", "json"],
            &env,
        )
        .ok();
    let mut bad_env = env;
    bad_env[1].1 = "wrong-password-canary";
    let failed = fx
        .run_with(&["--push", "--repo", &repo, "-t", "x", "-vv"], &bad_env)
        .fails_with(4);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let needles = [
        password.as_str(),
        basic.as_str(),
        canary,
        "wrong-password-canary",
    ];
    let mut haystacks = vec![
        ("stdout", ok.stdout),
        ("stderr -vv", ok.stderr),
        ("json events", json.stdout),
        ("failed stderr", failed.stderr),
    ];
    for path in walk(&fx.root.join("target/containerize")) {
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text =
                if path.parent().unwrap().ends_with("sha256") && bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut s = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                        &mut s,
                    )
                    .unwrap();
                    String::from_utf8_lossy(&s).into_owned()
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                };
            haystacks.push(("file", format!("{}\n{text}", path.display())));
        }
    }
    let mut hits = 0;
    for (what, text) in &haystacks {
        for n in needles {
            if text.contains(n) {
                hits += 1;
                eprintln!(
                    "secret found in {what}: {}",
                    text.lines().next().unwrap_or_default()
                );
            }
        }
    }
    eprintln!("secret hits: {hits} in {} outputs", haystacks.len());
    assert_eq!(hits, 0);
}
