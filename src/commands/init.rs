//! `cargo containerize init`: a package's Cargo.toml → the same file with a commented
//! `[package.metadata.containerize]` section (and optionally a GitHub workflow for the
//! user's repository and a copy of the Kubernetes templates).
//!
//! The Cargo.toml is edited with toml_edit, so everything the user wrote (order, comments,
//! whitespace) stays byte for byte; the starter section is appended. Every file is checked
//! before anything is written, so a refusal leaves everything as it was. The starter files
//! live in `templates/` and are embedded in the binary.

use std::path::{Path, PathBuf};

use cargo_metadata::MetadataCommand;
use toml_edit::{DocumentMut, Item, Table};

use crate::cli::InitArgs;
use crate::commands::{Error, Outcome};
use crate::config::Env;
use crate::exit;
use crate::fsutil::{self, FsError};
use crate::kube::template;
use crate::output::Shell;

/// The commented starter section.
pub const METADATA: &str = include_str!("../../templates/metadata.toml");
/// The starter GitHub workflow (with `@CONTAINERIZE_*@` placeholders).
pub const GITHUB_WORKFLOW: &str = include_str!("../../templates/github/containerize.yml");
/// Where `--github-workflow` writes, relative to the workspace root.
pub const WORKFLOW_PATH: &str = ".github/workflows/containerize.yml";
/// Where `--templates` copies the Kubernetes templates, relative to the package; also the
/// value of the `templates` key it sets.
pub const TEMPLATES_DIR: &str = "containerize/kubernetes";
/// Where the workflow installs this tool from when this build does not know its own
/// repository (`package.repository` of this tool's Cargo.toml).
/// The commented table header in [`METADATA`] that `--templates` turns into a real one.
const KUBE_HEADER: &str = "# [package.metadata.containerize.kubernetes]\n";

/// `init` flags.
/// Errors of `init`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    /// No Cargo.toml found.
    #[error("could not find Cargo.toml in {} or any parent directory", dir.display())]
    #[diagnostic(
        code(containerize::usage),
        help("run this inside a Cargo package, or pass --manifest-path PATH/Cargo.toml")
    )]
    NoManifest {
        /// Where the search started.
        dir: PathBuf,
    },
    /// A Cargo.toml that is not a package or does not parse.
    #[error("cannot set up {}: {message}", path.display())]
    #[diagnostic(code(containerize::usage), help("{help}"))]
    Manifest {
        /// The Cargo.toml.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// The section is there already.
    #[error("{} already has a [package.metadata.containerize] section", path.display())]
    #[diagnostic(
        code(containerize::usage),
        help(
            "nothing was changed; edit the section by hand (the README lists every key), or pass --force to replace it with the commented starter"
        )
    )]
    SectionExists {
        /// The Cargo.toml.
        path: PathBuf,
    },
    /// A file that would be overwritten.
    #[error("{} already exists", path.display())]
    #[diagnostic(
        code(containerize::usage),
        help("nothing was changed; pass --force to overwrite it")
    )]
    FileExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a file.
    #[error(transparent)]
    #[diagnostic(code(containerize::init))]
    Fs(#[from] FsError),
}

impl InitError {
    /// The process exit code: 2 for what the user can fix by asking differently, 1 for
    /// failures writing.
    pub fn exit_code(&self) -> i32 {
        match self {
            InitError::Fs(_) => exit::OUTPUT,
            _ => exit::CONFIG,
        }
    }
}

/// What happens to the Cargo.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestEdit {
    /// The new text.
    Write(String),
    /// Left as it is, with the reason (shown as a note).
    Keep(String),
}

/// Adds the starter section to `text` (the Cargo.toml at `path`, for messages).
///
/// With an existing section: `force` replaces it; otherwise, when `init` was asked for
/// other files too (`others`), the section is kept (with `templates` set if asked), else
/// it is an error.
pub fn edit_manifest(
    text: &str,
    path: &Path,
    force: bool,
    templates: bool,
    others: bool,
) -> Result<ManifestEdit, InitError> {
    let bad = |message: String, help: &str| InitError::Manifest {
        path: path.to_path_buf(),
        message,
        help: help.to_string(),
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| bad(format!("it is not valid TOML: {e}"), "fix the file first"))?;
    if !doc.get("package").is_some_and(Item::is_table_like) {
        return Err(bad(
            "it has no [package] table (a virtual workspace manifest?)".into(),
            "pass -p PACKAGE or --manifest-path of a member's Cargo.toml",
        ));
    }
    let metadata = doc["package"].get("metadata");
    let exists = metadata.is_some_and(|m| m.get("containerize").is_some());
    if metadata.is_some_and(|m| !m.is_table()) {
        // `metadata = { ... }` inline: a `[package.metadata.containerize]` header would
        // redefine it.
        return Err(bad(
            "[package.metadata] is an inline table".into(),
            "turn `metadata = { ... }` into a [package.metadata] table, then run init again",
        ));
    }
    if exists && !force {
        if !others {
            return Err(InitError::SectionExists {
                path: path.to_path_buf(),
            });
        }
        if !templates {
            return Ok(ManifestEdit::Keep(
                "it already has [package.metadata.containerize]; left as it is".into(),
            ));
        }
        return set_templates_key(doc, path);
    }
    if exists && let Some(m) = doc["package"]["metadata"].as_table_like_mut() {
        m.remove("containerize");
    }
    let mut out = doc.to_string();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&starter(templates));
    // The result must parse, and hold the section where cargo looks for it.
    let check: DocumentMut = out.parse().map_err(|e| {
        bad(
            format!("adding the section would make it invalid: {e}"),
            "add [package.metadata.containerize] by hand (see the README)",
        )
    })?;
    if check["package"]
        .get("metadata")
        .and_then(|m| m.get("containerize"))
        .is_none()
    {
        return Err(bad(
            "adding the section did not give [package.metadata.containerize]".into(),
            "add it by hand (see the README)",
        ));
    }
    Ok(ManifestEdit::Write(out))
}

/// The starter section; with `templates`, its Kubernetes table is live and points at the
/// copied templates.
pub fn starter(templates: bool) -> String {
    if !templates {
        return METADATA.to_string();
    }
    METADATA.replacen(
        KUBE_HEADER,
        &format!(
            "[package.metadata.containerize.kubernetes]\n\
             # Copied by `cargo containerize init --templates`; edit them to change the objects.\n\
             templates = \"{TEMPLATES_DIR}\"\n"
        ),
        1,
    )
}

/// Sets `kubernetes.templates` in an existing section, keeping everything else.
fn set_templates_key(mut doc: DocumentMut, path: &Path) -> Result<ManifestEdit, InitError> {
    let section = &mut doc["package"]["metadata"]["containerize"];
    let inline = section.is_inline_table();
    let Some(section) = section.as_table_like_mut() else {
        return Err(InitError::Manifest {
            path: path.to_path_buf(),
            message: "[package.metadata.containerize] is not a table".into(),
            help: "fix the section first (see the README)".into(),
        });
    };
    if section.get("kubernetes").is_none() {
        let table = if inline {
            Item::Value(toml_edit::InlineTable::new().into())
        } else {
            Item::Table(Table::new())
        };
        section.insert("kubernetes", table);
    }
    let Some(kube) = section
        .get_mut("kubernetes")
        .and_then(Item::as_table_like_mut)
    else {
        return Err(InitError::Manifest {
            path: path.to_path_buf(),
            message: "`kubernetes` in [package.metadata.containerize] is not a table".into(),
            help: "fix the section first (see the README)".into(),
        });
    };
    match kube.get("templates").and_then(Item::as_str) {
        Some(TEMPLATES_DIR) => Ok(ManifestEdit::Keep(format!(
            "`templates` is already \"{TEMPLATES_DIR}\""
        ))),
        Some(other) => Ok(ManifestEdit::Keep(format!(
            "`templates` is set to \"{other}\"; left as it is (set it to \"{TEMPLATES_DIR}\" to use the copies)"
        ))),
        None => {
            kube.insert("templates", toml_edit::value(TEMPLATES_DIR));
            Ok(ManifestEdit::Write(doc.to_string()))
        }
    }
}

/// The GitHub `owner/name` of this tool's repository (`repository` in its Cargo.toml):
/// where the workflow's composite action and the release it installs come from.
pub fn action_slug() -> &'static str {
    let repository = env!("CARGO_PKG_REPOSITORY");
    repository
        .strip_prefix("https://github.com/")
        .unwrap_or(repository)
        .trim_end_matches('/')
}

/// The user workflow with this tool's version and action filled in.
pub fn github_workflow() -> String {
    GITHUB_WORKFLOW
        .replace(
            "\"@CONTAINERIZE_ACTION@@v@CONTAINERIZE_VERSION@\"",
            "@CONTAINERIZE_ACTION@@v@CONTAINERIZE_VERSION@",
        )
        .replace("@CONTAINERIZE_ACTION@", action_slug())
        .replace("@CONTAINERIZE_VERSION@", crate::TOOL_VERSION)
}

/// The nearest `Cargo.toml` at or above `dir`.
fn find_manifest(dir: &Path) -> Result<PathBuf, InitError> {
    dir.ancestors()
        .map(|d| d.join("Cargo.toml"))
        .find(|p| p.is_file())
        .ok_or_else(|| InitError::NoManifest {
            dir: dir.to_path_buf(),
        })
}

/// The package's Cargo.toml and the workspace root, from `cargo metadata --no-deps`
/// (offline: nothing is resolved or downloaded).
fn locate(args: &InitArgs) -> Result<(PathBuf, PathBuf), InitError> {
    let start = match &args.manifest_path {
        Some(p) => p.clone(),
        None => find_manifest(&std::env::current_dir().unwrap_or_default())?,
    };
    if !start.is_file() {
        return Err(InitError::Manifest {
            path: start,
            message: "the file does not exist".into(),
            help: "pass --manifest-path of a package's Cargo.toml, or run init inside the package"
                .into(),
        });
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&start)
        .no_deps()
        .other_options(vec!["--offline".to_string()])
        .exec()
        .map_err(|e| InitError::Manifest {
            path: start.clone(),
            message: match e {
                cargo_metadata::Error::CargoMetadata { stderr } => {
                    format!("`cargo metadata` failed:\n{}", stderr.trim_end())
                }
                other => other.to_string(),
            },
            help: "fix the Cargo.toml first".into(),
        })?;
    let root = metadata.workspace_root.clone().into_std_path_buf();
    let Some(name) = &args.package else {
        return Ok((start, root));
    };
    let members = metadata.workspace_packages();
    match members.iter().find(|p| p.name.as_str() == name.as_str()) {
        Some(p) => Ok((p.manifest_path.clone().into_std_path_buf(), root)),
        None => Err(InitError::Manifest {
            path: start,
            message: format!("package `{name}` is not a member of this workspace"),
            help: format!(
                "workspace members: {}",
                members
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Writes `bytes` atomically with `mode` (the temp file's 0600 would otherwise stick).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all(dir)?;
    }
    fsutil::write_atomic(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| FsError::new("set permissions of", path, e))
}

/// `path` relative to `base` for status lines.
fn show(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Runs `init`: checks everything, then writes.
pub fn exec(args: InitArgs, _env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    run(args, shell)?;
    Ok(Outcome::default())
}

fn run(args: InitArgs, shell: &mut Shell) -> Result<(), InitError> {
    use std::os::unix::fs::PermissionsExt;
    let (manifest, root) = locate(&args)?;
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| FsError::new("read", &manifest, e))?;
    let mode = std::fs::metadata(&manifest)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let others = args.github_workflow || args.templates;
    let edit = edit_manifest(&text, &manifest, args.force, args.templates, others)?;

    let package_dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if args.github_workflow {
        files.push((root.join(WORKFLOW_PATH), github_workflow()));
    }
    if args.templates {
        let dir = package_dir.join(TEMPLATES_DIR);
        for (name, source) in template::FILES
            .iter()
            .zip([template::DEPLOYMENT, template::SERVICE])
        {
            files.push((dir.join(name), source.to_string()));
        }
    }
    if !args.force
        && let Some((path, _)) = files.iter().find(|(p, _)| p.exists())
    {
        return Err(InitError::FileExists { path: path.clone() });
    }

    match edit {
        ManifestEdit::Write(new) => {
            write_file(&manifest, new.as_bytes(), mode)?;
            shell.status(
                "Updated",
                format!(
                    "{} ([package.metadata.containerize])",
                    show(&manifest, &root)
                ),
            );
        }
        ManifestEdit::Keep(reason) => {
            shell.status("Skipping", format!("{}: {reason}", show(&manifest, &root)));
        }
    }
    for (path, text) in &files {
        write_file(path, text.as_bytes(), 0o644)?;
        shell.status("Created", show(path, &root));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "\
# The service.
[package]
name = \"svc\"   # keep this comment
version = \"0.1.0\"
edition = \"2021\"

[dependencies]
# none yet

[package.metadata.docs.rs]
all-features = true
";

    fn edit(text: &str, force: bool, templates: bool, others: bool) -> ManifestEdit {
        edit_manifest(text, Path::new("Cargo.toml"), force, templates, others).unwrap()
    }

    fn written(e: ManifestEdit) -> String {
        match e {
            ManifestEdit::Write(s) => s,
            ManifestEdit::Keep(r) => panic!("kept: {r}"),
        }
    }

    #[test]
    fn appends_the_starter_and_keeps_the_file_byte_for_byte() {
        let out = written(edit(USER, false, false, false));
        assert!(out.starts_with(USER), "{out}");
        assert!(out.ends_with(METADATA), "{out}");
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert!(doc["package"]["metadata"]["containerize"].is_table());
        assert_eq!(
            doc["package"]["metadata"]["docs"]["rs"]["all-features"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn refuses_an_existing_section_unless_forced() {
        let with = written(edit(USER, false, false, false));
        let err = edit_manifest(&with, Path::new("a/Cargo.toml"), false, false, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "a/Cargo.toml already has a [package.metadata.containerize] section"
        );
        // --force replaces the section (and its sub-tables), once.
        let custom = format!(
            "{USER}\n[package.metadata.containerize]\nexposed-ports = [9]\n\n[package.metadata.containerize.bin.svc]\nargs = []\n\n[features]\nx = []\n"
        );
        let out = written(edit(&custom, true, false, false));
        assert!(!out.contains("exposed-ports = [9]"), "{out}");
        assert!(
            !out.contains("[package.metadata.containerize.bin.svc]"),
            "{out}"
        );
        assert!(out.contains("[features]\nx = []\n"), "{out}");
        assert_eq!(
            out.matches("\n[package.metadata.containerize]\n").count(),
            1
        );
        // Asked for other files: the section is kept.
        assert!(matches!(
            edit(&custom, false, false, true),
            ManifestEdit::Keep(_)
        ));
    }

    #[test]
    fn templates_flag_points_the_kubernetes_table_at_the_copies() {
        assert!(METADATA.contains(KUBE_HEADER));
        let out = written(edit(USER, false, true, true));
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            doc["package"]["metadata"]["containerize"]["kubernetes"]["templates"].as_str(),
            Some(TEMPLATES_DIR)
        );
        // An existing section gets only the key; everything else stays.
        let custom =
            format!("{USER}\n[package.metadata.containerize]\n# mine\nexposed-ports = [9]\n");
        let out = written(edit(&custom, false, true, true));
        assert!(out.starts_with(&custom), "{out}");
        assert!(
            out.ends_with("\n[package.metadata.containerize.kubernetes]\ntemplates = \"containerize/kubernetes\"\n"),
            "{out}"
        );
        let inline =
            format!("{USER}\n[package.metadata]\ncontainerize = {{ exposed-ports = [9] }}\n");
        let out = written(edit(&inline, false, true, true));
        assert!(
            out.contains("containerize = { exposed-ports = [9] , kubernetes = { templates = \"containerize/kubernetes\" } }")
                || out.contains("kubernetes = { templates = \"containerize/kubernetes\" }"),
            "{out}"
        );
        assert!(matches!(
            edit(&out, false, true, true),
            ManifestEdit::Keep(_)
        ));
    }

    #[test]
    fn virtual_manifests_and_broken_files_are_refused() {
        let err = edit_manifest(
            "[workspace]\n",
            Path::new("Cargo.toml"),
            false,
            false,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no [package] table"), "{err}");
        let err = edit_manifest("[package\n", Path::new("Cargo.toml"), false, false, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid TOML"), "{err}");
    }

    /// Every key the starter mentions (commented out) is a real key with a valid example:
    /// uncommented, the section parses and resolves.
    #[test]
    fn every_commented_key_in_the_starter_is_valid() {
        let live: String = starter(false)
            .lines()
            .map(|l| {
                let rest = l.strip_prefix("# ").unwrap_or(l);
                let is_toml = rest.starts_with("[package.")
                    || rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '));
                if is_toml { rest } else { l }
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(live.contains("\nexposed-ports = [8080]\n"), "{live}");
        let doc: toml::Table = toml::from_str(&live).unwrap();
        let meta = serde_json::to_value(&doc["package"]["metadata"]).unwrap();
        let cfg = crate::config::parse_package_config(&meta, "Cargo.toml").unwrap();
        assert_eq!(
            cfg.bins["my-bin"].args.as_deref(),
            Some(&["--admin".to_string()][..])
        );
        let source = crate::config::Source::Package("Cargo.toml".into());
        let s = crate::config::resolve_image(&[(&cfg.package, source)], None).unwrap();
        assert_eq!(s.kubernetes.replicas, 2);
        assert_eq!(s.platforms.len(), 2);
    }

    #[test]
    fn user_workflow_gets_the_version_and_the_action_of_this_repository() {
        let text = github_workflow();
        assert!(!text.contains("@CONTAINERIZE_"), "{text}");
        assert_eq!(action_slug(), "cargo-containerize/cargo-containerize");
        let uses = format!(
            "uses: cargo-containerize/cargo-containerize@v{}",
            crate::TOOL_VERSION
        );
        assert_eq!(text.matches(&uses).count(), 2, "{text}");
    }
}
