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
    // The user workflow: one runner per platform, then the merge job.
    for file in &files[2..] {
        let file = file.to_str().unwrap();
        let of_file: Vec<&Value> = cmds.iter().filter(|c| c["file"] == file).collect();
        for (job, merge) in [("images", false), ("merge", true)] {
            assert!(
                of_file
                    .iter()
                    .any(|c| c["job"] == job && (c["args"][0] == "merge") == merge),
                "{file}: no {job} job: {of_file:?}"
            );
        }
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
        // A matrix job builds its own platform; the others (and merge) both.
        let platforms: Vec<&str> = match cmd["matrix"]["platform"].as_str() {
            Some(p) => vec![p],
            None => vec!["linux/amd64", "linux/arm64"],
        };
        let pushes = args.contains(&"--push") || args[0] == "merge";
        assert_eq!(plan["push"], pushes, "{what}");
        let image = &plan["images"][0];
        let tags = ["1.2.3", "1.2", "1", "latest"];
        let refs: Vec<String> = match (pushes, args.contains(&"--per-platform")) {
            (false, _) => Vec::new(),
            (true, false) => tags
                .iter()
                .map(|t| format!("ghcr.io/acme/hello-http:{t}"))
                .collect(),
            (true, true) => {
                let arch = platforms[0].trim_start_matches("linux/");
                tags.iter()
                    .map(|t| format!("ghcr.io/acme/hello-http:{t}-{arch}"))
                    .collect()
            }
        };
        let got = image["push_refs"].as_array().cloned().unwrap_or_default();
        assert_eq!(serde_json::json!(got), serde_json::json!(refs), "{what}");
        assert_eq!(image["platforms"], serde_json::json!(platforms), "{what}");
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

/// The user workflow is the template with only the placeholders filled in: the install
/// step is the composite action of the repository Cargo.toml names, at this version.
#[test]
fn init_writes_the_template_with_the_action_of_this_repository_and_version() {
    let fx = Fixture::new("hello-http");
    fx.run(&["init", "--github-workflow"]).ok();
    let written =
        std::fs::read_to_string(fx.root.join(".github/workflows/containerize.yml")).unwrap();
    let template =
        std::fs::read_to_string(support::repo().join("templates/github/containerize.yml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let repository = env!("CARGO_PKG_REPOSITORY");
    let slug = repository.strip_prefix("https://github.com/").unwrap();
    assert_eq!(
        written
            .matches(&format!("uses: {slug}@v{version}\n"))
            .count(),
        2,
        "{written}"
    );
    assert_eq!(
        written
            .matches(&format!("version: \"{version}\"\n"))
            .count(),
        2
    );
    assert!(!written.contains("@CONTAINERIZE_"), "{written}");
    assert!(!written.contains("OWNER/"), "{written}");
    assert_eq!(written.lines().count(), template.lines().count());
    // The action installs from the same repository.
    let action = std::fs::read_to_string(support::repo().join("action.yml")).unwrap();
    assert!(
        action.contains(&format!("default: {repository}\n")),
        "{action}"
    );
    assert!(action.contains("scripts/install-release.sh"), "{action}");
}
