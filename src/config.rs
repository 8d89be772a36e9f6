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

use serde::Deserialize;
use serde_json::Value;

use crate::cli::{BuildArgs, MessageFormatArg, NamingArg, SbomArg};
use crate::output::{MessageFormat, Verbosity};
use crate::platform::{Platform, parse_platforms};
use crate::registry::RegistrySettings;
use crate::registry::auth::{AuthSources, Credential};
use crate::registry::retry::RetryPolicy;

/// Default gzip level for layers: zlib's default, a good size/speed balance for binaries.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;
/// The user images run as unless configured: distroless `nonroot`.
pub const DEFAULT_USER: &str = "65532:65532";
/// Where the binary and its assets live in the image; also the working directory.
pub const APP_DIR: &str = "/app";

/// A configuration error. Always names the key and the file it came from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    /// A metadata table that does not parse (unknown key, wrong type, bad value).
    #[error("invalid `{key}` in {table} of {manifest}: {message}")]
    #[diagnostic(
        code(containerize::config),
        help("see the configuration reference in the README for the keys and their types")
    )]
    Invalid {
        /// The TOML table, e.g. `[package.metadata.containerize]`.
        table: String,
        /// The Cargo.toml, relative to the workspace root where possible.
        manifest: String,
        /// Dotted path of the offending key inside the table.
        key: String,
        /// What is wrong.
        message: String,
    },
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
    fn table(&self) -> String {
        match self {
            Source::Default => "defaults".into(),
            Source::Workspace(_) => "[workspace.metadata.containerize]".into(),
            Source::Package(_) => "[package.metadata.containerize]".into(),
            Source::Bin(_, bin) => format!("[package.metadata.containerize.bin.{bin}]"),
            Source::Cli(flag) => (*flag).into(),
        }
    }
    fn manifest(&self) -> String {
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
                message: message.into(),
            },
        }
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

/// An exposed port: `8080` or `"8080/tcp"` or `"53/udp"` in Cargo.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// 1-65535.
    pub number: u16,
    /// `tcp` or `udp`.
    pub udp: bool,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.number,
            if self.udp { "udp" } else { "tcp" }
        )
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number 1-65535 or a string like \"8080/tcp\" or \"53/udp\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Port, E> {
                match u16::try_from(n) {
                    Ok(number) if number > 0 => Ok(Port { number, udp: false }),
                    _ => Err(E::custom(format!("port {n} is out of range 1-65535"))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Port, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("port {n} is out of range 1-65535"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Port, E> {
                let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
                let udp = match proto {
                    "tcp" => false,
                    "udp" => true,
                    other => {
                        return Err(E::custom(format!(
                            "unknown protocol `{other}` in port \"{s}\" (expected tcp or udp)"
                        )));
                    }
                };
                let n: u64 = num
                    .parse()
                    .map_err(|_| E::custom(format!("\"{s}\" is not a port like \"8080/tcp\"")))?;
                Ok(Port {
                    udp,
                    ..self.visit_u64(n)?
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[*.metadata.containerize]` table (or a `bin.<name>` sub-table), as written.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageLayer {
    /// Arguments passed to the binary (the image's `Cmd`).
    pub args: Option<Vec<String>>,
    /// Environment variables set in the image (merged across layers).
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory (absolute).
    pub workdir: Option<String>,
    /// `uid[:gid]` or a name from the image's /etc/passwd.
    pub user: Option<String>,
    /// Ports the service listens on.
    pub exposed_ports: Option<Vec<Port>>,
    /// Image config labels (merged across layers).
    pub labels: Option<BTreeMap<String, String>>,
    /// Manifest annotations (merged across layers).
    pub annotations: Option<BTreeMap<String, String>>,
    /// A directory, relative to the package, copied into the image.
    pub assets: Option<String>,
    /// Where `assets` goes in the image (default `/app/<dir name>`).
    pub assets_dest: Option<String>,
    /// Platforms to build, e.g. `["linux/amd64", "linux/arm64"]` or `["all"]`.
    pub platforms: Option<Vec<String>>,
    /// Registry and namespace to push to (`ghcr.io/my-org`).
    pub repository: Option<String>,
    /// Kubernetes YAML settings (`[…containerize.kubernetes]`).
    pub kubernetes: Option<crate::kube::KubeLayer>,
}

/// A package's `[package.metadata.containerize]`: its own layer plus per-binary layers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PackageConfig {
    /// The package-wide layer.
    pub package: ImageLayer,
    /// `bin.<name>` layers.
    pub bins: BTreeMap<String, ImageLayer>,
}

fn containerize_table<'v>(
    metadata: &'v Value,
    source: &Source,
) -> Result<Option<&'v serde_json::Map<String, Value>>, ConfigError> {
    match metadata.get("containerize") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(source.error("containerize", "expected a table")),
    }
}

fn parse_layer(value: Value, source: &Source) -> Result<ImageLayer, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let key = err.path().to_string();
        source.error(&key, err.into_inner().to_string())
    })
}

/// Parses `[workspace.metadata.containerize]` from `cargo metadata`'s workspace metadata.
pub fn parse_workspace_config(metadata: &Value, manifest: &str) -> Result<ImageLayer, ConfigError> {
    let source = Source::Workspace(manifest.to_string());
    match containerize_table(metadata, &source)? {
        None => Ok(ImageLayer::default()),
        Some(map) => parse_layer(Value::Object(map.clone()), &source),
    }
}

/// Parses `[package.metadata.containerize]` (with its `bin.<name>` tables).
pub fn parse_package_config(
    metadata: &Value,
    manifest: &str,
) -> Result<PackageConfig, ConfigError> {
    let source = Source::Package(manifest.to_string());
    let Some(map) = containerize_table(metadata, &source)? else {
        return Ok(PackageConfig::default());
    };
    let mut map = map.clone();
    let mut bins = BTreeMap::new();
    match map.remove("bin") {
        None => {}
        Some(Value::Object(tables)) => {
            for (name, table) in tables {
                let src = Source::Bin(manifest.to_string(), name.clone());
                if !table.is_object() {
                    return Err(src.error(&format!("bin.{name}"), "expected a table"));
                }
                bins.insert(name, parse_layer(table, &src)?);
            }
        }
        Some(_) => return Err(source.error("bin", "expected a table of binary names")),
    }
    let package = parse_layer(Value::Object(map), &source)?;
    Ok(PackageConfig { package, bins })
}

/// Everything configured for one image, resolved: no `Option` left except where absence
/// means something.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// `Cmd`.
    pub args: Vec<String>,
    /// `Env`, sorted.
    pub env: BTreeMap<String, String>,
    /// `WorkingDir`.
    pub workdir: String,
    /// `User`.
    pub user: String,
    /// `ExposedPorts`, sorted.
    pub exposed_ports: Vec<Port>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Assets directory (relative to the package root, as written) and where it goes.
    pub assets: Option<(String, String)>,
    /// Platforms, sorted.
    pub platforms: Vec<Platform>,
    /// Where the `assets` value came from (for errors about the directory).
    pub assets_source: Source,
    /// `repository` from the metadata, with where it came from.
    pub repository: Option<(String, Source)>,
    /// Kubernetes YAML settings, resolved.
    pub kubernetes: crate::kube::KubeSettings,
}

/// Merges layers (lowest precedence first) with the CLI platform override into the
/// settings of one image, validating every value against the layer it came from.
pub fn resolve_image(
    layers: &[(&ImageLayer, Source)],
    cli_platforms: Option<&[Platform]>,
) -> Result<ImageSettings, ConfigError> {
    let mut s = ImageSettings {
        args: Vec::new(),
        env: BTreeMap::new(),
        workdir: APP_DIR.to_string(),
        user: DEFAULT_USER.to_string(),
        exposed_ports: Vec::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        assets: None,
        platforms: vec![Platform::LinuxAmd64],
        assets_source: Source::Default,
        repository: None,
        kubernetes: crate::kube::KubeSettings::default(),
    };
    let mut assets_dest: Option<String> = None;
    for (layer, source) in layers {
        if let Some(v) = &layer.args {
            s.args = v.clone();
        }
        if let Some(env) = &layer.env {
            for (k, v) in env {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(source.error(&format!("env.{k}"), "not a valid variable name"));
                }
                s.env.insert(k.clone(), v.clone());
            }
        }
        if let Some(w) = &layer.workdir {
            if !w.starts_with('/') {
                return Err(source.error("workdir", format!("`{w}` is not an absolute path")));
            }
            s.workdir = w.clone();
        }
        if let Some(u) = &layer.user {
            validate_user(u).map_err(|m| source.error("user", m))?;
            s.user = u.clone();
        }
        if let Some(p) = &layer.exposed_ports {
            s.exposed_ports = p.clone();
        }
        if let Some(l) = &layer.labels {
            s.labels.extend(l.clone());
        }
        if let Some(a) = &layer.annotations {
            s.annotations.extend(a.clone());
        }
        if let Some(dir) = &layer.assets {
            if dir.is_empty() || dir.starts_with('/') {
                return Err(source.error(
                    "assets",
                    format!("`{dir}` must be a directory relative to the package"),
                ));
            }
            s.assets = Some((dir.clone(), String::new()));
            s.assets_source = source.clone();
        }
        if let Some(dest) = &layer.assets_dest {
            if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
                return Err(source.error(
                    "assets-dest",
                    format!("`{dest}` must be an absolute path without `..`"),
                ));
            }
            assets_dest = Some(dest.clone());
        }
        if let Some(r) = &layer.repository {
            s.repository = Some((r.clone(), source.clone()));
        }
        if let Some(p) = &layer.platforms {
            s.platforms =
                parse_platforms(p).map_err(|e| source.error("platforms", e.to_string()))?;
            if s.platforms.is_empty() {
                return Err(source.error("platforms", "the list is empty"));
            }
        }
    }
    if let Some(p) = cli_platforms {
        s.platforms = p.to_vec();
    }
    s.exposed_ports.sort();
    s.exposed_ports.dedup();
    let kube_layers: Vec<_> = layers
        .iter()
        .filter_map(|(l, src)| l.kubernetes.as_ref().map(|k| (k, src)))
        .collect();
    s.kubernetes = crate::kube::settings::resolve(&kube_layers, &s.exposed_ports)?;
    if let Some((dir, dest)) = &mut s.assets {
        *dest = assets_dest.unwrap_or_else(|| {
            let name = dir.trim_end_matches('/').rsplit('/').next().unwrap_or(dir);
            format!("{APP_DIR}/{name}")
        });
    } else if assets_dest.is_some() {
        let src = layers
            .last()
            .map(|l| l.1.clone())
            .unwrap_or(Source::Default);
        return Err(src.error("assets-dest", "is set but `assets` is not"));
    }
    Ok(s)
}

fn validate_user(u: &str) -> Result<(), String> {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    let mut parts = u.split(':');
    let user = parts.next().unwrap_or_default();
    let group = parts.next();
    if parts.next().is_some() || !ok(user) || group.is_some_and(|g| !ok(g)) {
        return Err(format!("`{u}` is not `uid[:gid]` or `name[:group]`"));
    }
    Ok(())
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
    /// Extra OCI layout.
    pub oci_layout_path: Option<PathBuf>,
    /// OCI archive output.
    pub tarball: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`, if set.
    pub source_date_epoch: Option<u64>,
    /// `--push`.
    pub push: bool,
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
    /// `--sbom`.
    pub sbom: crate::sbom::SbomFormat,
    /// `--no-kube`: write no Kubernetes YAML.
    pub no_kube: bool,
    /// `--kube-dir`: where Kubernetes YAML goes instead of `target/containerize/`.
    pub kube_dir: Option<PathBuf>,
    /// Shell verbosity.
    pub verbosity: Verbosity,
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
            "CARGO_CONTAINERIZE_RETRY_ATTEMPTS",
            "CARGO_CONTAINERIZE_RETRY_BASE_MS",
        ];
        #[allow(clippy::disallowed_methods)]
        let vars = keys
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Env { vars }
    }

    /// An environment from pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
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
    for tag in &args.tags {
        validate_tag(tag).map_err(|message| ConfigError::BadArg {
            origin: "--tag".into(),
            message,
        })?;
    }
    let registry = registry_settings(&args, env)?;
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
            verbose: args.verbose,
            quiet: args.quiet,
            user_rustflags,
            cargo_home,
            cargo_bin: PathBuf::from(env.get("CARGO").unwrap_or("cargo")),
            path: env.get("PATH").map(String::from),
            aarch64_linker_set: env
                .get("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER")
                .is_some(),
        },
        platforms,
        tags: args.tags,
        compression_level: args.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL),
        oci_layout_path: args.oci_layout_path,
        tarball: args.tarball,
        source_date_epoch,
        verbosity,
        push: args.push,
        message_format: args.message_format.into(),
        base: args.base,
        registry,
        repo: args.repo,
        naming,
        tag_from_git: args.tag_from_git,
        image_refs: args.image_refs,
        sbom: match args.sbom {
            SbomArg::Cyclonedx => crate::sbom::SbomFormat::CycloneDx,
            SbomArg::None => crate::sbom::SbomFormat::None,
        },
        no_kube: args.no_kube,
        kube_dir: args.kube_dir,
    })
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
    let number = |key: &str| -> Result<Option<u64>, ConfigError> {
        env.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| ConfigError::BadArg {
                    origin: key.into(),
                    message: format!("`{v}` is not a number"),
                })
            })
            .transpose()
    };
    let mut retry = RetryPolicy::default();
    if let Some(n) = number("CARGO_CONTAINERIZE_RETRY_ATTEMPTS")? {
        retry.attempts = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    }
    if let Some(ms) = number("CARGO_CONTAINERIZE_RETRY_BASE_MS")? {
        retry.base = std::time::Duration::from_millis(ms);
    }
    Ok(RegistrySettings {
        auth: auth_sources(env)?,
        insecure_registries: args.insecure_registry.clone(),
        registry_ca: args.registry_ca.clone(),
        retry,
        jobs: args.jobs.map_or(4, |j| j.max(1) as usize),
    })
}

/// Checks a tag against the OCI distribution grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pkg(v: Value) -> Result<PackageConfig, ConfigError> {
        parse_package_config(&json!({ "containerize": v }), "crates/api/Cargo.toml")
    }

    #[test]
    fn unknown_key_names_key_table_and_file() {
        let err = pkg(json!({ "expose": [8080] })).unwrap_err().to_string();
        assert!(err.starts_with(
            "invalid `expose` in [package.metadata.containerize] of crates/api/Cargo.toml: unknown field `expose`, expected one of"
        ), "{err}");
        assert!(err.contains("`exposed-ports`"), "{err}");
    }

    #[test]
    fn wrong_type_in_bin_table_names_the_path() {
        let err = pkg(json!({ "bin": { "api": { "exposed-ports": [8080, 70000] } } }))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid `exposed-ports[1]` in [package.metadata.containerize.bin.api] of crates/api/Cargo.toml: port 70000 is out of range 1-65535"
        );
        let err = pkg(json!({ "env": ["A=1"] })).unwrap_err().to_string();
        assert!(err.contains("invalid `env`"), "{err}");
    }

    #[test]
    fn layers_merge_with_precedence_and_maps_extend() {
        let ws = ImageLayer {
            env: Some([("A".into(), "ws".into()), ("B".into(), "ws".into())].into()),
            platforms: Some(vec!["all".into()]),
            user: Some("1000".into()),
            ..Default::default()
        };
        let cfg = pkg(json!({
            "env": { "A": "pkg" },
            "exposed-ports": ["9090/udp", 8080],
            "assets": "static",
            "bin": { "api": { "args": ["serve"], "user": "65532:65532" } }
        }))
        .unwrap();
        let m = "Cargo.toml".to_string();
        let s = resolve_image(
            &[
                (&ws, Source::Workspace(m.clone())),
                (&cfg.package, Source::Package(m.clone())),
                (&cfg.bins["api"], Source::Bin(m, "api".into())),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.env["A"], "pkg");
        assert_eq!(s.env["B"], "ws");
        assert_eq!(s.args, ["serve"]);
        assert_eq!(s.user, "65532:65532");
        assert_eq!(s.platforms, Platform::ALL);
        assert_eq!(s.exposed_ports[0].to_string(), "8080/tcp");
        assert_eq!(s.exposed_ports[1].to_string(), "9090/udp");
        assert_eq!(s.assets, Some(("static".into(), "/app/static".into())));

        let cli = resolve_image(
            &[(&ws, Source::Workspace("Cargo.toml".into()))],
            Some(&[Platform::LinuxArm64]),
        )
        .unwrap();
        assert_eq!(cli.platforms, [Platform::LinuxArm64]);
    }

    #[test]
    fn bad_values_name_their_source() {
        let layer = ImageLayer {
            platforms: Some(vec!["windows/amd64".into()]),
            ..Default::default()
        };
        let err = resolve_image(&[(&layer, Source::Workspace("Cargo.toml".into()))], None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid `platforms` in [workspace.metadata.containerize] of Cargo.toml: unsupported platform `windows/amd64` (supported: linux/amd64, linux/arm64, all)"
        );
        let layer = ImageLayer {
            workdir: Some("app".into()),
            ..Default::default()
        };
        assert!(
            resolve_image(&[(&layer, Source::Package("a/Cargo.toml".into()))], None)
                .unwrap_err()
                .to_string()
                .contains("`app` is not an absolute path")
        );
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(validate_tag("v1.2.3").is_ok());
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag("a/b").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
    }
}
