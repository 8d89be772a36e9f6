//! Images ↔ any OCI registry: pushing `ImageSet`s from the OCI layout (and their SBOMs as
//! referrers), pulling `--base` images into it, and checking `login` credentials. Knows
//! nothing about cargo: it takes image sets, a layout to stream blobs from, repositories
//! and the [`RegistrySettings`] `config` resolved. Every request goes through
//! [`transport`], which owns authentication and the one retry loop.

pub mod auth;
pub mod credstore;
pub mod inspect;
pub mod merge;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod sink;
pub mod transport;
mod upload;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::registry::{Credential, RegistrySettings};
use crate::fsutil::{self, FsError};
use crate::image::ImageSet;
use crate::image::artifact::Artifact;
use crate::image::layout::Layout;
use crate::output::Shell;
use crate::output::human_size;
use crate::reference::Repository;
use push::{KnownBlobs, PushedImage};
use transport::{CaCertificate, ClientOptions, RegistryClient};

/// One image to push.
#[derive(Debug, Clone)]
pub struct PushJob<'a> {
    /// The image.
    pub set: &'a ImageSet,
    /// Where.
    pub repository: Repository,
    /// Tags to set, after everything else is up.
    pub tags: Vec<String>,
}

/// One client per registry of a run, connected (credentials looked up) on first use.
#[derive(Default)]
pub(crate) struct Clients<T = ()>(BTreeMap<String, (RegistryClient, T)>);

impl<T: Default> Clients<T> {
    /// The client for `repo`'s registry (and what travels with it), connecting if needed.
    pub(crate) fn connect(
        &mut self,
        repo: &Repository,
        settings: &RegistrySettings,
        extra_ca: &Option<CaCertificate>,
        shell: &mut Shell,
    ) -> Result<&(RegistryClient, T), RegistryError> {
        use std::collections::btree_map::Entry;
        Ok(match self.0.entry(repo.registry.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let client = connect(repo, settings, extra_ca.clone(), shell)?;
                v.insert((client, T::default()))
            }
        })
    }

    /// The client already connected to `registry`.
    pub(crate) fn get(&self, registry: &str) -> Option<&RegistryClient> {
        self.0.get(registry).map(|(c, _)| c)
    }
}

/// A client for `repo`'s registry with the credentials found for it.
pub fn connect(
    repo: &Repository,
    settings: &RegistrySettings,
    extra_ca: Option<CaCertificate>,
    shell: &mut Shell,
) -> Result<RegistryClient, RegistryError> {
    let (credential, from) = auth::credential_for(repo, &settings.auth, settings.timeouts.read)?;
    shell.verbose("Credentials", format!("for {}: {from}", repo.registry));
    let mut client = connect_as(repo, credential, settings, extra_ca)?;
    client.set_reporter(shell.reporter());
    Ok(client)
}

/// A client for `repo`'s registry with `credential` (`login` checks the one it was
/// given): plain HTTP for loopback and `--insecure-registry` hosts, `--registry-ca`
/// trusted, retries as configured.
pub fn connect_as(
    repo: &Repository,
    credential: Credential,
    settings: &RegistrySettings,
    extra_ca: Option<CaCertificate>,
) -> Result<RegistryClient, RegistryError> {
    let opts = ClientOptions {
        plain_http: repo.is_loopback() || settings.insecure_registries.contains(&repo.registry),
        extra_ca,
        policy: settings.retry,
        timeouts: settings.timeouts,
    };
    RegistryClient::new(repo, credential, &opts)
}

/// Reads `--registry-ca`, if given.
pub fn extra_ca(settings: &RegistrySettings) -> Result<Option<CaCertificate>, RegistryError> {
    Ok(match &settings.registry_ca {
        Some(path) => Some(CaCertificate {
            pem: fsutil::read(path)?,
            path: path.clone(),
        }),
        None => None,
    })
}

/// Pulls `--base` for `platforms` into `layout`.
/// A base pinned by digest whose documents are in `cache` and layers in `layout` makes no
/// request (a tag is always resolved again, as `docker pull` would).
pub fn pull_base(
    reference: &str,
    platforms: &[crate::platform::Platform],
    layout: &Layout,
    cache: &pull::DocCache,
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<pull::BaseImage, RegistryError> {
    let r = crate::reference::ImageReference::parse(reference).map_err(|e| {
        RegistryError::BadReference {
            what: "--base",
            reference: reference.to_string(),
            reason: e.to_string(),
        }
    })?;
    let client = connect(&r.repository, settings, extra_ca(settings)?, shell)?;
    if !cache.holds(r.reference()) {
        shell.status("Pulling", format!("base image {r}"));
    }
    let base = pull::pull_base(&client, &r, platforms, layout, cache)?;
    if base.cached {
        shell.status(
            "Fresh",
            format!("base image {r} (pinned by digest, cached)"),
        );
    }
    shell.verbose("Base", pull::describe(&base));
    Ok(base)
}

/// Pushes every job, one client per registry, mounting shared blobs across repositories:
/// first every image (blobs, manifests, indexes), then `artifacts` (SBOMs) as referrers,
/// and only then the tags, so a tag moves only to an image that is complete with
/// everything attached. A tag that fails is reported with exactly the tags that did move.
pub fn push_all(
    jobs: &[PushJob<'_>],
    artifacts: &[(Repository, &Artifact)],
    layout: &Layout,
    settings: &RegistrySettings,
    shell: &mut Shell,
) -> Result<Vec<PushedImage>, RegistryError> {
    let extra_ca = extra_ca(settings)?;
    let mut clients: Clients<KnownBlobs> = Clients::default();
    let mut out = Vec::new();
    for job in jobs {
        let (client, known) = clients.connect(&job.repository, settings, &extra_ca, shell)?;
        let platforms: Vec<String> = job
            .set
            .images
            .iter()
            .map(|i| i.platform.to_string())
            .collect();
        shell.status(
            "Pushing",
            format!("{} ({})", job.repository, platforms.join(", ")),
        );
        // One bar per image, shared by the upload threads.
        let progress = shell.progress("Uploading", 0, job.repository.to_string());
        let pushed = push::push_set(
            client,
            layout,
            job.set,
            &job.repository,
            &job.tags,
            push::BlobUploads {
                known,
                jobs: settings.jobs,
                progress: &progress,
            },
        );
        progress.finish();
        let pushed = pushed?;
        shell.status(
            "Pushed",
            format!(
                "{} ({} uploaded in {} blob(s), {} already there, {} mounted)",
                pushed.reference(),
                human_size(pushed.uploaded_bytes),
                pushed.uploaded,
                pushed.skipped,
                pushed.mounted,
            ),
        );
        out.push(pushed);
    }
    referrers::push_artifacts(artifacts, layout, settings, shell)?;
    set_all_tags(jobs, &clients, shell)?;
    Ok(out)
}

/// Moves every job's tags, once everything they point at is up; a tag that fails is
/// reported with exactly the tags that did move (and those that did not).
fn set_all_tags<T: Default>(
    jobs: &[PushJob<'_>],
    clients: &Clients<T>,
    shell: &mut Shell,
) -> Result<(), RegistryError> {
    let mut moved: Vec<String> = Vec::new();
    for job in jobs {
        let Some(client) = clients.get(&job.repository.registry) else {
            continue;
        };
        let mut these = Vec::new();
        let result = push::set_tags(client, &job.repository, job.set, &job.tags, &mut these);
        moved.extend(these.iter().map(|t| format!("{}:{t}", job.repository)));
        if let Err(cause) = result {
            let not_moved = jobs
                .iter()
                .flat_map(|j| j.tags.iter().map(move |t| format!("{}:{t}", j.repository)))
                .filter(|t| !moved.contains(t))
                .collect();
            return Err(RegistryError::TagsIncomplete {
                moved,
                not_moved,
                cause: Box::new(cause),
            });
        }
        if !job.tags.is_empty() {
            shell.status(
                "Tagged",
                format!("{} with {}", job.repository, job.tags.join(", ")),
            );
        }
    }
    Ok(())
}

/// ` for `repository:a:push`` (nothing when the request named no scope, as `login`'s
/// check does: an empty name says nothing).
fn for_scopes(scopes: &str) -> String {
    if scopes.trim().is_empty() {
        String::new()
    } else {
        format!(" for `{scopes}`")
    }
}

/// `a, b` or `none`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Registry failures (pushes, pulls, `login`); each names the registry and what to check.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    /// Credentials missing or rejected.
    #[error("{registry} refused the credentials{}: {detail}", for_scopes(scopes))]
    #[diagnostic(
        code(containerize::registry::auth),
        help(
            "check the username and password/token: `cargo containerize login REGISTRY -u USER --password-stdin`, `~/.docker/config.json` (or $DOCKER_CONFIG), podman's auth.json, or CARGO_CONTAINERIZE_REGISTRY_USERNAME/_PASSWORD in CI"
        )
    )]
    Unauthorized {
        /// The registry.
        registry: String,
        /// Token scopes asked for.
        scopes: String,
        /// What the registry said.
        detail: String,
    },
    /// The credentials were accepted, but do not grant what the request needs.
    #[error(
        "{registry} accepted the credentials, but they do not allow {} (insufficient_scope)",
        if scopes.is_empty() { "this request" } else { scopes }
    )]
    #[diagnostic(
        code(containerize::registry::denied),
        help(
            "the account or token can pull but not push here: use one with write access to the repository (a GitHub token needs write:packages; a registry robot account needs push rights), or check that the repository name is yours"
        )
    )]
    InsufficientScope {
        /// The registry.
        registry: String,
        /// What was asked for.
        scopes: String,
    },
    /// Authenticated, but not allowed.
    #[error("{registry} denied {action} (HTTP {status}{code})")]
    #[diagnostic(
        code(containerize::registry::denied),
        help(
            "the credentials were accepted but may not push there: check that the repository exists (some registries need it created first) and that your account or token has write access"
        )
    )]
    Denied {
        /// The registry.
        registry: String,
        /// What was attempted.
        action: String,
        /// HTTP status.
        status: u16,
        /// The registry's error code, if any (`: DENIED`).
        code: String,
    },
    /// An unexpected answer.
    #[error("{registry} answered HTTP {status} to {action}{code}: {message}")]
    #[diagnostic(
        code(containerize::registry),
        help(
            "check the repository name and the registry's logs; --registry-ca FILE or --insecure-registry HOST for private registries"
        )
    )]
    Unexpected {
        /// The registry.
        registry: String,
        /// What was attempted.
        action: String,
        /// HTTP status.
        status: u16,
        /// The registry's error code, if any.
        code: String,
        /// The registry's message.
        message: String,
    },
    /// The connection kept failing.
    #[error("could not reach {url} after {attempts} attempt(s): {message}")]
    #[diagnostic(
        code(containerize::registry::connection),
        help(
            "check that the registry is up and reachable; registries other than localhost are spoken to over HTTPS (use --insecure-registry HOST for plain HTTP); a registry that stalls is given up on after CARGO_CONTAINERIZE_READ_TIMEOUT (default 60 s) of silence, CARGO_CONTAINERIZE_CONNECT_TIMEOUT (30 s) to connect and CARGO_CONTAINERIZE_REQUEST_TIMEOUT (600 s) for a whole blob"
        )
    )]
    Connection {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// The registry's TLS certificate is not trusted.
    #[error("the TLS certificate of {registry} is not trusted: {message}")]
    #[diagnostic(
        code(containerize::registry::tls),
        help(
            "if the registry uses a private CA, pass its certificate with --registry-ca FILE (or point SSL_CERT_FILE at a bundle that has it); a registry that only speaks plain HTTP needs --insecure-registry HOST"
        )
    )]
    Tls {
        /// The registry.
        registry: String,
        /// The TLS error.
        message: String,
    },
    /// Transient errors did not stop.
    #[error("gave up on {url} after {attempts} attempts (last: {last})")]
    #[diagnostic(
        code(containerize::registry::retries),
        help(
            "the registry kept failing; nothing was tagged, so no tag points at a partial image: try again later"
        )
    )]
    GaveUp {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last outcome.
        last: String,
    },
    /// The registry stored something other than what was sent.
    #[error("{registry} reported digest {got} for {what}, expected {expected}")]
    #[diagnostic(
        code(containerize::registry::digest),
        help("the registry or a proxy in between altered the upload; nothing was tagged")
    )]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// What was uploaded.
        what: String,
        /// Our digest.
        expected: String,
        /// Theirs.
        got: String,
    },
    /// An image reference that does not parse (`--base`).
    #[error("{what}: {reason}")]
    #[diagnostic(
        code(containerize::usage),
        help("use REGISTRY/PATH[:TAG][@sha256:DIGEST], e.g. gcr.io/distroless/static:nonroot")
    )]
    BadReference {
        /// The flag or key it came from.
        what: &'static str,
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// `--registry-ca` is not a usable PEM certificate.
    #[error("invalid --registry-ca certificate `{}`: {reason}", path.display())]
    #[diagnostic(
        code(containerize::registry::tls),
        help("pass a PEM file with the CA certificate (-----BEGIN CERTIFICATE-----)")
    )]
    InvalidCa {
        /// The file.
        path: PathBuf,
        /// The TLS library's error.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("registry client: {reason}")]
    #[diagnostic(
        code(containerize::registry::client),
        help("this is a bug in cargo containerize if it persists: please report it")
    )]
    ClientSetup {
        /// The HTTP library's error.
        reason: String,
    },
    /// A token service answered 200 without a usable token.
    #[error("the token service at {realm} sent {reason}")]
    #[diagnostic(
        code(containerize::registry::auth),
        help("the registry's token service is misconfigured or a proxy altered its answer")
    )]
    BadToken {
        /// The token service's URL.
        realm: String,
        /// What was wrong with its answer.
        reason: String,
    },
    /// A response body that broke off.
    #[error("could not read {what} from {registry}: {reason}")]
    #[diagnostic(
        code(containerize::registry::connection),
        help("check that the registry is up and reachable, then try again")
    )]
    ReadBody {
        /// The registry.
        registry: String,
        /// What was being read.
        what: String,
        /// The I/O error.
        reason: String,
    },
    /// The referrers index for an SBOM could not be built.
    #[error("could not build the referrers index of {subject}: {reason}")]
    #[diagnostic(
        code(containerize::registry::referrers),
        help("this is a bug in cargo containerize: please report it")
    )]
    ReferrersIndex {
        /// The image the SBOM is attached to.
        subject: String,
        /// What failed.
        reason: String,
    },
    /// Every image and attachment is in the registry, but not every tag could be set.
    #[error(
        "{cause}\nwhile setting tags; moved: {}; not moved: {}",
        list(moved),
        list(not_moved)
    )]
    #[diagnostic(
        code(containerize::registry::tags),
        help(
            "every image is complete in the registry (blobs, manifests, SBOMs); the tags listed as moved point at the new images, the others still point where they did before: run the push again to move them"
        )
    )]
    TagsIncomplete {
        /// `repo:tag` now pointing at the new image.
        moved: Vec<String>,
        /// `repo:tag` left where they were.
        not_moved: Vec<String>,
        /// Why the first of those failed.
        cause: Box<RegistryError>,
    },
    /// A document larger than any registry document should be.
    #[error("{what} from {registry} is larger than {limit} bytes{declared}")]
    #[diagnostic(
        code(containerize::registry::too_large),
        help(
            "manifests, indexes and image configs are small JSON documents (containerd refuses those over 4 MiB too); this reference does not name an image, or the registry is misbehaving"
        )
    )]
    TooLarge {
        /// The registry.
        registry: String,
        /// What was being read.
        what: String,
        /// The cap.
        limit: u64,
        /// `(it says N bytes)` when the registry declared a length.
        declared: String,
    },
    /// `merge`: a platform's image is not in the registry under its per-platform tag.
    #[error("{reference} does not exist: no {platform} image to merge")]
    #[diagnostic(
        code(containerize::registry::merge),
        help(
            "push it first from that platform's build: `cargo containerize --push --per-platform --platform {platform}` with the same tags (or drop {platform} from merge's --platform); no tag was moved"
        )
    )]
    PlatformMissing {
        /// `registry/repo:TAG-ARCH`.
        reference: String,
        /// The platform.
        platform: crate::platform::Platform,
    },
    /// `merge`: a platform's image is not the one this checkout would build.
    #[error("{reference} cannot be merged as {platform}: {what}")]
    #[diagnostic(
        code(containerize::registry::merge),
        help(
            "merge from a checkout of the commit the per-platform images were built from, with the same settings (tags, SOURCE_DATE_EPOCH, labels), or push that platform again from this commit; no tag was moved"
        )
    )]
    PlatformMismatch {
        /// `registry/repo:TAG-ARCH`.
        reference: String,
        /// The platform.
        platform: crate::platform::Platform,
        /// What differs.
        what: String,
    },
    /// Ctrl-C during a request.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    /// Reading credentials.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Auth(#[from] auth::AuthError),
    /// Reading blobs.
    #[error(transparent)]
    #[diagnostic(code(containerize::layout))]
    Fs(#[from] FsError),
}
