//! Colours follow cargo's rules: `--color auto|always|never` over `CARGO_TERM_COLOR`, and
//! `auto` colours a terminal unless `NO_COLOR` is set. The terminal cases run the binary
//! under `script`, which gives it a pseudo-terminal.

use std::process::Command;

use crate::support::{self, Run};

const ESC: &str = "\u{1b}[";

fn bad_tag(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::containerize_cmd(dir.path());
    cmd.args(["--dry-run", "--tag=-bad"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd.output().unwrap()).fails_with(2)
}

/// The same error on a pseudo-terminal (stdout and stderr both go to it).
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    support::require("script");
    let dir = tempfile::tempdir().unwrap();
    let line = format!(
        "{} containerize --dry-run --tag=-bad {args}",
        env!("CARGO_BIN_EXE_cargo-containerize")
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("CARGO_TERM_COLOR")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("error"), "no error under script: {text:?}");
    text
}

#[test]
fn cargo_term_color_always_colours_and_the_flag_wins() {
    let run = bad_tag(&[], &[("CARGO_TERM_COLOR", "always")]);
    assert!(
        run.stderr.starts_with(&format!("{ESC}1m{ESC}31merror")),
        "{:?}",
        run.stderr
    );
    let run = bad_tag(&["--color", "never"], &[("CARGO_TERM_COLOR", "always")]);
    assert!(!run.stderr.contains(ESC), "{:?}", run.stderr);
    assert!(run.stderr.starts_with("error: invalid value for --tag"));
    let run = bad_tag(&["--color=always"], &[("CARGO_TERM_COLOR", "never")]);
    assert!(run.stderr.contains(ESC), "{:?}", run.stderr);
}

#[test]
fn a_terminal_is_coloured_unless_no_color_or_never() {
    assert!(on_a_terminal("", &[]).contains(ESC));
    assert!(!on_a_terminal("", &[("NO_COLOR", "1")]).contains(ESC));
    assert!(!on_a_terminal("", &[("CARGO_TERM_COLOR", "never")]).contains(ESC));
    assert!(!on_a_terminal("--color never", &[]).contains(ESC));
    // `always` is a decision, not a guess: NO_COLOR does not undo it (as in cargo).
    assert!(on_a_terminal("--color always", &[("NO_COLOR", "1")]).contains(ESC));
}

#[test]
fn clap_usage_errors_follow_the_flag_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::containerize_cmd(dir.path())
        .args(["--color", "always", "--no-such-flag"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(ESC), "{stderr:?}");
    let out = support::containerize_cmd(dir.path())
        .args(["--color", "never", "--no-such-flag"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(ESC) && stderr.starts_with("error:"),
        "{stderr:?}"
    );
}
