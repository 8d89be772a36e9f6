//! `cargo containerize merge`: joins the per-platform images that `--push --per-platform`
//! runs pushed (one CI runner per platform, each building natively) into one
//! multi-platform index per image, as `docker buildx imagetools create` does; the index is
//! the one a single `--platform …` run writes. Prints each merged reference by digest.
//! `--from` takes the `image.json` files of those runs, to read the platforms by digest.

use crate::cli::MergeArgs;
use crate::commands::{Error, Outcome};
use crate::config::Env;
use crate::output::Shell;
use crate::pipeline::{self, Mode};

/// Merges every selected image's platforms and tags the index.
pub fn exec(args: MergeArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    let MergeArgs {
        from,
        build: mut args,
    } = args;
    let local_outputs = [
        (args.per_platform, "--per-platform"),
        (args.load.is_some(), "--load"),
        (args.tarball.is_some(), "--tarball"),
        (args.oci_layout_path.is_some(), "--oci-layout-path"),
        (args.base.is_some(), "--base"),
        (args.audit, "--audit"),
    ];
    if let Some((_, flag)) = local_outputs.iter().find(|(set, _)| *set) {
        return Err(Error::Usage {
            message: format!(
                "`cargo containerize merge` takes no {flag}: it builds nothing and only joins images already in the registry"
            ),
            help: "push each platform with `cargo containerize --push --per-platform --platform PLATFORM` (with --base or --audit there), then run `cargo containerize merge --platform PLATFORMS` with the same tags; `cargo containerize plan` shows what a run would do".into(),
        });
    }
    args.push = Some(true);
    if args.dry_run {
        // What the merge would tag: the plan of a push of the same images.
        return super::plan::exec(args, env, shell);
    }
    let mut settings = super::build_settings(args, env, shell)?;
    settings.merge_from = from;
    let pipeline::Outcome::Images(summaries) = pipeline::run(&settings, Mode::Merge, shell)? else {
        unreachable!("Mode::Merge ends with images")
    };
    Ok(Outcome {
        images: summaries.len(),
        lines: summaries
            .iter()
            .map(|s| s.output_ref().to_string())
            .collect(),
    })
}
