//! Args + environment + Cargo.toml metadata → resolved settings.
//!
//! Two steps, as cargo-dist and ripgrep do it: raw layers with all-`Option` fields
//! ([`ImageLayer`], one per `[*.metadata.containerize]` table) are merged into a resolved
//! [`ImageSettings`] with no `Option` left. Precedence, highest first: CLI flag >
//! `CARGO_CONTAINERIZE_*` env (clap reads those next to their flags) >
//! `[package.metadata.containerize.bin.<name>]` > `[package.metadata.containerize]` >
//! `[workspace.metadata.containerize]` > defaults. This is the only module that reads the
//! environment besides clap.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub mod audit;
mod explain;
pub mod kube;
mod metadata;
pub mod registry;

pub use metadata::{
    ImageLayer, ImageSettings, PackageConfig, Port, misspelt_tables, parse_package_config,
    parse_workspace_config, resolve_image,
};

use crate::cli::{
    BuildArgs, CompressionArg, DenyArg, LoadArg, MessageFormatArg, NamingArg, SbomArg, SeverityArg,
};
use crate::output::{ColorChoice, MessageFormat, Verbosity};
use crate::platform::{Platform, parse_platforms};
use crate::reference::validate_tag;
use registry::{AuthSources, Credential, RegistrySettings};

/// Default gzip level for layers: zlib's default, a good size/speed balance for binaries.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;
/// The user images run as unless configured: distroless `nonroot`.
pub const DEFAULT_USER: &str = "65532:65532";
/// Where the binary and its assets live in the image; also the working directory.
pub const APP_DIR: &str = "/app";

/// A configuration error. Always names the key and the file it came from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// A metadata value of the wrong type or a bad value.
    #[error("invalid `{key}` in {table} of {manifest}: {message}")]
    #[diagnostic(code(containerize::config), help("{help}"))]
    Invalid {
        /// The TOML table, e.g. `[package.metadata.containerize]`.
        table: String,
        /// The Cargo.toml, relative to the workspace root where possible.
        manifest: String,
        /// Dotted path of the offending key inside the table.
        key: String,
        /// What is wrong.
        message: String,
        /// `--> Cargo.toml:LINE:COL` (once located) and what to read (boxed: a `str`
        /// keeps the error small).
        help: Box<str>,
    },
    /// A key the table does not have (`deny_unknown_fields`).
    #[error("unknown key `{}` in {} of {}", .0.key, .0.table, .0.manifest)]
    #[diagnostic(code(containerize::config), help("{}", .0.help))]
    UnknownKey(Box<UnknownKey>),
    /// A value given on the command line or in the environment that does not parse.
    #[error("invalid value for {origin}: {message}")]
    #[diagnostic(code(containerize::usage))]
    BadArg {
        /// The flag or variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// What [`ConfigError::UnknownKey`] says (boxed: errors stay small on the happy path).
#[derive(Debug)]
pub struct UnknownKey {
    /// The TOML table the key is in, e.g. `[package.metadata.containerize.kubernetes]`.
    pub table: String,
    /// The Cargo.toml.
    pub manifest: String,
    /// The key as written.
    pub key: String,
    /// Where the key is inside the containerize table (`kubernetes.perod-seconds`).
    pub path: String,
    /// The containerize table (for locating the key).
    pub root_table: String,
    /// `--> …`, "did you mean", and the valid keys.
    pub help: Box<str>,
}

/// Where a resolved value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built-in default.
    Default,
    /// `[workspace.metadata.containerize]` of this manifest.
    Workspace(String),
    /// `[package.metadata.containerize]` of this manifest.
    Package(String),
    /// `[package.metadata.containerize.bin.<name>]` of this manifest.
    Bin(String, String),
    /// `--platform` or `CARGO_CONTAINERIZE_PLATFORM`.
    Cli(&'static str),
}

impl Source {
    pub(crate) fn table(&self) -> String {
        match self {
            Source::Default => "defaults".into(),
            Source::Workspace(_) => "[workspace.metadata.containerize]".into(),
            Source::Package(_) => "[package.metadata.containerize]".into(),
            Source::Bin(_, bin) => format!("[package.metadata.containerize.bin.{bin}]"),
            Source::Cli(flag) => (*flag).into(),
        }
    }
    pub(crate) fn manifest(&self) -> String {
        match self {
            Source::Workspace(m) | Source::Package(m) | Source::Bin(m, _) => m.clone(),
            Source::Default | Source::Cli(_) => String::new(),
        }
    }
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        match self {
            Source::Cli(flag) => ConfigError::BadArg {
                origin: (*flag).into(),
                message: message.into(),
            },
            _ => ConfigError::Invalid {
                table: self.table(),
                manifest: self.manifest(),
                key: key.into(),
                message: explain::user_message(key, &message.into()),
                help: REFERENCE_HELP.into(),
            },
        }
    }

    /// The error for a key serde did not know: `key_path` is where it sits inside this
    /// source's table (`kubernetes.perod-seconds`), `valid` the keys its table has.
    pub(crate) fn unknown_key(&self, key_path: &str, valid: &[String]) -> ConfigError {
        let (parent, key) = match key_path.rsplit_once('.') {
            Some((parent, key)) => (Some(parent), key),
            None => (None, key_path),
        };
        let table = match parent {
            Some(p) => format!("[{}.{p}]", self.table().trim_matches(['[', ']'])),
            None => self.table(),
        };
        let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
        let mut hint = String::new();
        if let Some(s) = explain::did_you_mean(key, &valid) {
            hint.push_str(&format!("did you mean `{s}`?\n"));
        }
        if !valid.is_empty() {
            let list: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
            hint.push_str(&format!("note: expected one of: {}\n", list.join(", ")));
        }
        hint.push_str(REFERENCE_HELP);
        ConfigError::UnknownKey(Box::new(UnknownKey {
            table,
            manifest: self.manifest(),
            key: key.to_string(),
            path: key_path.to_string(),
            root_table: self.table(),
            help: hint.into(),
        }))
    }
}

const REFERENCE_HELP: &str =
    "note: the configuration reference in the README lists every key and its type";

impl ConfigError {
    /// The error with the `Cargo.toml:LINE:COL` of its key, read from the manifest under
    /// the workspace `root` (unchanged when it is not a metadata error or the file cannot
    /// be read).
    pub fn located(mut self, root: &std::path::Path) -> ConfigError {
        let (manifest, table, key, help) = match &mut self {
            ConfigError::Invalid {
                manifest,
                table,
                key,
                help,
                ..
            } => (&*manifest, &*table, &*key, help),
            ConfigError::UnknownKey(u) => (&u.manifest, &u.root_table, &u.path, &mut u.help),
            ConfigError::BadArg { .. } => return self,
        };
        if !help.starts_with("-->")
            && let Some(at) = explain::locate(root, manifest, table, key)
        {
            *help = format!("--> {at}\n{help}").into();
        }
        self
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default | Source::Cli(_) => f.write_str(&self.table()),
            _ => write!(f, "{} of {}", self.table(), self.manifest()),
        }
    }
}

/// How cargo is asked to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoOptions {
    /// `--profile`.
    pub profile: String,
    /// `--features`, as given.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// `--locked`.
    pub locked: bool,
    /// `--frozen`.
    pub frozen: bool,
    /// `--offline`.
    pub offline: bool,
    /// `--config KEY=VALUE` (or a file), passed to every cargo call as given.
    pub config: Vec<String>,
    /// `-j`.
    pub jobs: Option<u32>,
    /// `--target-dir`.
    pub target_dir: Option<PathBuf>,
    /// Number of `-v` given.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// The user's rustflags from the environment, which ours are appended to.
    pub user_rustflags: UserRustflags,
    /// `$CARGO_HOME` (or `~/.cargo`), remapped out of binaries.
    pub cargo_home: Option<PathBuf>,
    /// The cargo to run: `$CARGO` (set when invoked as `cargo containerize`), else `cargo`.
    pub cargo_bin: PathBuf,
    /// `$PATH`, searched for C toolchains.
    pub path: Option<String>,
    /// The user set `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER`.
    pub aarch64_linker_set: bool,
    /// The variables cargo, rustup and rustc read (what can change `cargo metadata`'s
    /// answer): every `CARGO_*` but ours and `CARGO_TERM_*`, `RUSTUP_*`, `RUSTC*`,
    /// `RUSTFLAGS`, `CARGO`, `PATH`, `HOME`.
    pub cargo_env: BTreeMap<String, String>,
}

/// Whether cargo, rustup or rustc read `name` in a way that can change `cargo metadata`.
fn cargo_reads(name: &str) -> bool {
    (name.starts_with("CARGO_")
        && !name.starts_with("CARGO_CONTAINERIZE_")
        && !name.starts_with("CARGO_TERM_"))
        || name.starts_with("RUSTUP_")
        || name.starts_with("RUSTC")
        || matches!(name, "CARGO" | "RUSTFLAGS" | "PATH" | "HOME")
}

/// The user's own rustflags, from the environment variables cargo reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UserRustflags {
    /// Neither variable is set (config-file rustflags may still apply).
    #[default]
    None,
    /// `CARGO_ENCODED_RUSTFLAGS` (0x1f-separated) or `RUSTFLAGS` (whitespace-separated),
    /// split into arguments.
    Env(Vec<String>),
}

/// Which packages and binaries to package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-p`.
    pub packages: Vec<String>,
    /// `--workspace`.
    pub workspace: bool,
    /// `--exclude`.
    pub exclude: Vec<String>,
    /// `--bin`.
    pub bins: Vec<String>,
}

/// Everything resolved from the command line and environment (not yet the metadata).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// What to package.
    pub selection: Selection,
    /// How to build.
    pub cargo: CargoOptions,
    /// `--platform`/`CARGO_CONTAINERIZE_PLATFORM`, overriding the metadata.
    pub platforms: Option<Vec<Platform>>,
    /// `-t` tags; empty means the defaults.
    pub tags: Vec<String>,
    /// gzip level.
    pub compression_level: u32,
    /// `--compression`/`CARGO_CONTAINERIZE_COMPRESSION` (over the metadata's).
    pub compression: Option<Compression>,
    /// Extra OCI layout.
    pub oci_layout_path: Option<PathBuf>,
    /// OCI archive output.
    pub tarball: Option<PathBuf>,
    /// `--tarball-platform`: the platform `manifest.json` describes (`None`: the host's).
    pub tarball_platform: Option<Platform>,
    /// `--load`: the container runtime to load the images into.
    pub load: Option<LoadTarget>,
    /// `SOURCE_DATE_EPOCH`, if set.
    pub source_date_epoch: Option<u64>,
    /// `--push`.
    pub push: bool,
    /// `--per-platform`: push each platform's image under `TAG-ARCH` tags, no index.
    pub per_platform: bool,
    /// `--sbom-dir`: the SBOMs go there instead of next to each image.
    pub sbom_dir: Option<PathBuf>,
    /// `--tag-only`: references by tag, without the digest.
    pub tag_only: bool,
    /// `--message-format`.
    pub message_format: MessageFormat,
    /// `--base`: a registry image instead of the built-in base.
    pub base: Option<String>,
    /// How to talk to registries (push, `--base`).
    pub registry: RegistrySettings,
    /// `--repo`/`CARGO_CONTAINERIZE_REPO` (overrides the metadata's `repository`).
    pub repo: Option<String>,
    /// `--naming`.
    pub naming: Naming,
    /// `--tag-from-git`.
    pub tag_from_git: bool,
    /// `--image-refs`.
    pub image_refs: Option<PathBuf>,
    /// The command line's layer of image settings (`--image-label`, `--image-annotation`),
    /// applied over every image's metadata layers.
    pub overrides: ImageLayer,
    /// `--sbom`: the SBOM formats, sorted; empty with `--sbom none`.
    pub sbom: Vec<SbomFormat>,
    /// `--no-kube`: write no Kubernetes YAML.
    pub no_kube: bool,
    /// `--kube-dir`: where Kubernetes YAML goes instead of `target/containerize/`.
    pub kube_dir: Option<PathBuf>,
    /// `--no-compose`: write no `compose.yaml`.
    pub no_compose: bool,
    /// `--auditable[=BOOL]`: overrides every image's `auditable`.
    pub auditable: Option<bool>,
    /// `--provenance[=BOOL]`: overrides every image's `provenance`.
    pub provenance: Option<bool>,
    /// `--sign-key`/`CARGO_CONTAINERIZE_SIGN_KEY`: sign images and attestations with it.
    pub sign: Option<SignSettings>,
    /// The CI run this is, if any (for the provenance's builder and invocation).
    pub ci: CiRun,
    /// `--audit` (or `cargo containerize audit`): the vulnerability gate.
    pub audit: Option<audit::AuditSettings>,
    /// Shell verbosity.
    pub verbosity: Verbosity,
    /// `merge --from`: the `image.json` files of `--push --per-platform` runs.
    pub merge_from: Vec<PathBuf>,
}

impl From<MessageFormatArg> for MessageFormat {
    fn from(arg: MessageFormatArg) -> Self {
        match arg {
            MessageFormatArg::Human => MessageFormat::Human,
            MessageFormatArg::Json => MessageFormat::Json,
        }
    }
}

/// How image names are formed under a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// `<repo>/<bin>`.
    #[default]
    Bin,
    /// `<repo>/<package>`.
    Package,
    /// `<repo>`.
    Bare,
}

/// The environment variables this tool reads (besides clap's), captured once so tests
/// can pass their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// What cargo reads ([`CargoOptions::cargo_env`]).
    cargo: BTreeMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        let keys = [
            "SOURCE_DATE_EPOCH",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_HOME",
            "HOME",
            "CARGO",
            "PATH",
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER",
            "DOCKER_CONFIG",
            "REGISTRY_AUTH_FILE",
            "XDG_RUNTIME_DIR",
            "CARGO_CONTAINERIZE_REGISTRY_USERNAME",
            "CARGO_CONTAINERIZE_REGISTRY_PASSWORD",
            "CARGO_CONTAINERIZE_SIGN_PASSWORD",
            "COSIGN_PASSWORD",
            crate::cli::AUDIT_SEVERITY_ENV,
            crate::cli::ADVISORY_DB_ENV,
            crate::cli::ADVISORY_DB_URL_ENV,
            "CARGO_CONTAINERIZE_RETRY_ATTEMPTS",
            "CARGO_CONTAINERIZE_RETRY_BASE_MS",
            "CARGO_CONTAINERIZE_CONNECT_TIMEOUT",
            "CARGO_CONTAINERIZE_READ_TIMEOUT",
            "CARGO_CONTAINERIZE_REQUEST_TIMEOUT",
            "GITHUB_ACTIONS",
            "GITHUB_SERVER_URL",
            "GITHUB_REPOSITORY",
            "GITHUB_WORKFLOW_REF",
            "GITHUB_REF",
            "GITHUB_SHA",
            "GITHUB_RUN_ID",
            "GITHUB_RUN_ATTEMPT",
            "CARGO_TERM_COLOR",
            "NO_COLOR",
            "TERM",
        ];
        #[allow(clippy::disallowed_methods)]
        let vars = keys
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let cargo = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| cargo_reads(k))
            .collect();
        Env { vars, cargo }
    }

    /// An environment from pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let cargo = vars
            .iter()
            .filter(|(k, _)| cargo_reads(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Env { vars, cargo }
    }

    /// Whether stderr gets colours: `--color`, else `CARGO_TERM_COLOR`, else auto (a
    /// terminal, no `NO_COLOR`, not `TERM=dumb`), as cargo decides. An unknown value
    /// counts as auto (clap refuses a bad `--color` itself).
    pub fn color_choice(&self, flag: Option<&str>) -> ColorChoice {
        flag.or(self.get("CARGO_TERM_COLOR"))
            .and_then(ColorChoice::parse)
            .unwrap_or_default()
    }

    /// [`Env::color_choice`] applied to a stream that is (or is not) a terminal.
    pub fn color_enabled(&self, choice: ColorChoice, is_terminal: bool) -> bool {
        choice.enabled(
            is_terminal,
            self.get("NO_COLOR").is_some(),
            self.get("TERM") == Some("dumb"),
        )
    }

    /// Whether the variable `k` is set (so a clap value with `env = k` may be its).
    pub fn is_set(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.vars
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Resolves the command line and environment into [`Settings`].
pub fn resolve(args: BuildArgs, env: &Env) -> Result<Settings, ConfigError> {
    let platforms = if args.platform.is_empty() {
        None
    } else {
        let p = parse_platforms(&args.platform)
            .map_err(|e| Source::Cli("--platform").error("platform", e.to_string()))?;
        Some(p)
    };
    let tarball_platform = match &args.tarball_platform {
        None => None,
        Some(p) => Some(p.trim().parse::<Platform>().map_err(|e| {
            Source::Cli("--tarball-platform").error("tarball-platform", e.to_string())
        })?),
    };
    let source_date_epoch = match env.get("SOURCE_DATE_EPOCH") {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| ConfigError::BadArg {
            origin: "SOURCE_DATE_EPOCH".into(),
            message: format!("`{v}` is not a number of seconds since 1970"),
        })?),
    };
    let user_rustflags = if let Some(enc) = env.get("CARGO_ENCODED_RUSTFLAGS") {
        UserRustflags::Env(enc.split('\x1f').map(String::from).collect())
    } else if let Some(flags) = env.get("RUSTFLAGS") {
        UserRustflags::Env(flags.split_whitespace().map(String::from).collect())
    } else {
        UserRustflags::None
    };
    let cargo_home = env
        .get("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(user) = &args.image_user {
        metadata::validate_user(user).map_err(|message| ConfigError::BadArg {
            origin: "--image-user".into(),
            message,
        })?;
    }
    for tag in &args.tags {
        validate_tag(tag).map_err(|message| ConfigError::BadArg {
            origin: "--tag".into(),
            message,
        })?;
    }
    let registry = registry_settings(&args, env)?;
    let audit = audit_settings(&args, env, cargo_home.as_deref())?;
    let naming = match args.naming {
        NamingArg::Bin => Naming::Bin,
        NamingArg::Package => Naming::Package,
        NamingArg::Bare => Naming::Bare,
    };
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    Ok(Settings {
        manifest_path: args.manifest.manifest_path,
        selection: Selection {
            packages: args.workspace.package,
            workspace: args.workspace.workspace || args.workspace.all,
            exclude: args.workspace.exclude,
            bins: args.bins,
        },
        cargo: CargoOptions {
            profile: args.profile,
            features: args.features.features,
            all_features: args.features.all_features,
            no_default_features: args.features.no_default_features,
            locked: args.locked,
            frozen: args.frozen,
            offline: args.offline,
            jobs: args.jobs,
            target_dir: args.target_dir,
            config: args.cargo_config,
            verbose: args.verbose,
            quiet: args.quiet,
            user_rustflags,
            cargo_home,
            cargo_bin: PathBuf::from(env.get("CARGO").unwrap_or("cargo")),
            path: env.get("PATH").map(String::from),
            aarch64_linker_set: env
                .get("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER")
                .is_some(),
            cargo_env: env.cargo.clone(),
        },
        platforms,
        tags: args.tags,
        compression_level: args.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL),
        compression: args.compression.map(|c| match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        }),
        oci_layout_path: args.oci_layout_path,
        tarball: args.tarball,
        tarball_platform,
        load: args.load.map(|runtime| LoadTarget {
            runtime: match runtime {
                LoadArg::Auto => Runtime::Auto,
                LoadArg::Docker => Runtime::Docker,
                LoadArg::Podman => Runtime::Podman,
                LoadArg::Containerd => Runtime::Containerd,
            },
            containerd_namespace: args.containerd_namespace.clone(),
        }),
        source_date_epoch,
        verbosity,
        push: args.push.unwrap_or(false),
        per_platform: args.per_platform,
        // Absolute, as every path in the event stream is.
        sbom_dir: args.sbom_dir.map(|d| std::path::absolute(&d).unwrap_or(d)),
        tag_only: args.tag_only,
        message_format: args.message_format.into(),
        base: args.base,
        registry,
        repo: args.repo,
        naming,
        tag_from_git: args.tag_from_git,
        image_refs: args.image_refs,
        overrides: ImageLayer {
            labels: Some(args.image_labels.iter().cloned().collect()),
            annotations: Some(args.image_annotations.iter().cloned().collect()),
            user: args.image_user,
            ..ImageLayer::default()
        },
        sbom: sbom_formats(&args.sbom)?,
        no_kube: args.no_kube,
        no_compose: args.no_compose,
        auditable: args.auditable,
        provenance: args.provenance,
        sign: args.sign_key.map(|key| SignSettings {
            key: std::path::absolute(&key).unwrap_or(key),
            passphrase: env
                .get("CARGO_CONTAINERIZE_SIGN_PASSWORD")
                .or_else(|| env.get("COSIGN_PASSWORD"))
                .map(|p| Passphrase(p.to_string())),
        }),
        ci: CiRun::from_env(env),
        kube_dir: args.kube_dir,
        audit,
        merge_from: Vec::new(),
    })
}

/// The audit flags, when the run audits (`--audit`).
fn audit_settings(
    args: &BuildArgs,
    env: &Env,
    cargo_home: Option<&std::path::Path>,
) -> Result<Option<audit::AuditSettings>, ConfigError> {
    if !args.audit {
        return Ok(None);
    }
    audit::validate_cli_ignores(&args.ignore)?;
    let db = match (&args.advisory_db, cargo_home) {
        (Some(p), _) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        (None, Some(home)) => home.join("advisory-db"),
        (None, None) => {
            return Err(ConfigError::BadArg {
                origin: "--advisory-db".into(),
                message: "neither CARGO_HOME nor HOME is set, so there is no default advisory database: give its path with --advisory-db".into(),
            });
        }
    };
    let net_offline = env
        .cargo
        .get("CARGO_NET_OFFLINE")
        .is_some_and(|v| v == "true" || v == "1");
    let mut deny: Vec<audit::Deny> = args
        .deny
        .iter()
        .map(|d| match d {
            DenyArg::Warnings => audit::Deny::Warnings,
            DenyArg::Unmaintained => audit::Deny::Unmaintained,
            DenyArg::Unsound => audit::Deny::Unsound,
            DenyArg::Yanked => audit::Deny::Yanked,
        })
        .collect();
    deny.sort();
    deny.dedup();
    Ok(Some(audit::AuditSettings {
        severity: args.severity.map(|s| match s {
            SeverityArg::Low => audit::Severity::Low,
            SeverityArg::Medium => audit::Severity::Medium,
            SeverityArg::High => audit::Severity::High,
            SeverityArg::Critical => audit::Severity::Critical,
        }),
        ignore: args.ignore.clone(),
        deny,
        db,
        db_url: args
            .advisory_db_url
            .clone()
            .unwrap_or_else(|| audit::DEFAULT_DB_URL.to_string()),
        offline: args.offline || args.frozen || net_offline,
    }))
}

/// `--sign-key`: the key file and the passphrase that opens a cosign key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignSettings {
    /// The private key (PEM, or cosign's encrypted `cosign.key`).
    pub key: PathBuf,
    /// `CARGO_CONTAINERIZE_SIGN_PASSWORD` (else `COSIGN_PASSWORD`).
    pub passphrase: Option<Passphrase>,
}

/// A key's passphrase; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(pub String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where credentials live: explicit CI variables, docker's config, podman's auth.json.
pub fn auth_sources(env: &Env) -> Result<AuthSources, ConfigError> {
    let user = env.get("CARGO_CONTAINERIZE_REGISTRY_USERNAME");
    let pass = env.get("CARGO_CONTAINERIZE_REGISTRY_PASSWORD");
    let explicit = match (user, pass) {
        (Some(u), Some(p)) => Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        }),
        (None, None) => None,
        _ => {
            return Err(ConfigError::BadArg {
                origin: "CARGO_CONTAINERIZE_REGISTRY_USERNAME/_PASSWORD".into(),
                message: "set both variables, or neither".into(),
            });
        }
    };
    let home = env.get("HOME").map(PathBuf::from);
    let docker_dir = env
        .get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".docker")));
    let mut podman = Vec::new();
    if let Some(f) = env.get("REGISTRY_AUTH_FILE") {
        podman.push(PathBuf::from(f));
    } else if let Some(d) = env.get("XDG_RUNTIME_DIR") {
        podman.push(PathBuf::from(d).join("containers/auth.json"));
    }
    Ok(AuthSources {
        env: explicit,
        docker_config: docker_dir.map(|d| d.join("config.json")),
        podman_auth: podman,
    })
}

fn registry_settings(args: &BuildArgs, env: &Env) -> Result<RegistrySettings, ConfigError> {
    registry::resolve_registry(
        args.insecure_registry.clone(),
        args.registry_ca.clone(),
        args.jobs,
        env,
    )
}

/// How layers are compressed (`--compression`, metadata `compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`: every runtime reads it.
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`: containerd 1.5+, podman, docker 23+.
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// A GitHub Actions run, from its default environment variables
/// (<https://docs.github.com/en/actions/reference/variables-reference>); all `None` outside
/// Actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiRun {
    /// `GITHUB_SERVER_URL` (`https://github.com`).
    pub server_url: Option<String>,
    /// `GITHUB_REPOSITORY` (`owner/repo`).
    pub repository: Option<String>,
    /// `GITHUB_WORKFLOW_REF` (`owner/repo/.github/workflows/file.yml@refs/heads/main`).
    pub workflow_ref: Option<String>,
    /// `GITHUB_REF` (`refs/heads/main`).
    pub git_ref: Option<String>,
    /// `GITHUB_SHA`: the commit the run checked out.
    pub sha: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: Option<String>,
}

impl CiRun {
    /// Read only when `GITHUB_ACTIONS=true`, so a stray variable on a laptop does not
    /// make a local build claim a CI builder.
    fn from_env(env: &Env) -> Self {
        if env.get("GITHUB_ACTIONS") != Some("true") {
            return CiRun::default();
        }
        let get = |k: &str| env.get(k).map(String::from);
        CiRun {
            server_url: get("GITHUB_SERVER_URL"),
            repository: get("GITHUB_REPOSITORY"),
            workflow_ref: get("GITHUB_WORKFLOW_REF"),
            git_ref: get("GITHUB_REF"),
            sha: get("GITHUB_SHA"),
            run_id: get("GITHUB_RUN_ID"),
            run_attempt: get("GITHUB_RUN_ATTEMPT"),
        }
    }
}

/// One SBOM format of `--sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON (the default).
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `--sbom a,b`: the formats, sorted and once each; `none` alone means none.
fn sbom_formats(args: &[SbomArg]) -> Result<Vec<SbomFormat>, ConfigError> {
    let none = args.contains(&SbomArg::None);
    let mut out: Vec<SbomFormat> = args
        .iter()
        .filter_map(|a| match a {
            SbomArg::Cyclonedx => Some(SbomFormat::CycloneDx),
            SbomArg::Spdx => Some(SbomFormat::Spdx),
            SbomArg::None => None,
        })
        .collect();
    if none && !out.is_empty() {
        return Err(ConfigError::BadArg {
            origin: "--sbom".into(),
            message: "`none` cannot be combined with a format; pass `--sbom none` alone, or the formats (`--sbom cyclonedx,spdx`)".into(),
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where `--load` puts the images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTarget {
    /// The runtime.
    pub runtime: Runtime,
    /// containerd's namespace.
    pub containerd_namespace: String,
}

/// A local container runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// docker if its daemon answers, else podman.
    Auto,
    /// `docker load`.
    Docker,
    /// `podman load`.
    Podman,
    /// `ctr images import`.
    Containerd,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(validate_tag("v1.2.3").is_ok());
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag("a/b").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }
}
