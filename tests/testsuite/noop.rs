//! An unchanged re-run answers `cargo metadata` from its stored answer; anything that
//! can change cargo's answer runs cargo again.

use crate::support::Fixture;

const WORKSPACE: &str = "`cargo metadata` (";
const GRAPH: &str = "`cargo metadata --filter-platform";

/// How each `cargo metadata` of a `-v` run was answered: (workspace, SBOM graph), each
/// "Fresh" (stored answer) or "Resolved" (cargo ran).
fn answers(stderr: &str) -> (String, String) {
    let find = |what: &str| {
        let line = stderr
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` line in -v output:\n{stderr}"));
        line.split_whitespace().next().unwrap().to_string()
    };
    (find(WORKSPACE), find(GRAPH))
}

fn run(fx: &Fixture, args: &[&str]) -> (String, String, String) {
    let mut all = vec!["-v", "--no-kube"];
    all.extend(args);
    let run = fx.run(&all).ok();
    let (ws, graph) = answers(&run.stderr);
    let digest = fx.image_json("api")["digest"].as_str().unwrap().to_string();
    (ws, graph, digest)
}

fn fresh() -> (String, String) {
    ("Fresh".into(), "Fresh".into())
}

fn resolved() -> (String, String) {
    ("Resolved".into(), "Resolved".into())
}

#[test]
fn an_unchanged_rerun_does_not_run_cargo_metadata_and_a_change_does() {
    let fx = Fixture::new("two-bins");
    let (ws, graph, first) = run(&fx, &[]);
    assert_eq!((ws, graph), resolved(), "first run");
    let (ws, graph, again) = run(&fx, &[]);
    assert_eq!((ws, graph), fresh(), "an unchanged re-run");
    // Nor does it wait for rustup.
    let rerun = fx.run(&["-v", "--no-kube"]).ok();
    assert!(
        rerun
            .stderr
            .contains("Fresh `rustup target list --installed` (stored answer, inputs unchanged)"),
        "{}",
        rerun.stderr
    );
    assert_eq!(first, again, "the stored answer builds the same image");

    // Touching a manifest (same bytes, new mtime) runs cargo again, then is fresh.
    let manifest = fx.root.join("crates/api/Cargo.toml");
    let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    let (ws, graph, _) = run(&fx, &[]);
    assert_eq!(
        (ws, graph),
        resolved(),
        "after touching crates/api/Cargo.toml"
    );
    let (ws, graph, _) = run(&fx, &[]);
    assert_eq!((ws, graph), fresh(), "touched, then unchanged");

    // A feature: the edit runs both; switching features on runs the graph's metadata
    // (its arguments differ), and switching back finds the earlier answer still valid.
    fx.edit("crates/api/Cargo.toml", |s| {
        format!("{s}\n[features]\nextra = []\n")
    });
    let (ws, graph, _) = run(&fx, &[]);
    assert_eq!((ws, graph), resolved(), "after adding a feature");
    let (ws, graph, _) = run(&fx, &["--features", "api/extra"]);
    assert_eq!(
        (ws.as_str(), graph.as_str()),
        ("Fresh", "Resolved"),
        "--features"
    );
    let (ws, graph, _) = run(&fx, &["--features", "api/extra"]);
    assert_eq!((ws, graph), fresh(), "--features again");
    let (ws, graph, _) = run(&fx, &[]);
    assert_eq!((ws, graph), fresh(), "back to the default features");

    // A new member under `members = ["crates/*"]` (no manifest of the old ones changes)
    // and a new binary under src/bin are seen.
    let extra = fx.root.join("crates/extra");
    std::fs::create_dir_all(extra.join("src")).unwrap();
    std::fs::write(
        extra.join("Cargo.toml"),
        "[package]\nname = \"extra\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(extra.join("src/main.rs"), "fn main() {}\n").unwrap();
    let run_new = fx.run(&["-v", "--no-kube"]).ok();
    assert_eq!(
        answers(&run_new.stderr),
        resolved(),
        "after adding a member"
    );
    assert!(
        fx.out().join("extra/image.json").is_file(),
        "the new member's binary became an image:\n{}",
        run_new.stderr
    );
    std::fs::create_dir_all(fx.root.join("crates/api/src/bin")).unwrap();
    std::fs::write(
        fx.root.join("crates/api/src/bin/api-extra.rs"),
        "fn main() {}\n",
    )
    .unwrap();
    let run_bin = fx.run(&["-v", "--no-kube"]).ok();
    assert_eq!(
        answers(&run_bin.stderr).0,
        "Resolved",
        "after adding src/bin/api-extra.rs"
    );
    assert!(
        fx.out().join("api-extra/image.json").is_file(),
        "{}",
        run_bin.stderr
    );
}

#[test]
fn a_changed_lockfile_or_cargo_config_runs_cargo_metadata_again() {
    let fx = Fixture::new("two-bins");
    assert_eq!(
        {
            let r = run(&fx, &[]);
            (r.0, r.1)
        },
        resolved()
    );
    // A cargo config appearing where there was none.
    std::fs::create_dir_all(fx.root.join(".cargo")).unwrap();
    std::fs::write(
        fx.root.join(".cargo/config.toml"),
        "[term]\nverbose = false\n",
    )
    .unwrap();
    let r = run(&fx, &[]);
    assert_eq!((r.0, r.1), resolved(), "after adding .cargo/config.toml");
    // Cargo.lock rewritten with other bytes (cargo puts its own back while it runs, so
    // that run stores nothing; the one after it does).
    fx.edit("Cargo.lock", |s| format!("{s}\n"));
    let r = run(&fx, &[]);
    assert_eq!((r.0, r.1), resolved(), "after changing Cargo.lock");
    run(&fx, &[]);
    let r = run(&fx, &[]);
    assert_eq!((r.0, r.1), fresh());
}
