//! `cargo containerize audit`: checks the crates each image links against the RustSec
//! advisory database, without building; writes each image platform's vulnerabilities
//! document and prints their paths (or `audit-finding` and `vulnerabilities-written`
//! events). Exit 6 when a finding fails the run.

use crate::cli::BuildArgs;
use crate::commands::{Error, Outcome};
use crate::config::Env;
use crate::output::Shell;
use crate::pipeline::{self, Mode};

/// Audits every selected image.
pub fn exec(mut args: BuildArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    if args.push == Some(true) {
        return Err(Error::Usage {
            message: "`cargo containerize audit` builds and pushes nothing".into(),
            help: "`cargo containerize --audit --push` audits, then pushes the images with their vulnerabilities documents attached".into(),
        });
    }
    args.audit = true;
    let settings = super::build_settings(args, env, shell)?;
    let pipeline::Outcome::Audited(written) = pipeline::run(&settings, Mode::Audit, shell)? else {
        unreachable!("Mode::Audit ends with the documents written")
    };
    let images: std::collections::BTreeSet<&str> =
        written.iter().map(|w| w.image.as_str()).collect();
    Ok(Outcome {
        images: images.len(),
        lines: written
            .iter()
            .map(|w| w.path.display().to_string())
            .collect(),
    })
}
