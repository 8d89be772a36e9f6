//! `cargo containerize resolve -f FILE`: build (and push, with `--push`) like the default
//! command, then print FILE with every `containerize://<binary>` replaced by the image's
//! reference by digest, like `ko resolve`. The replacement itself is [`crate::kube::refs`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use crate::cli::ResolveArgs;
use crate::commands::{Error, Outcome, plan};
use crate::config::{self, Env};
use crate::fsutil::FsError;
use crate::kube::refs;
use crate::output::Shell;
use crate::pipeline::{self, Mode};

fn read_input(path: &PathBuf) -> Result<(String, String), FsError> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| FsError::new("read", "<stdin>", e))?;
        return Ok(("<stdin>".into(), s));
    }
    let text = std::fs::read_to_string(path).map_err(|e| FsError::new("read", path, e))?;
    Ok((path.display().to_string(), text))
}

/// Reads the files (before building, so a typo fails fast), builds, and prints the files
/// with the references replaced, separated by `---` (status lines go to stderr).
pub fn exec(args: ResolveArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    if args.build.dry_run {
        // Nothing to resolve without a build: `--dry-run` shows what would be built.
        return plan::exec(args.build, env, shell);
    }
    let settings = config::resolve(args.build, env)?;
    let inputs = args
        .files
        .iter()
        .map(read_input)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crate::error::Error::from(crate::kube::KubeError::from(e)))?;
    shell.set_verbosity(settings.verbosity);
    let pipeline::Outcome::Images(summaries) = pipeline::run(&settings, Mode::Build, shell)? else {
        unreachable!("Mode::Build ends with images")
    };
    let images: BTreeMap<String, String> = summaries
        .iter()
        .map(|s| (s.name.clone(), s.output_ref().to_string()))
        .collect();
    let mut docs = Vec::new();
    for (name, text) in &inputs {
        docs.push(refs::replace(text, &images, name).map_err(crate::error::Error::from)?);
    }
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 && !d.starts_with("---") {
            out.push_str("---\n");
        }
        out.push_str(d);
        if !d.ends_with('\n') {
            out.push('\n');
        }
    }
    // A closed stdout (`| head`) is not an error worth reporting.
    let _ = shell.out_line(out.strip_suffix('\n').unwrap_or(&out));
    Ok(Outcome {
        images: summaries.len(),
        lines: Vec::new(),
    })
}
