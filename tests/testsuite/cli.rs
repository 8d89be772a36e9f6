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
