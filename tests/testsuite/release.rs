//! The installable release: scripts/package-release.sh makes the assets in the layout
//! `[package.metadata.binstall]` describes, and the composite action's script
//! (action.yml → scripts/install-release.sh) downloads the one for this machine from a
//! release served on 127.0.0.1, checks it against SHA256SUMS and puts it on PATH; a
//! tampered archive installs nothing.

#![allow(clippy::print_stderr, clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

/// `python3 -m http.server` on 127.0.0.1 serving `dir`; killed (by PID) on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "http.server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release of `version`: both musl binaries (this test's binary stands in for both)
/// packaged by the script.
fn package(tmp: &Path, tag: &str) -> PathBuf {
    let target = tmp.join("target");
    for triple in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let dir = target.join(triple).join("release");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_cargo-containerize"),
            dir.join("cargo-containerize"),
        )
        .unwrap();
    }
    let dist = tmp.join("dist");
    support::output_ok(
        Command::new(support::repo().join("scripts/package-release.sh"))
            .arg(tag)
            .arg(&dist)
            .arg(&target),
    );
    dist
}

/// `[package.metadata.binstall]`'s templates, filled in as cargo-binstall does.
fn binstall_paths(version: &str, triple: &str) -> (String, String) {
    let manifest: toml::Table = std::fs::read_to_string(support::repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let binstall = &manifest["package"]["metadata"]["binstall"];
    assert_eq!(binstall["pkg-fmt"].as_str(), Some("tgz"));
    let fill = |key: &str| {
        let mut s = binstall[key].as_str().unwrap().to_string();
        for (k, v) in [
            ("repo", env!("CARGO_PKG_REPOSITORY")),
            ("version", version),
            ("name", "cargo-containerize"),
            ("bin", "cargo-containerize"),
            ("target", triple),
            ("archive-suffix", ".tar.gz"),
            ("binary-ext", ""),
        ] {
            s = s.replace(&format!("{{ {k} }}"), v);
        }
        assert!(!s.contains('{'), "unfilled template in {key}: {s}");
        s
    };
    (fill("pkg-url"), fill("bin-dir"))
}

fn install(server: &Server, tmp: &Path, version: &str) -> (std::process::Output, PathBuf) {
    let github_path = tmp.join("github-path");
    let _ = std::fs::remove_file(&github_path);
    let out = Command::new(support::repo().join("scripts/install-release.sh"))
        .env("INPUT_VERSION", version)
        .env("INPUT_GIT", env!("CARGO_PKG_REPOSITORY"))
        .env(
            "CONTAINERIZE_RELEASE_URL",
            format!("{}/releases/download/v{version}", server.url),
        )
        .env("RUNNER_TEMP", tmp)
        .env("GITHUB_PATH", &github_path)
        .output()
        .unwrap();
    (out, github_path)
}

#[test]
fn release_assets_install_checked_from_a_release_and_match_binstall() {
    let tmp = tempfile::tempdir().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("v{version}");
    let dist = package(tmp.path(), &tag);

    // The assets are where cargo binstall looks, with the binary where it expects it.
    for triple in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let (url, bin_dir) = binstall_paths(version, triple);
        let prefix = format!("{}/releases/download/{tag}/", env!("CARGO_PKG_REPOSITORY"));
        let asset = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
        assert!(dist.join(asset).is_file(), "{asset} is not in the release");
        let listing = support::output_ok(Command::new("tar").arg("-tzf").arg(dist.join(asset)));
        let listing = String::from_utf8(listing).unwrap();
        assert!(
            listing.lines().any(|l| l == bin_dir),
            "{bin_dir} not in {asset}:\n{listing}"
        );
    }
    // Reproducible assets: packaging again gives the same SHA256SUMS.
    let again = package(&tmp.path().join("again"), &tag);
    assert_eq!(
        std::fs::read(dist.join("SHA256SUMS")).unwrap(),
        std::fs::read(again.join("SHA256SUMS")).unwrap()
    );

    // Served as a GitHub release is laid out: the action's script installs from it.
    let root = tmp.path().join("site");
    let release = root.join(format!("releases/download/{tag}"));
    std::fs::create_dir_all(release.parent().unwrap()).unwrap();
    std::fs::rename(&dist, &release).unwrap();
    let server = Server::start(&root);
    let (out, github_path) = install(&server, tmp.path(), version);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_to_string(&github_path).unwrap();
    let bin = Path::new(dir.trim()).join("cargo-containerize");
    let printed = support::output_ok(Command::new(&bin).arg("--version"));
    assert_eq!(
        String::from_utf8(printed).unwrap().trim(),
        format!("cargo-containerize {version}")
    );
    std::fs::remove_file(&bin).unwrap();

    // An archive that does not match SHA256SUMS is not installed.
    let arch = match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    };
    let asset = release.join(format!(
        "cargo-containerize-{tag}-{arch}-unknown-linux-musl.tar.gz"
    ));
    let mut bytes = std::fs::read(&asset).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&asset, bytes).unwrap();
    let (out, github_path) = install(&server, tmp.path(), version);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not match its SHA256SUMS entry; nothing was installed"),
        "{stderr}"
    );
    assert!(!github_path.exists(), "PATH was changed");
    assert!(!bin.exists(), "a binary was installed");
}
