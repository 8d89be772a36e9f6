//! The command line as a user meets it: `--help` of every command, usage errors and their
//! exit codes, as trycmd cases in `tests/testsuite/cmd/` (regenerate with
//! `TRYCMD=overwrite cargo test --test testsuite cli::`), and the README showing the same
//! help.

use crate::support;

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin(
            "cargo-containerize",
            std::path::Path::new(env!("CARGO_BIN_EXE_cargo-containerize")),
        )
        // clap wraps help to the terminal; these runs have none, so fix the width.
        .env("COLUMNS", "100")
        .case("tests/testsuite/cmd/*.toml");
}

/// README's "Usage" section is `cargo containerize --help` verbatim, like ko's presubmit
/// diffing the generated reference docs: a new or changed flag fails here until the
/// README shows it.
#[test]
fn readme_shows_the_current_help() {
    let help =
        std::fs::read_to_string(support::repo().join("tests/testsuite/cmd/help.stdout")).unwrap();
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let block = format!("```text\n$ cargo containerize --help\n{help}```\n");
    assert!(
        readme.contains(&block),
        "README.md's Usage section must hold tests/testsuite/cmd/help.stdout verbatim, as:\n{block}"
    );
}

/// Issue 17: no error, warning, help or note line of any CLI case prints an empty list or
/// an empty name (the rule `support::says_something` applies to every run).
#[test]
fn r17_no_case_prints_an_empty_list_or_name() {
    let dir = support::repo().join("tests/testsuite/cmd");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "stderr") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(line) = support::says_something(&text) {
                panic!("{}: {line:?}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} cases");
    // The rule itself catches what issue 17 found.
    assert!(support::says_something("error: x\n  help: binaries: \n").is_err());
    assert!(support::says_something("error: refused the credentials for ``: 401\n").is_err());
    assert!(
        support::says_something("error: `cargo metadata` failed:\n  error: no Cargo.toml\n")
            .is_ok()
    );
}
