//! `cargo containerize resolve -f FILE|DIR [-R]`: build (and push, with `--push`) the
//! binaries the files name, like the default command, then print the files with every
//! `containerize://<binary>` replaced by the image's reference by digest, like `ko resolve`. The replacement itself is [`crate::kube::refs`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cli::ResolveArgs;
use crate::commands::{Error, Outcome, plan};
use crate::config::{self, Env};
use crate::fsutil::FsError;
use crate::kube::refs;
use crate::output::Shell;
use crate::pipeline::{self, Mode};
use crate::workspace::WorkspaceError;

fn read_input(
    path: &Path,
    recursive: bool,
    out: &mut Vec<(String, String)>,
) -> Result<(), FsError> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| FsError::new("read", "<stdin>", e))?;
        out.push(("<stdin>".into(), s));
        return Ok(());
    }
    if path.is_dir() {
        // As `kubectl apply -f DIR`: the YAML and JSON files, in name order; subdirectories
        // only with -R.
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| FsError::new("read directory", path, e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| FsError::new("read directory", path, e))?;
        entries.sort();
        for entry in entries {
            let manifest = entry
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
            if (entry.is_dir() && recursive) || (entry.is_file() && manifest) {
                read_input(&entry, recursive, out)?;
            }
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| FsError::new("read", path, e))?;
    out.push((path.display().to_string(), text));
    Ok(())
}

/// Reads the files (before building, so a typo fails fast), builds, and prints the files
/// with the references replaced, separated by `---` (status lines go to stderr).
pub fn exec(args: ResolveArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    if args.build.dry_run {
        // Nothing to resolve without a build: `--dry-run` shows what would be built.
        return plan::exec(args.build, env, shell);
    }
    let mut inputs = Vec::new();
    for path in &args.files {
        read_input(path, args.recursive, &mut inputs)
            .map_err(|e| crate::error::Error::from(crate::kube::KubeError::from(e)))?;
    }
    let mut build = args.build;
    // Like ko: build what the files name, not the whole workspace, unless the command line
    // selects binaries itself.
    let named: Vec<String> = inputs
        .iter()
        .flat_map(|(_, text)| refs::names(text))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let selected = !build.bins.is_empty() || !build.workspace.package.is_empty();
    // Files that name no binary are printed as they are, with nothing built.
    let nothing = named.is_empty() && !selected;
    if !selected {
        build.bins = named;
    }
    let settings = config::resolve(build, env)?;
    shell.set_verbosity(settings.verbosity);
    let images: BTreeMap<String, String> = if nothing {
        BTreeMap::new()
    } else {
        let run = pipeline::run(&settings, Mode::Build, shell).map_err(|e| match e {
            // A name from the files that is no binary: say where it was written.
            crate::error::Error::Workspace(WorkspaceError::UnknownBin { name, available })
                if !selected =>
            {
                let (file, line) = inputs
                    .iter()
                    .find_map(|(file, text)| {
                        let line = text.lines().position(|l| refs::names(l).contains(&name))?;
                        Some((file.clone(), line + 1))
                    })
                    .unwrap_or_default();
                crate::error::Error::from(crate::kube::KubeError::UnknownRef {
                    name,
                    file,
                    line,
                    known: available,
                })
            }
            e => e,
        })?;
        let pipeline::Outcome::Images(summaries) = run else {
            unreachable!("Mode::Build ends with images")
        };
        summaries
            .iter()
            .map(|s| (s.name.clone(), s.output_ref().to_string()))
            .collect()
    };
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
        images: images.len(),
        lines: Vec::new(),
    })
}
