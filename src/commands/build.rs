//! `cargo containerize` (no subcommand): the whole pipeline; one reference per image on
//! stdout (pushed by digest with `--push`, else local), or `--dry-run`'s plan.

use crate::cli::{ADVISORY_DB_ENV, ADVISORY_DB_URL_ENV, AUDIT_SEVERITY_ENV, BuildArgs};
use crate::commands::{Error, Outcome, plan};
use crate::config::Env;
use crate::output::Shell;
use crate::pipeline::{self, Mode};

/// Builds, packages, writes (and pushes) every selected image.
pub fn exec(args: BuildArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    if args.per_platform && args.push != Some(true) {
        return Err(Error::Usage {
            message: "--per-platform pushes each platform's image on its own, so it needs --push".into(),
            help: "add --push (and a repository: --repo), or drop --per-platform to write the images locally".into(),
        });
    }
    if let Some(flag) = audit_flag_without_audit(&args, env) {
        return Err(Error::Usage {
            message: format!("{flag} sets how the vulnerability gate judges, so it needs --audit"),
            help: "add --audit to check the images as they are built, or run `cargo containerize audit` to check without building".into(),
        });
    }
    if args.dry_run {
        return plan::exec(args, env, shell);
    }
    let settings = super::build_settings(args, env, shell)?;
    let tag_only = settings.tag_only;
    let outcome = pipeline::run(&settings, Mode::Build, shell);
    if let Err(e) = &outcome
        && e.exit_code() == crate::exit::BUILD
    {
        super::doctor::explain_failure(&settings, shell);
    }
    let pipeline::Outcome::Images(summaries) = outcome? else {
        unreachable!("Mode::Build ends with images")
    };
    Ok(Outcome {
        images: summaries.len(),
        // One line per reference: the pushed digest, else every name loaded, else the
        // local reference.
        lines: summaries
            .iter()
            .flat_map(|s| match (&s.pushed, s.loaded.is_empty()) {
                (None, false) => s.loaded.clone(),
                _ => s.refs(tag_only),
            })
            .collect(),
    })
}

/// An audit flag given on the command line of a run without `--audit`, which would
/// otherwise do nothing. Values from the environment (set for every job of a CI pipeline,
/// say) are not flags given: they wait for a run that audits.
fn audit_flag_without_audit(args: &BuildArgs, env: &Env) -> Option<&'static str> {
    let from_flag = |set: bool, var: &str| set && !env.is_set(var);
    [
        (!args.ignore.is_empty(), "--ignore"),
        (!args.deny.is_empty(), "--deny"),
        (
            from_flag(args.severity.is_some(), AUDIT_SEVERITY_ENV),
            "--severity",
        ),
        (
            from_flag(args.advisory_db.is_some(), ADVISORY_DB_ENV),
            "--advisory-db",
        ),
        (
            from_flag(args.advisory_db_url.is_some(), ADVISORY_DB_URL_ENV),
            "--advisory-db-url",
        ),
    ]
    .into_iter()
    .find_map(|(given, flag)| (given && !args.audit).then_some(flag))
}
