//! Command-line flags (clap derive types only; no logic). `config` turns them into
//! `Settings`; nothing after that sees clap types.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

const AFTER_HELP: &str = "\
Configuration lives in [workspace.metadata.containerize], [package.metadata.containerize] and
[package.metadata.containerize.bin.<name>] of Cargo.toml; see the README for every key.
Outputs go to <target-dir>/containerize/: the OCI layout in oci/, one folder per image.
stdout carries one image reference per line, so `$(cargo containerize)` works in scripts.";

/// Build static musl binaries of a Cargo workspace and package them as distroless OCI
/// images, without Docker.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-containerize",
    bin_name = "cargo containerize",
    version,
    styles = clap_cargo::style::CLAP_STYLING,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one, builds and packages the images.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Coloring: auto, always, never [env: CARGO_TERM_COLOR]
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        value_parser = ["auto", "always", "never"],
        hide_possible_values = true
    )]
    pub color: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub build: BuildArgs,
}

/// Subcommands besides the default build.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check credentials against a registry and store them in docker's config.json
    Login(LoginArgs),
    /// Build, then replace containerize://BINARY references in YAML files with the image digests
    Resolve(Box<ResolveArgs>),
    /// Build, load into docker or podman, and run the one selected image as its Kubernetes Deployment would
    Run(Box<RunArgs>),
    /// Print what would be built and pushed, without building or writing anything (like --dry-run)
    Plan(Box<BuildArgs>),
    /// Build the binaries and write only their SBOMs (--sbom: CycloneDX by default), no images; prints each SBOM's path
    Sbom(Box<BuildArgs>),
    /// Join the per-platform images that `--push --per-platform` runs pushed (one CI runner per platform) into one multi-platform index, tag it and write its Kubernetes YAML
    Merge(Box<MergeArgs>),
    /// Check the crates linked into each image against the RustSec advisory database: fails on a vulnerability (exit 6), writes each image's CycloneDX vulnerabilities document
    Audit(Box<BuildArgs>),
    /// Check a pushed image: its signatures (with --key), SBOMs and provenance, then rebuild it from this checkout and compare it platform by platform
    Verify(Box<VerifyArgs>),
    /// Check the workspace for musl pitfalls (openssl, C compilers, rustup targets, the allocator, git) and say how to fix each
    Doctor(Box<BuildArgs>),
    /// Add a commented [package.metadata.containerize] section to a Cargo.toml, and optionally a GitHub workflow and the Kubernetes templates
    Init(InitArgs),
}

/// `login` flags.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Registry host, e.g. ghcr.io or 127.0.0.1:5000
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// Username
    #[arg(short, long)]
    pub username: String,
    /// Read the password (or token) from stdin
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Speak plain HTTP to the registry (loopback hosts always use HTTP)
    #[arg(long)]
    pub insecure: bool,
    /// Speak plain HTTP to this registry host (repeatable)
    #[arg(
        long,
        value_name = "HOST",
        env = "CARGO_CONTAINERIZE_INSECURE_REGISTRY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,
    /// Trust this CA certificate (PEM) for the registry, besides the system's
    #[arg(
        long,
        value_name = "FILE",
        env = "CARGO_CONTAINERIZE_REGISTRY_CA",
        hide_env_values = true
    )]
    pub registry_ca: Option<PathBuf>,
}

/// `cargo containerize run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The runtime to run in (default: docker if its daemon answers, else podman)
    #[arg(long, value_name = "RUNTIME", value_parser = ["docker", "podman"])]
    pub runtime: Option<String>,
    /// Set an environment variable in the container, KEY=VALUE (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Publish HOST:CONTAINER on 127.0.0.1 (repeatable; default: each exposed port on the same number)
    #[arg(long, value_name = "HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Arguments for the binary
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub build: BuildArgs,
}

/// `cargo containerize verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The pushed image: REGISTRY/REPOSITORY, with :TAG or @sha256:DIGEST
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The public key (PEM) every manifest's signature must verify with [default: signatures are not checked]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub build: BuildArgs,
}

/// `cargo containerize resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// YAML file or directory whose containerize://BINARY references are replaced (repeatable; - for stdin)
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Read the directories given with -f recursively
    #[arg(short = 'R', long)]
    pub recursive: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub build: BuildArgs,
}

/// `cargo containerize init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The package's Cargo.toml [default: the nearest Cargo.toml at or above the current directory]
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// The workspace member to set up (instead of the package of the current directory)
    #[arg(short, long, value_name = "SPEC")]
    pub package: Option<String>,
    /// Replace an existing [package.metadata.containerize] section and overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Also write .github/workflows/containerize.yml: build and push to ghcr.io on v* tags
    #[arg(long)]
    pub github_workflow: bool,
    /// Also copy the built-in Kubernetes templates to containerize/kubernetes/ next to the Cargo.toml and set `templates` to it
    #[arg(long)]
    pub templates: bool,
}

/// `merge` flags: a push's, and where the platforms' pushes are recorded.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// image.json files that `--push --per-platform` runs wrote (kept as CI artifacts): their
    /// platforms are read by digest instead of by per-platform tag
    #[arg(
        help_heading = "Merge Options",
        long = "from",
        value_name = "IMAGE_JSON",
        num_args = 1..
    )]
    pub from: Vec<PathBuf>,
    /// The push's own flags.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// The variables behind the audit options that have one (a run without `--audit` tells
/// a flag given from a variable set for every job).
pub const AUDIT_SEVERITY_ENV: &str = "CARGO_CONTAINERIZE_AUDIT_SEVERITY";
/// `--advisory-db`'s variable.
pub const ADVISORY_DB_ENV: &str = "CARGO_CONTAINERIZE_ADVISORY_DB";
/// `--advisory-db-url`'s variable.
pub const ADVISORY_DB_URL_ENV: &str = "CARGO_CONTAINERIZE_ADVISORY_DB_URL";

/// The flags of a build (the default command), under headings like cargo's.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Print what would be built and pushed (images, platforms, tags, outputs) and stop: nothing is built or written
    #[arg(long)]
    pub dry_run: bool,

    /// Set by the `sbom` subcommand: stop after the SBOMs.
    #[arg(skip)]
    pub sbom_only: bool,

    /// Print only errors (and the image references on stdout)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the commands that are run (-vv: also cargo's verbose output)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten, next_help_heading = "Package Selection")]
    #[allow(missing_docs)]
    pub workspace: clap_cargo::Workspace,

    /// Package only the named binary (repeatable; default: every binary of the selected packages)
    #[arg(help_heading = "Package Selection", long = "bin", value_name = "NAME")]
    pub bins: Vec<String>,

    #[command(flatten, next_help_heading = "Feature Selection")]
    #[allow(missing_docs)]
    pub features: clap_cargo::Features,

    /// Cargo profile to build with
    #[arg(
        help_heading = "Compilation Options",
        long,
        value_name = "NAME",
        env = "CARGO_CONTAINERIZE_PROFILE",
        hide_env_values = true,
        default_value = "release"
    )]
    pub profile: String,

    /// Build with the release profile: the default already (as cargo's --release; --profile picks another)
    #[arg(long, help_heading = "Compilation Options", conflicts_with = "profile")]
    pub release: bool,

    /// Platforms to build: linux/amd64, linux/arm64 or all (comma-separated) [metadata: platforms] [default: linux/amd64]
    #[arg(
        help_heading = "Compilation Options",
        long,
        value_name = "PLATFORMS",
        env = "CARGO_CONTAINERIZE_PLATFORM",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub platform: Vec<String>,

    /// Embed each binary's dependency list (cargo-auditable format) for scanners
    /// [default: true] [metadata, per image: auditable]
    #[arg(help_heading = "Compilation Options", long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub auditable: Option<bool>,

    /// Directory for all generated artifacts (passed to cargo)
    #[arg(help_heading = "Compilation Options", long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,

    /// Override a cargo configuration value, KEY=VALUE or a TOML file (passed to cargo; repeatable)
    #[arg(
        long = "config",
        help_heading = "Compilation Options",
        value_name = "KEY=VALUE|PATH"
    )]
    pub cargo_config: Vec<String>,

    /// Number of parallel jobs (passed to cargo)
    #[arg(
        help_heading = "Compilation Options",
        short = 'j',
        long,
        value_name = "N"
    )]
    pub jobs: Option<u32>,

    /// Tag for the images, in the layout and the registry (repeatable) [default: latest, the crate version and the short commit]
    #[arg(
        help_heading = "Image Options",
        short = 't',
        long = "tag",
        value_name = "TAG",
        env = "CARGO_CONTAINERIZE_TAGS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub tags: Vec<String>,

    /// Build on this registry image (e.g. gcr.io/distroless/static:nonroot) instead of the built-in base [workspace metadata: base]
    #[arg(
        help_heading = "Image Options",
        long,
        value_name = "REF",
        env = "CARGO_CONTAINERIZE_BASE",
        hide_env_values = true
    )]
    pub base: Option<String>,

    /// Tags from the exact git tag on HEAD: v1.2.3 gives 1.2.3, 1.2, 1 and latest (pre-releases only their own)
    #[arg(help_heading = "Image Options", long, conflicts_with = "tags")]
    pub tag_from_git: bool,

    /// Set image config labels, KEY=VALUE (comma-separated or repeated; wins over the metadata) [metadata: labels]
    #[arg(help_heading = "Image Options", long = "image-label", value_name = "KEY=VALUE", value_parser = key_value, value_delimiter = ',')]
    pub image_labels: Vec<(String, String)>,

    /// Set a manifest annotation, KEY=VALUE (repeatable; wins over the metadata) [metadata: annotations]
    #[arg(help_heading = "Image Options", long = "image-annotation", value_name = "KEY=VALUE", value_parser = key_value)]
    pub image_annotations: Vec<(String, String)>,

    /// The user the images run as: a uid, uid:gid or a name in the image's /etc/passwd (wins over the metadata) [metadata: user] [default: 65532:65532]
    #[arg(long, help_heading = "Image Options", value_name = "UID[:GID]")]
    pub image_user: Option<String>,

    /// Layer compression: gzip (every runtime) or zstd (containerd 1.5+, podman, docker 23+) [metadata: compression] [default: gzip]
    #[arg(
        help_heading = "Image Options",
        long,
        value_name = "ALGO",
        value_enum,
        hide_possible_values = true,
        env = "CARGO_CONTAINERIZE_COMPRESSION",
        hide_env_values = true
    )]
    pub compression: Option<CompressionArg>,

    /// gzip level for layers, 0-9 (zstd layers use zstd's level 3)
    #[arg(help_heading = "Image Options", long, value_name = "N", env = "CARGO_CONTAINERIZE_COMPRESSION_LEVEL", hide_env_values = true, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: Option<u32>,

    /// Also write the images to this OCI layout directory
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "DIR",
        env = "CARGO_CONTAINERIZE_OCI_LAYOUT_PATH",
        hide_env_values = true
    )]
    pub oci_layout_path: Option<PathBuf>,

    /// Also write the images as an OCI archive that `docker load` and `podman load` take
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "FILE",
        env = "CARGO_CONTAINERIZE_TARBALL",
        hide_env_values = true
    )]
    pub tarball: Option<PathBuf>,

    /// The platform the --tarball's manifest.json (docker's index) describes [default: the host's]
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "PLATFORM",
        requires = "tarball",
        env = "CARGO_CONTAINERIZE_TARBALL_PLATFORM",
        hide_env_values = true
    )]
    pub tarball_platform: Option<String>,

    /// Also load the images into docker, podman or containerd (no value: docker, else podman)
    #[arg(help_heading = "Output Options", 
        long,
        value_name = "RUNTIME",
        value_enum,
        hide_possible_values = true,
        num_args = 0..=1,
        default_missing_value = "auto",
        env = "CARGO_CONTAINERIZE_LOAD",
        hide_env_values = true
    )]
    pub load: Option<LoadArg>,

    /// The containerd namespace `--load containerd` imports into (k8s.io: what kind, k3s and minikube nodes see)
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "NS",
        default_value = "k8s.io",
        env = "CARGO_CONTAINERIZE_CONTAINERD_NAMESPACE",
        hide_env_values = true
    )]
    pub containerd_namespace: String,

    /// Also write the image references (by digest), one per line, to FILE
    #[arg(help_heading = "Output Options", long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,

    /// SBOMs per image and platform, written next to the image and attached to it: cyclonedx, spdx (comma-separated) or none
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "FORMATS",
        value_enum,
        hide_possible_values = true,
        value_delimiter = ',',
        default_value = "cyclonedx",
        env = "CARGO_CONTAINERIZE_SBOM",
        hide_env_values = true
    )]
    pub sbom: Vec<SbomArg>,

    /// Write SLSA provenance (an in-toto Statement) per image and platform, next to the image and attached to it
    /// [default: true] [metadata, per image: provenance]
    #[arg(help_heading = "Output Options", long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub provenance: Option<bool>,

    /// Write the SBOMs to DIR (IMAGE.sbom.OS-ARCH.cdx.json, .spdx.json) instead of next to each image
    #[arg(
        long,
        help_heading = "Output Options",
        value_name = "DIR",
        env = "CARGO_CONTAINERIZE_SBOM_DIR",
        hide_env_values = true
    )]
    pub sbom_dir: Option<PathBuf>,

    /// Print image references by tag only (name:tag), without @sha256:…, on stdout and in --image-refs
    #[arg(long, help_heading = "Output Options")]
    pub tag_only: bool,

    /// Write no compose.yaml [metadata, per image: compose = false]
    #[arg(help_heading = "Output Options", long)]
    pub no_compose: bool,

    /// What stdout carries: image references (human) or one JSON event per line (json)
    #[arg(
        help_heading = "Output Options",
        long,
        value_name = "FMT",
        value_enum,
        hide_possible_values = true,
        default_value = "human",
        env = "CARGO_CONTAINERIZE_MESSAGE_FORMAT",
        hide_env_values = true
    )]
    pub message_format: MessageFormatArg,

    /// Push the images to the registry (needs a repository: --repo); --push=false does not
    #[arg(help_heading = "Registry Options", long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub push: Option<bool>,

    /// Sign each image, index and attestation with this ECDSA P-256 key (PEM, or a cosign.key opened with CARGO_CONTAINERIZE_SIGN_PASSWORD) and attach the Sigstore bundles
    #[arg(
        help_heading = "Registry Options",
        long,
        value_name = "FILE",
        env = "CARGO_CONTAINERIZE_SIGN_KEY",
        hide_env_values = true
    )]
    pub sign_key: Option<PathBuf>,

    /// With --push: push each platform's image on its own, tagged TAG-ARCH (1.2.3-arm64), and no index; `cargo containerize merge` joins them
    #[arg(help_heading = "Registry Options", long)]
    pub per_platform: bool,

    /// Registry and namespace to push to, e.g. ghcr.io/my-org [metadata: repository]
    #[arg(
        help_heading = "Registry Options",
        long,
        value_name = "REGISTRY/NAMESPACE",
        env = "CARGO_CONTAINERIZE_REPO",
        hide_env_values = true
    )]
    pub repo: Option<String>,

    /// Image names under --repo: bin (REPO/BINARY), package (REPO/PACKAGE) or bare (REPO itself, one image)
    #[arg(
        help_heading = "Registry Options",
        long,
        value_name = "MODE",
        value_enum,
        default_value = "bin",
        hide_possible_values = true
    )]
    pub naming: NamingArg,

    /// Speak plain HTTP to this registry host (loopback hosts always use HTTP; repeatable)
    #[arg(
        help_heading = "Registry Options",
        long,
        value_name = "HOST",
        env = "CARGO_CONTAINERIZE_INSECURE_REGISTRY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,

    /// Check the crates linked into each image against the RustSec advisory database before anything is written or pushed; a vulnerability fails the run (exit 6)
    #[arg(help_heading = "Audit Options", long)]
    pub audit: bool,

    /// Fail only on vulnerabilities of this severity or higher: low, medium, high or critical [default: any] [metadata: audit.severity]
    #[arg(
        help_heading = "Audit Options",
        long,
        value_name = "LEVEL",
        value_enum,
        hide_possible_values = true,
        env = AUDIT_SEVERITY_ENV,
        hide_env_values = true
    )]
    pub severity: Option<SeverityArg>,

    /// Do not fail on this advisory (RUSTSEC-…, or its CVE-/GHSA- alias; repeatable) [metadata: audit.ignore, with a reason]
    #[arg(
        help_heading = "Audit Options",
        long,
        value_name = "ID",
        value_delimiter = ','
    )]
    pub ignore: Vec<String>,

    /// Fail on warnings too: warnings, or only unmaintained, unsound or yanked (repeatable)
    #[arg(
        help_heading = "Audit Options",
        long,
        value_name = "KIND",
        value_enum,
        hide_possible_values = true,
        value_delimiter = ','
    )]
    pub deny: Vec<DenyArg>,

    /// The RustSec advisory database (a clone of advisory-db) [default: $CARGO_HOME/advisory-db, as cargo-audit's; cloned or updated unless --offline]
    #[arg(
        help_heading = "Audit Options",
        long,
        value_name = "PATH",
        env = ADVISORY_DB_ENV,
        hide_env_values = true
    )]
    pub advisory_db: Option<PathBuf>,

    /// Where the advisory database is cloned from when it is missing
    #[arg(
        help_heading = "Audit Options",
        long,
        value_name = "URL",
        env = ADVISORY_DB_URL_ENV,
        hide_env_values = true
    )]
    pub advisory_db_url: Option<String>,

    /// Trust this CA certificate (PEM) for the registry, besides the system's
    #[arg(
        help_heading = "Registry Options",
        long,
        value_name = "FILE",
        env = "CARGO_CONTAINERIZE_REGISTRY_CA",
        hide_env_values = true
    )]
    pub registry_ca: Option<PathBuf>,

    /// Write the Kubernetes YAML here instead of target/containerize/ (DIR/kubernetes.yaml, DIR/IMAGE/kubernetes.yaml)
    #[arg(
        help_heading = "Kubernetes Options",
        long,
        value_name = "DIR",
        env = "CARGO_CONTAINERIZE_KUBE_DIR",
        hide_env_values = true
    )]
    pub kube_dir: Option<PathBuf>,

    /// Write no Kubernetes YAML [metadata, per image: kubernetes.enabled = false]
    #[arg(help_heading = "Kubernetes Options", long, conflicts_with = "kube_dir")]
    pub no_kube: bool,
    #[command(flatten, next_help_heading = "Manifest Options")]
    #[allow(missing_docs)]
    pub manifest: clap_cargo::Manifest,

    /// Require Cargo.lock to be up to date (passed to cargo)
    #[arg(help_heading = "Manifest Options", long)]
    pub locked: bool,

    /// Require Cargo.lock and cache to be up to date (passed to cargo)
    #[arg(help_heading = "Manifest Options", long)]
    pub frozen: bool,

    /// Run without accessing the network (passed to cargo)
    #[arg(help_heading = "Manifest Options", long)]
    pub offline: bool,
}

/// `--severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    /// CVSS 0.1 and up
    Low,
    /// CVSS 4.0 and up
    Medium,
    /// CVSS 7.0 and up
    High,
    /// CVSS 9.0 and up
    Critical,
}

/// `--deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenyArg {
    /// Every warning
    Warnings,
    /// Unmaintained crates
    Unmaintained,
    /// Unsound crates
    Unsound,
    /// Yanked versions
    Yanked,
}

/// `--message-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormatArg {
    /// One image reference per line
    Human,
    /// One JSON event per line
    Json,
}

/// `--load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadArg {
    /// The first of docker and podman that answers
    Auto,
    /// `docker load` (DOCKER_HOST and docker contexts apply)
    Docker,
    /// `podman load`
    Podman,
    /// `ctr images import` (CONTAINERD_ADDRESS applies)
    Containerd,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

/// `--sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomArg {
    /// CycloneDX 1.6 JSON
    Cyclonedx,
    /// SPDX 2.3 JSON
    Spdx,
    /// No SBOM
    None,
}

/// `--naming`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NamingArg {
    /// `<repo>/<binary name>`
    Bin,
    /// `<repo>/<package name>`
    Package,
    /// `<repo>` itself (one image only)
    Bare,
}

/// `KEY=VALUE` (the value may be empty or hold `=`; the key may not be empty).
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Parses argv the way cargo hands it over (`cargo-containerize containerize ...`) or as
/// a direct call (`cargo-containerize ...`).
pub fn parse_from<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Cli, clap::Error> {
    parse_colored(argv, clap::ColorChoice::Auto)
}

/// [`parse_from`], with clap's own messages (usage errors, `--help`) coloured as `color`
/// says, so `--color never` holds before the command line is even valid.
pub fn parse_colored<I: IntoIterator<Item = OsString>>(
    argv: I,
    color: clap::ColorChoice,
) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut argv: Vec<OsString> = argv.into_iter().collect();
    if argv.get(1).is_some_and(|a| a == "containerize") {
        argv.remove(1);
    }
    let mut command = command().color(color);
    let matches = command.try_get_matches_from_mut(argv)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Flags `sbom` accepts (they are shared with the build) but that change nothing in an
/// SBOM: its `--help` leaves them out.
const NOT_FOR_SBOM: &[&str] = &[
    "tags",
    "tag_from_git",
    "tag_only",
    "oci_layout_path",
    "tarball",
    "tarball_platform",
    "load",
    "containerd_namespace",
    "push",
    "repo",
    "naming",
    "image_labels",
    "image_annotations",
    "image_user",
    "image_refs",
    "provenance",
    "per_platform",
    "kube_dir",
    "no_kube",
    "no_compose",
    "compression",
    "compression_level",
    "dry_run",
    "audit",
    "severity",
    "ignore",
    "deny",
    "advisory_db",
    "advisory_db_url",
];

/// Flags `verify` accepts (shared with the build) but that change nothing it compares or
/// that it refuses: its `--help` leaves them out.
const NOT_FOR_VERIFY: &[&str] = &[
    "dry_run",
    "push",
    "per_platform",
    "sign_key",
    "tag_from_git",
    "tag_only",
    "oci_layout_path",
    "tarball",
    "tarball_platform",
    "load",
    "containerd_namespace",
    "image_refs",
    "kube_dir",
    "no_kube",
    "no_compose",
    "sbom_dir",
    "audit",
    "severity",
    "ignore",
    "deny",
    "advisory_db",
    "advisory_db_url",
];

/// Flags `audit` accepts (shared with the build) but that change nothing in an audit:
/// its `--help` leaves them out.
const NOT_FOR_AUDIT: &[&str] = &[
    "audit",
    "dry_run",
    "tags",
    "tag_from_git",
    "tag_only",
    "oci_layout_path",
    "tarball",
    "tarball_platform",
    "load",
    "containerd_namespace",
    "push",
    "per_platform",
    "sign_key",
    "repo",
    "naming",
    "image_labels",
    "image_annotations",
    "image_user",
    "image_refs",
    "provenance",
    "auditable",
    "sbom",
    "kube_dir",
    "no_kube",
    "no_compose",
    "compression",
    "compression_level",
    "base",
    "insecure_registry",
    "registry_ca",
];

/// The clap command: [`Cli`], with `sbom --help` and `verify --help` showing only what
/// applies to them.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let hide = |sub: clap::Command, ids: &[&str]| {
        ids.iter()
            .fold(sub, |c, id| c.mut_arg(*id, |a| a.hide(true)))
    };
    Cli::command()
        .mut_subcommand("sbom", |c| hide(c, NOT_FOR_SBOM))
        .mut_subcommand("verify", |c| hide(c, NOT_FOR_VERIFY))
        .mut_subcommand("audit", |c| hide(c, NOT_FOR_AUDIT))
}

/// The value of `--color` in `argv` (the last one), read before clap parses anything.
pub fn color_flag(argv: &[OsString]) -> Option<String> {
    let mut found = None;
    let mut args = argv.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if let Some(v) = arg.strip_prefix("--color=") {
            found = Some(v.to_string());
        } else if arg == "--color" {
            found = args.next().map(|v| v.into_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cargo_style_invocation_and_flags() {
        let args = parse_from(
            [
                "cargo-containerize",
                "containerize",
                "-p",
                "api",
                "--bin",
                "api",
                "--platform",
                "linux/amd64,linux/arm64",
                "--features",
                "a b",
                "--locked",
                "-j",
                "3",
            ]
            .map(OsString::from),
        )
        .unwrap()
        .build;
        assert_eq!(args.workspace.package, ["api"]);
        assert_eq!(args.bins, ["api"]);
        assert_eq!(args.platform, ["linux/amd64", "linux/arm64"]);
        assert_eq!(args.profile, "release");
        assert!(args.locked);
        assert_eq!(args.jobs, Some(3));
    }

    fn build(args: &[&str]) -> Result<BuildArgs, clap::Error> {
        let argv = ["cargo-containerize", "containerize"].iter().chain(args);
        parse_from(argv.map(OsString::from)).map(|c| c.build)
    }

    /// Issue 17: cargo's and ko's flags, spelt as they spell them.
    #[test]
    fn r17_cargo_and_ko_flags() {
        assert_eq!(build(&[]).unwrap().push, None);
        assert_eq!(build(&["--push"]).unwrap().push, Some(true));
        assert_eq!(build(&["--push=false"]).unwrap().push, Some(false));
        let labels = build(&["--image-label", "a=b,c=d", "--image-label", "e=f"])
            .unwrap()
            .image_labels;
        assert_eq!(
            labels,
            [("a", "b"), ("c", "d"), ("e", "f")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let args = build(&[
            "--release",
            "--config",
            "net.retry=5",
            "--image-user",
            "1000",
        ])
        .unwrap();
        assert!(args.release);
        assert_eq!(args.profile, "release");
        assert_eq!(args.cargo_config, ["net.retry=5"]);
        assert_eq!(args.image_user.as_deref(), Some("1000"));
        let err = build(&["--release", "--profile", "dev"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(
            color_flag(&["x", "--color", "never", "--", "--color=always"].map(OsString::from)),
            Some("never".into())
        );
    }

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }
}
