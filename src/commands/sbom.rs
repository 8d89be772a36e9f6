//! `cargo containerize sbom`: builds the binaries and writes only their SBOMs; each
//! SBOM's path on stdout (or `sbom-written` events).

use std::collections::BTreeSet;

use crate::cli::BuildArgs;
use crate::commands::{Error, Outcome};
use crate::config::{Env, SbomFormat};
use crate::output::Shell;
use crate::pipeline::{self, Mode};

/// Writes the SBOMs of every selected image.
pub fn exec(args: BuildArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    if args.push == Some(true) {
        return Err(Error::Usage {
            message: "`cargo containerize sbom` writes SBOM files only; it pushes nothing".into(),
            help: "`cargo containerize --push` pushes the images with their SBOMs attached".into(),
        });
    }
    let mut settings = super::build_settings(args, env, shell)?;
    // `sbom --sbom none` would write nothing: CycloneDX, as by default.
    if settings.sbom.is_empty() {
        settings.sbom = vec![SbomFormat::CycloneDx];
    }
    let pipeline::Outcome::Sboms(sboms) = pipeline::run(&settings, Mode::SbomOnly, shell)? else {
        unreachable!("Mode::SbomOnly ends with SBOMs")
    };
    let images: BTreeSet<&str> = sboms.iter().map(|s| s.image.as_str()).collect();
    Ok(Outcome {
        images: images.len(),
        lines: sboms.iter().map(|s| s.path.display().to_string()).collect(),
    })
}
