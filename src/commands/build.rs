//! `cargo containerize` (no subcommand): the whole pipeline; one reference per image on
//! stdout (pushed by digest with `--push`, else local), or `--dry-run`'s plan.

use crate::cli::BuildArgs;
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
