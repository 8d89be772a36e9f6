//! `compose.yaml`: written next to the Kubernetes YAML, one hardened service per image,
//! and started for real by docker-compose (Debian's 1.29, against a dockerd of the test's
//! own) and by podman-compose (PyPI): every service answers on its published port, as
//! uid 65532 with a read-only root and a writable /tmp.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::runtimes::{Dockerd, Podman, describe, free_port, http_get, wait_http};
use crate::support::{Fixture, Registry, require};

/// Every compose command is bounded: `timeout` kills it after this many seconds.
const COMPOSE_TIMEOUT_SECS: &str = "180";

/// hello-http plus a second binary `hello-admin` (the same server), each on a port of its
/// own, with a fast readiness probe (the healthcheck's timing comes from it).
fn two_services() -> (Fixture, u16, u16) {
    let fx = Fixture::new("hello-http");
    let (web, admin) = (free_port(), free_port());
    std::fs::create_dir_all(fx.root.join("src/bin")).unwrap();
    std::fs::copy(
        fx.root.join("src/main.rs"),
        fx.root.join("src/bin/hello-admin.rs"),
    )
    .unwrap();
    fx.edit("Cargo.toml", |s| {
        let s = s
            .replace(
                "exposed-ports = [8080]",
                &format!("exposed-ports = [{web}]"),
            )
            .replace(
                "env = { RUST_LOG = \"info\" }",
                &format!("env = {{ RUST_LOG = \"info\", PORT = \"{web}\" }}"),
            );
        format!(
            "{s}\n[package.metadata.containerize.kubernetes]\n\
             probes.readiness = {{ path = \"/readyz\", period-seconds = 2, timeout-seconds = 2 }}\n\
             env = {{ GREETING = \"from-compose\" }}\n\n\
             [package.metadata.containerize.bin.hello-admin]\n\
             exposed-ports = [{admin}]\nenv = {{ PORT = \"{admin}\" }}\n"
        )
    });
    (fx, web, admin)
}

fn compose_file(fx: &Fixture) -> std::path::PathBuf {
    fx.out().join("compose.yaml")
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// `timeout N PROGRAM ARGS` in `dir` with `env`.
fn bounded(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    require(program);
    let mut cmd = Command::new("timeout");
    cmd.arg(COMPOSE_TIMEOUT_SECS)
        .arg(program)
        .args(args)
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[track_caller]
fn bounded_ok(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = bounded(dir, program, args, env);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `PROGRAM -p PROJECT down` when dropped, so no container, pod or network is left.
struct Up<'a> {
    dir: &'a Path,
    program: &'static str,
    project: String,
    env: Vec<(&'a str, &'a str)>,
}

impl Drop for Up<'_> {
    fn drop(&mut self) {
        let _ = bounded(
            self.dir,
            self.program,
            &["-p", &self.project, "down"],
            &self.env,
        );
    }
}

/// Both services answer as the Deployment would run them.
#[track_caller]
fn assert_both_serve(web: u16, admin: u16, logs: impl Fn() -> String) {
    for port in [web, admin] {
        if let Err(e) = wait_http(port, "/healthz") {
            panic!("{e}\n{}", logs());
        }
        let (code, who) = http_get(port, "/whoami").unwrap();
        assert_eq!(code, 200, "{who}");
        assert!(who.contains("65532\t65532"), "not uid 65532: {who}");
        // Read-only root, writable tmpfs /tmp.
        let (code, body) = http_get(port, "/tmpcheck").unwrap();
        assert_eq!((code, body.as_str()), (200, "tmp ok"));
    }
}

#[test]
fn compose_file_holds_one_hardened_service_per_image() {
    let (fx, web, admin) = two_services();
    let run = fx.run(&[]).ok();
    assert!(run.stderr.contains("compose file"), "{}", run.stderr);
    let doc = parse(&compose_file(&fx));
    let services = doc["services"].as_object().unwrap();
    let names: Vec<&String> = services.keys().collect();
    assert_eq!(names, ["hello-admin", "hello-http"]);
    let s = &services["hello-http"];
    assert_eq!(s["image"], "hello-http:latest");
    assert_eq!(s["pull_policy"], "never", "a local image is never pulled");
    assert_eq!(s["user"], "65532:65532");
    assert_eq!(s["read_only"], true);
    assert_eq!(s["tmpfs"], "/tmp");
    assert_eq!(s["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        s["security_opt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(s["restart"], "unless-stopped");
    assert_eq!(
        s["ports"],
        serde_json::json!([format!("127.0.0.1:{web}:{web}")])
    );
    assert_eq!(s["environment"]["GREETING"], "from-compose");
    assert_eq!(
        s["healthcheck"]["test"],
        serde_json::json!(["CMD", "/app/hello-http", "--health-check"])
    );
    assert_eq!(
        s["healthcheck"]["interval"], "2s",
        "from the readiness probe"
    );
    assert_eq!(
        services["hello-admin"]["ports"],
        serde_json::json!([format!("127.0.0.1:{admin}:{admin}")])
    );
    // No `version:` (the Compose Specification has none) and no project name (1.29
    // rejects one).
    assert!(
        doc.get("version").is_none() && doc.get("name").is_none(),
        "{doc}"
    );

    // Dropping one service, then the whole file.
    fx.edit("Cargo.toml", |s| {
        s.replace(
            "[package.metadata.containerize.bin.hello-admin]\n",
            "[package.metadata.containerize.bin.hello-admin]\ncompose = false\n",
        )
    });
    fx.run(&[]).ok();
    let doc = parse(&compose_file(&fx));
    let names: Vec<&String> = doc["services"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["hello-http"]);
    std::fs::remove_file(compose_file(&fx)).unwrap();
    let run = fx.run(&["--no-compose"]).ok();
    assert!(!compose_file(&fx).exists(), "{}", run.stderr);
    // --kube-dir moves it along with the Kubernetes YAML.
    let dir = fx.tmp.path().join("deploy");
    fx.run(&["--kube-dir", dir.to_str().unwrap()]).ok();
    assert!(dir.join("compose.yaml").is_file());
    assert!(dir.join("kubernetes.yaml").is_file());
}

#[test]
fn compose_file_names_the_pushed_digest_after_push() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("hello-http");
    // `localhost:PORT`: a registry host with a port and no dot, which docker reads as a
    // registry although compose_spec's own image type does not.
    let port = reg.host().rsplit_once(':').unwrap().1.to_string();
    let repo = format!("localhost:{port}/team");
    let run = fx.run(&["--push", "--repo", &repo]).ok();
    let doc = parse(&compose_file(&fx));
    let s = &doc["services"]["hello-http"];
    assert_eq!(s["image"], run.refs()[0].as_str(), "{}", run.stdout);
    assert!(s["image"].as_str().unwrap().contains("@sha256:"), "{s}");
    assert!(
        s.get("pull_policy").is_none(),
        "a pushed image may be pulled: {s}"
    );
}

#[test]
fn docker_compose_starts_the_workspace_after_load_docker() {
    let d = Dockerd::start();
    let (fx, web, admin) = two_services();
    let env = [("DOCKER_HOST", d.host())];
    fx.run_with(&["--load", "docker"], &env).ok();
    let file = compose_file(&fx);
    let dir = file.parent().unwrap();
    let config = bounded_ok(dir, "docker-compose", &["config"], &env);
    assert!(
        config.contains("hello-admin:") && config.contains("hello-http:"),
        "{config}"
    );
    let project = format!("ctz{web}");
    let up = Up {
        dir,
        program: "docker-compose",
        project: project.clone(),
        env: env.to_vec(),
    };
    bounded_ok(dir, "docker-compose", &["-p", &project, "up", "-d"], &env);
    assert_both_serve(web, admin, || {
        describe(&bounded(
            dir,
            "docker-compose",
            &["-p", &project, "logs"],
            &env,
        ))
    });
    // The healthcheck runs the binary's own --health-check mode inside the container.
    let container = format!("{project}_hello-http_1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = String::new();
    while Instant::now() < deadline {
        status = d
            .docker_ok(&[
                "inspect",
                "--format",
                "{{.State.Health.Status}}",
                &container,
            ])
            .trim()
            .to_string();
        if status == "healthy" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        status,
        "healthy",
        "{}",
        d.docker_ok(&["inspect", &container])
    );
    drop(up);
    let left = d.docker_ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}

#[test]
fn podman_compose_starts_the_workspace_after_load_podman() {
    let p = Podman::new();
    let (fx, web, admin) = two_services();
    let env = p.env();
    fx.run_with(&["--load", "podman"], &env).ok();
    let file = compose_file(&fx);
    let dir = file.parent().unwrap();
    // A project name of its own: podman's networks are host-wide.
    let project = format!("ctz{web}");
    let up = Up {
        dir,
        program: "podman-compose",
        project: project.clone(),
        env: env.to_vec(),
    };
    bounded_ok(dir, "podman-compose", &["-p", &project, "up", "-d"], &env);
    assert_both_serve(web, admin, || {
        describe(&bounded(
            dir,
            "podman-compose",
            &["-p", &project, "logs"],
            &env,
        ))
    });
    // podman keeps the healthcheck (it runs it from systemd timers, absent here).
    let test = p.podman_ok(&[
        "inspect",
        "--format",
        "{{json .Config.Healthcheck.Test}}",
        &format!("{project}_hello-http_1"),
    ]);
    assert!(test.contains("--health-check"), "{test}");
    drop(up);
    let left = p.podman_ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}

#[test]
fn bad_compose_keys_are_errors_naming_the_key() {
    for (line, key) in [
        ("compose = \"yes\"", "compose"),
        ("health-check = []", "health-check"),
    ] {
        let fx = Fixture::new("hello-http");
        fx.edit("Cargo.toml", |s| {
            s.replace(
                "[package.metadata.containerize]\n",
                &format!("[package.metadata.containerize]\n{line}\n"),
            )
        });
        let run = fx.run(&[]).fails_with(2);
        assert!(run.stderr.contains(key), "{line}: {}", run.stderr);
        assert!(!compose_file(&fx).exists(), "{line}: a file was written");
    }
}
