//! `cargo containerize verify IMAGE [--key PUB]`: the reproducibility promise made
//! checkable. Reads the pushed image and its referrers, checks the signatures (with
//! `--key`) and that the SBOMs and provenance are about its manifests, then rebuilds the
//! image from this checkout and compares it platform by platform; a difference names the
//! first differing layer, the first differing file in it and the config fields. Exit 0
//! only if everything matches; prints the verified reference by digest.

use crate::cli::VerifyArgs;
use crate::commands::{Error, Outcome};
use crate::config::Env;
use crate::output::Shell;
use crate::pipeline;
use crate::reference::ImageReference;

/// Verifies one pushed image against this checkout.
pub fn exec(args: VerifyArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    let usage = |message: String, help: &str| Error::Usage {
        message,
        help: help.into(),
    };
    if args.build.push == Some(true) || args.build.dry_run {
        let flag = if args.build.dry_run {
            "--dry-run"
        } else {
            "--push"
        };
        return Err(usage(
            format!(
                "`cargo containerize verify` takes no {flag}: it reads the registry and rebuilds locally"
            ),
            "run `cargo containerize verify IMAGE` on the pushed image",
        ));
    }
    let target = ImageReference::parse(&args.image).map_err(|e| {
        usage(
            format!("`{}` is not an image reference: {e}", args.image),
            "give the pushed image as REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/my-org/api@sha256:…",
        )
    })?;
    let key = match &args.key {
        None => None,
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            usage(
                format!("failed to read the public key `{}`: {e}", path.display()),
                "--key takes the PEM public key (`openssl pkey -in cosign.pem -pubout`, or cosign.pub)",
            )
        })?),
    };
    let settings = super::build_settings(args.build, env, shell)?;
    let verified = pipeline::verify(settings, &target, key.as_deref(), shell)?;
    Ok(Outcome {
        images: 1,
        lines: vec![verified],
    })
}
