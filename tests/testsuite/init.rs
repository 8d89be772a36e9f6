//! `cargo containerize init`: the user's Cargo.toml keeps every byte (comments, order,
//! formatting), cargo still reads it, the section it adds is accepted by the real run, and
//! the copied templates give the same Kubernetes YAML as the built-in ones.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Fixture};

const MANIFEST: &str = "\
# Our little service.   (a comment before everything)
[package]
name    = \"tiny\"        # aligned, on purpose
version = \"0.3.0\"
edition = \"2021\"

[dependencies]
# nothing yet

[[bin]]
name = \"tiny\"
path = \"src/main.rs\"

[profile.release]
# keep symbols out
strip = true
";

fn tiny_package() -> Fixture {
    let fx = Fixture::new("hello-http");
    std::fs::write(
        fx.root.join("Cargo.toml"),
        format!("{MANIFEST}\n[workspace]\n"),
    )
    .unwrap();
    std::fs::remove_file(fx.root.join("Cargo.lock")).unwrap();
    std::fs::write(fx.root.join("src/main.rs"), "fn main() {}\n").unwrap();
    fx
}

/// `[package.metadata]` as cargo reads it.
fn cargo_metadata(root: &Path) -> Value {
    let out = support::output_ok(
        Command::new("cargo")
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(root),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    v["packages"][0]["metadata"].clone()
}

#[test]
fn init_keeps_the_users_comments_and_cargo_reads_the_result() {
    let fx = tiny_package();
    let before = std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap();
    let run = fx.run(&["init"]).ok();
    assert!(
        run.stderr
            .contains("Updated Cargo.toml ([package.metadata.containerize])"),
        "{}",
        run.stderr
    );
    let after = std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap();
    assert!(
        after.starts_with(&before),
        "the user's text changed:\n{after}"
    );
    assert!(after.contains("# exposed-ports = [8080]"), "{after}");
    // Every key is commented out: cargo sees an empty table, and the run accepts it.
    assert_eq!(
        cargo_metadata(&fx.root)["containerize"],
        serde_json::json!({})
    );
    fx.run(&["plan"]).ok();

    // A second init refuses politely and changes nothing.
    let run = fx.run(&["init"]).fails_with(2);
    assert!(
        run.stderr
            .contains("already has a [package.metadata.containerize] section"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap(),
        after
    );
    // --force replaces the section, once.
    fx.edit("Cargo.toml", |s| {
        s.replace("# exposed-ports = [8080]", "exposed-ports = [9]")
    });
    fx.run(&["init", "--force"]).ok();
    let forced = std::fs::read_to_string(fx.root.join("Cargo.toml")).unwrap();
    assert!(forced.starts_with(&before), "{forced}");
    assert!(!forced.contains("exposed-ports = [9]"), "{forced}");
    assert_eq!(forced.matches("[package.metadata.containerize]").count(), 1);
}

#[test]
fn copied_templates_give_the_built_in_yaml() {
    let fx = tiny_package();
    fx.run(&["init", "--templates"]).ok();
    fx.edit("Cargo.toml", |s| {
        s.replace("# exposed-ports = [8080]", "exposed-ports = [8080]")
    });
    let meta = cargo_metadata(&fx.root);
    assert_eq!(
        meta["containerize"]["kubernetes"]["templates"],
        "containerize/kubernetes"
    );
    for name in ["deployment.yaml", "service.yaml"] {
        let copied = std::fs::read(fx.root.join("containerize/kubernetes").join(name)).unwrap();
        let builtin =
            std::fs::read(support::repo().join("templates/kubernetes").join(name)).unwrap();
        assert_eq!(copied, builtin, "{name}");
    }
    let yaml = |fx: &Fixture| {
        fx.run(&["--sbom", "none"]).ok();
        std::fs::read_to_string(fx.out().join("tiny/kubernetes.yaml")).unwrap()
    };
    let with_copies = yaml(&fx);
    assert!(with_copies.contains("kind: Service"), "{with_copies}");
    fx.edit("Cargo.toml", |s| {
        s.replace("templates = \"containerize/kubernetes\"", "")
    });
    assert_eq!(yaml(&fx), with_copies);

    // Existing files are not overwritten without --force.
    let run = fx.run(&["init", "--templates"]).fails_with(2);
    assert!(
        run.stderr.contains("deployment.yaml already exists"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_finds_workspace_members_and_refuses_virtual_manifests() {
    let fx = Fixture::new("two-bins");
    let run = fx.run(&["init"]).fails_with(2);
    assert!(run.stderr.contains("no [package] table"), "{}", run.stderr);
    assert!(run.stderr.contains("-p PACKAGE"), "{}", run.stderr);
    let run = fx.run(&["init", "-p", "nope"]).fails_with(2);
    assert!(run.stderr.contains("workspace members:"), "{}", run.stderr);

    let before = std::fs::read_to_string(fx.root.join("crates/api/Cargo.toml")).unwrap();
    fx.run(&["init", "-p", "api", "--github-workflow"]).ok();
    let after = std::fs::read_to_string(fx.root.join("crates/api/Cargo.toml")).unwrap();
    assert!(after.starts_with(&before) && after.len() > before.len());
    // The workflow goes to the workspace root, where GitHub looks.
    assert!(fx.root.join(".github/workflows/containerize.yml").is_file());
    fx.run(&["plan"]).ok();
}
