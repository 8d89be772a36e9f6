//! The GitHub workflows (this project's and the one `init --github-workflow` writes for
//! users) are valid YAML workflows and use only flags that exist: every `cargo
//! containerize` command line in them is extracted
//! (tests/testsuite/support/workflow-commands.py) and run, with `--dry-run`, against
//! testdata/hello-http tagged v1.2.3.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Fixture};

fn commands(files: &[PathBuf]) -> Vec<Value> {
    let out = support::output_ok(
        Command::new("python3")
            .arg(support::repo().join("tests/testsuite/support/workflow-commands.py"))
            .args(files),
    );
    serde_json::from_slice(&out).unwrap()
}

fn args_of(cmd: &Value) -> Vec<String> {
    cmd["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn workflows_are_yaml_and_every_command_line_runs_with_dry_run() {
    let fx = Fixture::new("hello-http");
    // The workflow exactly as users get it.
    fx.run(&["init", "--github-workflow"]).ok();
    support::git_tag(&fx.root, "v1.2.3");
    let repo = support::repo();
    let files = [
        repo.join(".github/workflows/ci.yml"),
        repo.join(".github/workflows/release.yml"),
        repo.join("templates/github/containerize.yml"),
        fx.root.join(".github/workflows/containerize.yml"),
    ];
    let cmds = commands(&files);
    for file in &files[1..] {
        let file = file.to_str().unwrap();
        let of_file: Vec<&Value> = cmds.iter().filter(|c| c["file"] == file).collect();
        assert!(
            of_file.iter().any(|c| c["args"][0] == "login")
                && of_file
                    .iter()
                    .any(|c| args_of(c).contains(&"--push".into())),
            "{file} should log in and push: {of_file:?}"
        );
    }
    for cmd in &cmds {
        let args = args_of(cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!("{} ({}): {args:?}", cmd["file"], cmd["step"]);
        if args[0] == "login" {
            // Parsed fine; stops at the empty stdin before any network.
            let run = fx.run(&args).fails_with(2);
            assert!(
                run.stderr.contains("no password on stdin"),
                "{what}\n{}",
                run.stderr
            );
            continue;
        }
        let mut dry = args.clone();
        dry.push("--dry-run");
        let run = fx.run(&dry);
        assert_eq!(run.code, 0, "{what}\n{}", run.stderr);
        let events = support::validate_events(&run.stdout);
        let plan = &events[0];
        assert_eq!(plan["reason"], "plan", "{what}");
        assert_eq!(plan["push"], true, "{what}");
        let image = &plan["images"][0];
        assert_eq!(
            image["push_refs"],
            serde_json::json!([
                "ghcr.io/acme/hello-http:1.2.3",
                "ghcr.io/acme/hello-http:1.2",
                "ghcr.io/acme/hello-http:1",
                "ghcr.io/acme/hello-http:latest"
            ]),
            "{what}"
        );
        assert_eq!(
            image["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"]),
            "{what}"
        );
        assert_nothing_written(&fx.root);
    }
}

#[track_caller]
fn assert_nothing_written(root: &Path) {
    assert!(!root.join("target").exists(), "a dry run wrote target/");
    assert!(
        !root.join("image-refs.txt").exists(),
        "a dry run wrote --image-refs"
    );
}

/// The user workflow is the template with only the placeholders filled in.
#[test]
fn init_writes_the_template_with_version_and_source() {
    let fx = Fixture::new("hello-http");
    fx.run(&["init", "--github-workflow"]).ok();
    let written =
        std::fs::read_to_string(fx.root.join(".github/workflows/containerize.yml")).unwrap();
    let template =
        std::fs::read_to_string(support::repo().join("templates/github/containerize.yml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(written.contains(&format!("CONTAINERIZE_VERSION: \"{version}\"")));
    assert!(!written.contains("@CONTAINERIZE_"), "{written}");
    assert_eq!(written.lines().count(), template.lines().count());
}
