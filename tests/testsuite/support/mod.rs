//! Shared helpers for the integration tests: copy a fixture workspace into a temp dir, run
//! the real binary on it, call the test kit's validators. Missing tools fail with the
//! command that installs them; nothing is skipped silently.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod proxy;
pub mod runtimes;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test kit script.
pub fn testkit(script: &str) -> PathBuf {
    repo().join("tests/testsuite/support/testkit").join(script)
}

/// Fails the test with the install command when `tool` is not on PATH.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run scripts/install-test-deps.sh (it installs every test prerequisite)"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let ft = entry.file_type().unwrap();
        let dest = to.join(&name);
        if ft.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A copy of `testdata/<name>` in a fresh temp dir (lowercase path: podman's `oci:`
/// transport rejects uppercase).
pub struct Fixture {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
    /// The workspace root inside it.
    pub root: PathBuf,
}

impl Fixture {
    /// Copies the fixture.
    pub fn new(name: &str) -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("containerize-test-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join(name);
        copy_dir(&repo().join("testdata").join(name), &root);
        Fixture { tmp, root }
    }

    /// `target/containerize/`.
    pub fn out(&self) -> PathBuf {
        self.root.join("target/containerize")
    }

    /// `target/containerize/oci`.
    pub fn layout(&self) -> PathBuf {
        self.out().join("oci")
    }

    /// Runs `cargo containerize ARGS` in the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = containerize_cmd(&self.root);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::of(cmd.output().unwrap())
    }

    /// The parsed `target/containerize/<image>/image.json`.
    pub fn image_json(&self, image: &str) -> Value {
        let bytes = std::fs::read(self.out().join(image).join("image.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Rewrites the fixture's Cargo.toml (or another file) with `f`.
    pub fn edit(&self, file: &str, f: impl FnOnce(String) -> String) {
        let p = self.root.join(file);
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(s)).unwrap();
    }
}

/// The real binary, with a clean environment for our variables.
pub fn containerize_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-containerize"));
    cmd.arg("containerize").current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_CONTAINERIZE_")
            || k == "SOURCE_DATE_EPOCH"
            || k == "CARGO_TARGET_DIR"
            || k == "RUSTFLAGS"
            // A test run inside GitHub Actions must not make provenance claim that run.
            || k.starts_with("GITHUB_")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TERM_COLOR", "never");
    cmd
}

/// A finished run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// A finished run; its stderr must follow [`says_something`] (issue 17).
    #[track_caller]
    pub fn of(o: Output) -> Run {
        let run = Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        if let Err(line) = says_something(&run.stderr) {
            panic!(
                "stderr line says nothing (an empty list or name): {line:?}\nstderr:\n{}",
                run.stderr
            );
        }
        run
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code and returns self.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The digests printed on stdout, one per image line `name:tag@sha256:...`.
    pub fn refs(&self) -> Vec<String> {
        self.stdout.lines().map(String::from).collect()
    }
}

/// Runs a test-kit script, asserting success; returns stdout.
#[track_caller]
pub fn kit(script: &str, args: &[&str]) -> String {
    let out = Command::new(testkit(script)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Validates an OCI layout with the test kit (hashes, sizes, diff_ids, tar safety,
/// oci-image-tool, umoci unpack + entrypoint check), strictly.
#[track_caller]
pub fn validate_layout(dir: &Path) {
    require("umoci");
    require("oci-image-tool");
    kit(
        "validate-oci-layout.sh",
        &["--strict", dir.to_str().unwrap()],
    );
}

/// Runs an image once with podman (runc, vfs) and returns its output.
#[track_caller]
pub fn run_once(image: &str, arch: &str, args: &[&str]) -> String {
    require("podman");
    let mut a = vec![image, "--arch", arch, "--once", "--"];
    a.extend_from_slice(args);
    kit("run-image.sh", &a)
}

/// A running container, stopped on drop.
pub struct Container {
    /// Container ID.
    pub id: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Container {
    /// Starts `image` and waits for `health` to answer 200.
    #[track_caller]
    pub fn start(image: &str, arch: &str, health: &str, extra: &[&str]) -> Container {
        require("podman");
        let mut args = vec![
            image,
            "--arch",
            arch,
            "--port",
            "8080",
            "--http-check",
            health,
            "--timeout",
            "60",
        ];
        args.extend_from_slice(extra);
        let out = kit("run-image.sh", &args);
        let get = |k: &str| {
            out.lines()
                .find_map(|l| {
                    l.trim_start_matches("export ")
                        .strip_prefix(&format!("{k}="))
                })
                .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string())
                .unwrap_or_else(|| panic!("run-image.sh printed no {k}:\n{out}"))
        };
        Container {
            id: get("RUN_IMAGE_ID"),
            url: get("RUN_IMAGE_URL"),
        }
    }

    /// GET a path; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                &format!("{}{path}", self.url),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(testkit("run-image.sh"))
            .args(["stop", &self.id])
            .output();
    }
}

/// Reads a blob of a layout by digest.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// Parses a JSON blob.
pub fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// A registry started by the test kit on 127.0.0.1; stopped (by PID) on drop.
pub struct Registry {
    /// Everything `registry.sh start` exported (`REGISTRY`, `REGISTRY_USER`, ...).
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Registry {
    /// `registry.sh start --auth MODE [EXTRA...]`.
    #[track_caller]
    pub fn start(auth: &str, extra: &[&str]) -> Registry {
        require("docker-registry");
        let mut args = vec!["start", "--auth", auth];
        args.extend_from_slice(extra);
        let out = kit("registry.sh", &args);
        let vars = out
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.trim_matches(|c| c == '\'' || c == '"').to_string(),
                )
            })
            .collect();
        Registry { vars }
    }

    /// A variable, e.g. `REGISTRY` (`127.0.0.1:PORT`).
    pub fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("registry.sh exported no {k}"))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        self.var("REGISTRY")
    }

    /// `CARGO_CONTAINERIZE_REGISTRY_USERNAME` / `_PASSWORD` for the `REGISTRY_USER` /
    /// `REGISTRY_PASSWORD` pair (or another pair the kit exported, e.g. `REGISTRY_RO_`).
    pub fn cred_env(&self, prefix: &str) -> [(&'static str, &str); 2] {
        [
            (
                "CARGO_CONTAINERIZE_REGISTRY_USERNAME",
                self.var(&format!("{prefix}USER")),
            ),
            (
                "CARGO_CONTAINERIZE_REGISTRY_PASSWORD",
                self.var(&format!("{prefix}PASSWORD")),
            ),
        ]
    }

    /// `user:password` for skopeo and the kit (empty for --auth none).
    pub fn creds(&self) -> String {
        match (
            self.vars.get("REGISTRY_USER"),
            self.vars.get("REGISTRY_PASSWORD"),
        ) {
            (Some(u), Some(p)) if !u.is_empty() => format!("{u}:{p}"),
            _ => String::new(),
        }
    }

    /// Runs the kit's validator on a pushed image (copies it back with skopeo, checks every
    /// digest, runs oci-image-tool and umoci).
    #[track_caller]
    pub fn validate(&self, reference: &str) {
        require("skopeo");
        let mut args = vec!["--strict", "--registry", reference];
        let creds = self.creds();
        if !creds.is_empty() {
            args.extend(["--creds", creds.as_str()]);
        }
        kit("validate-oci-layout.sh", &args);
    }

    /// Image tags of a repository, via skopeo (without the referrers fallback tags). A
    /// repository the registry does not know has none; any other skopeo failure fails the
    /// test, so "no tag was set" can never pass on a skopeo error.
    #[track_caller]
    pub fn tags(&self, repo_path: &str) -> Vec<String> {
        require("skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.args(["list-tags", "--tls-verify=false"]);
        let creds = self.creds();
        if !creds.is_empty() {
            cmd.args(["--creds", &creds]);
        }
        let out = cmd
            .arg(format!("docker://{}/{repo_path}", self.host()))
            .output()
            .unwrap();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                is_unknown_repository(&stderr),
                "skopeo list-tags docker://{}/{repo_path} failed: {stderr}",
                self.host()
            );
            return Vec::new();
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut tags: Vec<String> = v["Tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    // `sha256-<hex>` tags are the referrers fallback (SBOMs), not image tags.
                    .filter(|t| !t.starts_with("sha256-"))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }
}

/// Whether skopeo's error says the repository does not exist: distribution answers a
/// tags list of an unknown repository with 404 `NAME_UNKNOWN`, which skopeo 1.9 reports
/// as "fetching tags list: invalid status code from registry 404". Any other failure
/// (connection, credentials, 5xx, a bad answer) is not "no tags".
pub fn is_unknown_repository(skopeo_stderr: &str) -> bool {
    let s = skopeo_stderr.to_ascii_lowercase();
    s.contains("name unknown")
        || s.contains("not known to registry")
        || s.contains("fetching tags list: invalid status code from registry 404")
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(dir) = self.vars.get("REGISTRY_DIR") {
            let _ = Command::new(testkit("registry.sh"))
                .args(["stop", dir])
                .output();
        }
    }
}

/// Shows a JSON stream in the test output (for `--nocapture` runs and closing notes).
#[allow(clippy::print_stderr)]
pub fn eprint_stream(stream: &str) {
    eprintln!("--- message-format json stream ---\n{stream}---");
}

/// Validates a `--message-format json` stream against docs/message-format.schema.json
/// (tests/testsuite/support/validate-events.py) and returns its events.
#[track_caller]
pub fn validate_events(stream: &str) -> Vec<Value> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("python3")
        .arg(repo().join("tests/testsuite/support/validate-events.py"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "schema validation failed:\n{}\n{stream}",
        String::from_utf8_lossy(&out.stderr)
    );
    stream
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `cmd` and returns its stdout; fails the test with its stderr if it fails.
#[track_caller]
pub fn output_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes the fixture a git repository with one commit tagged `tag` (a clean tree, as
/// `--tag-from-git` requires).
pub fn git_tag(root: &Path, tag: &str) {
    let git = |args: &[&str]| {
        output_ok(
            Command::new("git")
                .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
                .args(args)
                .current_dir(root),
        );
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "fixture"]);
    git(&["tag", tag]);
}

/// The `org.opencontainers.image.ref.name` of every image in the fixture's layout, in
/// index order (SBOM artifacts have entries of their own and are left out).
pub fn ref_names(fx: &Fixture) -> Vec<String> {
    index_ref_names(fx, false)
}

/// The `org.opencontainers.image.ref.name` of every artifact (SBOM, provenance) in the
/// fixture's layout, in index order.
pub fn artifact_ref_names(fx: &Fixture) -> Vec<String> {
    index_ref_names(fx, true)
}

fn index_ref_names(fx: &Fixture, artifacts: bool) -> Vec<String> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(fx.layout().join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("artifactType").is_some() == artifacts)
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Runs `cmd` to completion within `secs` seconds (killed and failed past that), asserting
/// success; returns stdout. For the validators that have no timeout of their own.
#[track_caller]
pub fn output_within(cmd: &mut Command, secs: u64) -> Vec<u8> {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap().unwrap();
    let stderr = err_reader.join().unwrap().unwrap();
    assert!(
        status.success(),
        "{cmd:?} exited with {status}: {}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// `dir` as a clone of `origin` (whose commit has fixed dates), at `name` under `base`.
pub fn clone(origin: &Fixture, name: &str) -> std::path::PathBuf {
    let dir = origin.tmp.path().join(name);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    git(
        origin.tmp.path(),
        &[
            "clone",
            "-q",
            origin.root.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    dir
}

/// Runs git in `dir` with a fixed author and dates (commits are reproducible), asserting
/// success.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// Makes `root` a git repository (branch `main`) with everything in one commit.
pub fn commit_all(root: &Path) {
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "fixture"]);
}

/// The rule of issue 17: no `error:`/`warning:`/`help:`/`note:` line prints an empty list
/// or an empty name. Such a line ends in `:` with nothing under it (`help: binaries:`),
/// holds an empty code span (``credentials for `` ``), or an empty list item (`a, , b`).
/// Returns the first line that breaks it.
pub fn says_something(stderr: &str) -> Result<(), String> {
    let lines: Vec<&str> = stderr.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let ours = ["error:", "warning:", "help:", "note:"]
            .iter()
            .any(|p| trimmed.starts_with(p));
        if !ours {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let continued = lines.get(i + 1).is_some_and(|next| {
            let next_indent = next.len() - next.trim_start().len();
            !next.trim().is_empty() && next_indent > indent
        });
        let empty_list = trimmed.trim_end().ends_with(':') && !continued;
        if empty_list
            || trimmed.contains("``")
            || trimmed.contains("` `")
            || trimmed.contains(", ,")
        {
            return Err(line.to_string());
        }
    }
    Ok(())
}

/// An ECDSA P-256 key pair made with openssl in `dir`: (`NAME.pem` private, `NAME.pub`
/// public), the kind `--sign-key` and `verify --key` take.
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    require("openssl");
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
    output_ok(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        k,
    ]));
    output_ok(Command::new("openssl").args(["pkey", "-in", k, "-pubout", "-out", p]));
    (key, public)
}
