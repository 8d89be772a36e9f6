//! Issue 20 (reliability and security, round 2), the items that need no network fault:
//! `login` never destroys the user's docker config and stores through credential
//! helpers; no password from `--repo` is echoed; colliding image names are an error;
//! `--tarball`/`--image-refs` write FIFOs and symlinks like a shell's `>`; outputs follow
//! the umask; assets never come from outside the workspace; and the test kit's own
//! negative tests run.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{self, Fixture, Registry, containerize_cmd};

fn login(fx: &Fixture, reg: &Registry, docker_dir: &Path, path_env: Option<&str>) -> support::Run {
    let mut cmd = containerize_cmd(&fx.root);
    cmd.args([
        "login",
        reg.host(),
        "-u",
        reg.var("REGISTRY_USER"),
        "--password-stdin",
    ])
    .env("DOCKER_CONFIG", docker_dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", reg.var("REGISTRY_PASSWORD")).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Item 3: a malformed config.json is refused (exit 2, the parse error, the file byte for
/// byte unchanged); with `credsStore` the password goes to the helper, not the file.
#[test]
fn r20_login_keeps_a_malformed_config_and_stores_through_the_helper() {
    let reg = Registry::start("basic", &[]);
    let fx = Fixture::new("hello-http");
    let docker_dir = fx.tmp.path().join("docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let cfg = docker_dir.join("config.json");
    let broken = r#"{"auths":{"ghcr.io":{"auth":"eDp5"}},"detachKeys":"ctrl-x",}"#;
    std::fs::write(&cfg, broken).unwrap();
    let run = login(&fx, &reg, &docker_dir, None).fails_with(2);
    assert!(run.stderr.contains("trailing comma"), "{}", run.stderr);
    assert!(run.stderr.contains("config.json"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), broken);

    // A credsStore helper speaking the protocol: `store` reads the JSON on stdin.
    let bin = fx.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kept = fx.tmp.path().join("helper-store.json");
    let helper = bin.join("docker-credential-kit");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = store ] || exit 1\ncat > '{}'\n",
            kept.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        &cfg,
        r#"{"credsStore":"kit","auths":{"ghcr.io":{}},"proxies":{"default":{"noProxy":"x"}}}"#,
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = login(&fx, &reg, &docker_dir, Some(&path)).ok();
    assert!(
        run.stderr.contains("docker-credential-kit"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains(reg.var("REGISTRY_PASSWORD")), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["auths"][reg.host()], serde_json::json!({}), "{text}");
    assert_eq!(doc["proxies"]["default"]["noProxy"], "x");
    assert_eq!(doc["credsStore"], "kit");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host());
    assert_eq!(stored["Username"], reg.var("REGISTRY_USER"));
    assert_eq!(stored["Secret"], reg.var("REGISTRY_PASSWORD"));
}

/// Item 4: no password given in `--repo` reaches stderr or any JSON event.
#[test]
fn r20_a_password_in_repo_is_never_echoed() {
    let fx = Fixture::new("hello-http");
    for repo in [
        "http://ci:hunter2-SECRET@127.0.0.1:5000/ns",
        "ci:hunter2-SECRET@127.0.0.1:5000/ns",
    ] {
        for extra in [&["--no-kube"][..], &["--dry-run"][..]] {
            let mut args = vec!["--repo", repo, "--message-format", "json"];
            args.extend_from_slice(extra);
            let run = fx.run(&args).fails_with(2);
            for (what, text) in [("stderr", &run.stderr), ("stdout", &run.stdout)] {
                assert!(!text.contains("hunter2-SECRET"), "{what}: {text}");
            }
            assert!(
                run.stderr.contains("<redacted>@127.0.0.1:5000"),
                "{}",
                run.stderr
            );
        }
    }
    let run = fx
        .run(&["--repo", "ci:hunter2-SECRET@127.0.0.1:5000/ns", "--dry-run"])
        .fails_with(2);
    assert!(
        run.stderr.contains("cargo containerize login"),
        "{}",
        run.stderr
    );
}

/// Item 5: `Foo` and `foo` would both be image `foo`: an error before anything is built.
#[test]
fn r20_binaries_with_colliding_image_names_are_an_error() {
    let fx = Fixture::new("hello-http");
    fx.edit("Cargo.toml", |s| {
        format!(
            "{s}\n[[bin]]\nname = \"hello-http\"\npath = \"src/main.rs\"\n\n[[bin]]\nname = \"Hello-http\"\npath = \"src/main.rs\"\n"
        )
    });
    let run = fx.run(&["--no-kube"]).fails_with(2);
    assert!(
        run.stderr
            .contains("binaries `Hello-http` (package `hello-http`) and `hello-http` (package `hello-http`) both become image `hello-http`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(!fx.layout().join("index.json").exists(), "nothing written");
}

/// `cargo containerize ARGS` in `fx` under `umask`.
fn run_with_umask(fx: &Fixture, umask: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let inner = containerize_cmd(&fx.root);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_cargo-containerize"))
        .args(inner.get_args())
        .args(args)
        .current_dir(&fx.root);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().unwrap()
}

fn is_fifo(p: &Path) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(&std::fs::symlink_metadata(p).unwrap().file_type())
}

/// Item 6: `--image-refs` into a FIFO (read by a bounded reader) stays a FIFO;
/// `--tarball` through a symlink keeps the symlink and writes its target; a killed run's
/// temp file next to the tarball is removed.
#[test]
fn r20_outputs_write_fifos_and_symlinks_like_a_shell() {
    let fx = Fixture::new("hello-http");
    let out = fx.tmp.path().join("out");
    std::fs::create_dir_all(out.join("real")).unwrap();
    let fifo = out.join("refs.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = Command::new("timeout")
        .arg("120")
        .arg("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let target = out.join("real/images.tar");
    std::fs::write(&target, b"previous archive").unwrap();
    let link = out.join("images.tar");
    std::os::unix::fs::symlink("real/images.tar", &link).unwrap();
    let stale = out.join("real/.tmp-images.tar.aBc123");
    std::fs::write(&stale, b"what a SIGKILLed run left").unwrap();

    let run = run_with_umask(
        &fx,
        "022",
        &[
            "--image-refs".as_ref(),
            fifo.as_os_str(),
            "--tarball".as_ref(),
            link.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let refs = reader.wait_with_output().unwrap();
    assert!(refs.status.success(), "the FIFO reader got EOF");
    assert_eq!(refs.stdout, run.stdout, "the FIFO got the refs");
    assert!(is_fifo(&fifo), "--image-refs kept the FIFO");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "--tarball kept the symlink"
    );
    let tar = Command::new("tar")
        .arg("-tf")
        .arg(&target)
        .output()
        .unwrap();
    assert!(tar.status.success(), "the symlink's target is the archive");
    assert!(String::from_utf8_lossy(&tar.stdout).contains("index.json"));
    assert!(!stale.exists(), "the stale temp file was removed");
}

/// Item 12: every output follows the umask like cargo's (002 → 0664): layout blobs,
/// index.json, image.json, YAML, SBOM, provenance, the tarball and --image-refs.
#[test]
fn r20_outputs_follow_the_umask() {
    let fx = Fixture::new("hello-http");
    let tarball = fx.tmp.path().join("images.tar");
    let refs = fx.tmp.path().join("refs.txt");
    let run = run_with_umask(
        &fx,
        "002",
        &[
            "--tarball".as_ref(),
            tarball.as_os_str(),
            "--image-refs".as_ref(),
            refs.as_os_str(),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let image = fx.out().join("hello-http");
    let mut files = vec![
        fx.layout().join("index.json"),
        fx.layout().join("oci-layout"),
        image.join("image.json"),
        image.join("kubernetes.yaml"),
        image.join("sbom.linux-amd64.cdx.json"),
        image.join("provenance.linux-amd64.intoto.json"),
        tarball,
        refs,
    ];
    for blob in std::fs::read_dir(fx.layout().join("blobs/sha256")).unwrap() {
        files.push(blob.unwrap().path());
    }
    for f in &files {
        assert_eq!(mode(f), 0o664, "{} follows the umask", f.display());
    }
}

/// Item 11: an assets directory outside the workspace (by `..` or by a symlink) is
/// refused, naming the key, unless `assets-outside-workspace = true`.
#[test]
fn r20_assets_from_outside_the_workspace_are_refused() {
    let fx = Fixture::new("hello-http");
    let secret_dir = fx.tmp.path().join("home/.docker");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("config.json"), r#"{"auths":{}}"#).unwrap();
    std::os::unix::fs::symlink(&secret_dir, fx.root.join("linked")).unwrap();
    let original = std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap();
    let set = |assets: &str, extra: &str| {
        let text = original.replace(
            "[package.metadata.containerize]\n",
            &format!("[package.metadata.containerize]\nassets = \"{assets}\"\n{extra}"),
        );
        std::fs::write(fx.root.join("Cargo.toml"), text).unwrap();
    };
    for assets in ["../home/.docker", "linked"] {
        set(assets, "");
        let run = fx.run(&["--dry-run"]).fails_with(2);
        assert!(
            run.stderr.contains("is outside the workspace"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("assets-outside-workspace = true"),
            "{}",
            run.stderr
        );
    }
    set("../home/.docker", "assets-outside-workspace = true\n");
    fx.run(&["--dry-run"]).ok();
}

/// Item 14: the validators' own negative tests (113 checks: damaged layouts, broken YAML
/// and SBOMs that must fail) run as part of the suite, bounded.
#[test]
fn r20_testkit_selftest_passes() {
    support::require("timeout");
    let out = Command::new("timeout")
        .arg("900")
        .arg(support::testkit("selftest.sh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "selftest.sh failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    let summary = format!("{stdout}{stderr}");
    let line = summary
        .lines()
        .find(|l| l.starts_with("selftest:"))
        .unwrap_or_else(|| panic!("no summary line\n{summary}"));
    assert!(line.ends_with(" 0 failed"), "{line}");
}
