//! What git refuses or leaves out is said, never dropped silently (issue 17): a checkout
//! owned by another user ("dubious ownership", every CI container that mounts the
//! workspace) gets git's own message and the `safe.directory` fix; a `--tag-from-git` tag
//! that is not the crate's version warns. The ownership case runs as root (it chowns).

use std::process::Command;

use crate::support::{self, Fixture};

/// A fixture committed and tagged, then owned by another uid.
fn foreign_checkout() -> Fixture {
    let fx = Fixture::new("hello-http");
    support::git_tag(&fx.root, "v0.1.0");
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    assert!(
        root_user,
        "this test chowns the checkout to another user: run the test suite as root (CI does)"
    );
    support::output_ok(
        Command::new("chown")
            .args(["-R", "12345:12345"])
            .arg(&fx.root),
    );
    fx
}

/// Issue 17: dubious ownership is reported with git's message and the fix.
#[test]
fn r17_a_checkout_of_another_user_warns_with_gits_message_and_the_fix() {
    let fx = foreign_checkout();
    let run = fx.run(&["--dry-run"]).ok();
    assert!(
        run.stderr.contains("warning: git refused to read the repository, so the images get no commit tag and no revision label"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("dubious ownership"), "{}", run.stderr);
    let fix = format!(
        "help: if you trust this checkout, run: git config --global --add safe.directory {}",
        fx.root.display()
    );
    assert!(run.stderr.contains(&fix), "{}", run.stderr);

    let run = fx.run(&["--dry-run", "--tag-from-git"]).fails_with(2);
    assert!(
        run.stderr
            .starts_with("error: --tag-from-git: git refused to read the repository:"),
        "not `HEAD has no tag`: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("HEAD has no tag"), "{}", run.stderr);
    assert!(run.stderr.contains(&fix), "{}", run.stderr);
}

/// Issue 17: a release tag that is not the crate's version warns.
#[test]
fn r17_tag_from_git_warns_when_the_tag_is_not_the_crate_version() {
    let fx = Fixture::new("hello-http");
    support::git_tag(&fx.root, "v2.0.0");
    let run = fx.run(&["--dry-run", "--tag-from-git"]).ok();
    assert!(
        run.stderr.contains(
            "warning: --tag-from-git: the tag `v2.0.0` is not the version of `hello-http` (0.1.0)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("2.0.0, 2.0, 2, latest"),
        "{}",
        run.stdout
    );

    let fx = Fixture::new("hello-http");
    support::git_tag(&fx.root, "v0.1.0");
    let run = fx.run(&["--dry-run", "--tag-from-git"]).ok();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}
