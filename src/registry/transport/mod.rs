//! One registry's HTTP API: [`Request`] → [`RegistryClient::send`] → the response.
//! Requests go out without credentials until the registry answers 401 with a
//! `WWW-Authenticate` challenge ([`challenge`]); then Basic credentials are sent, or a
//! Bearer token is fetched for the request's scopes and fetched again when the registry
//! rejects it ([`token`]). Transient failures go through the one retry loop ([`retry`]).
//! Loopback registries and `--insecure-registry` hosts are spoken to over HTTP, all
//! others over HTTPS, trusting `--registry-ca` besides the system's roots.

pub mod challenge;
pub mod retry;
pub mod token;

use std::path::PathBuf;
use std::sync::Mutex;

use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, header};

use crate::config::registry::{Credential, RetryPolicy, Timeouts};
use crate::output::Reporter;
use crate::reference::Repository;
use crate::registry::RegistryError;
use challenge::parse_challenge;
use retry::{Failure, Outcome};
use token::AuthState;

/// What a request sends.
#[derive(Debug, Clone)]
pub enum BodySource {
    /// Nothing.
    Empty,
    /// In-memory bytes (manifests).
    Bytes(Vec<u8>),
    /// A blob streamed from a file, re-opened on every attempt.
    File {
        /// The file.
        path: PathBuf,
        /// Its size (sent as Content-Length).
        size: u64,
        /// Advanced as the bytes go out (a bar on a terminal, else nothing).
        progress: crate::output::Progress,
    },
}

/// One API request.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// `/v2/...` (relative to the registry) or an absolute URL (upload locations).
    pub url: String,
    /// Content-Type of the body.
    pub content_type: Option<String>,
    /// Accept header.
    pub accept: Option<String>,
    /// The body.
    pub body: BodySource,
    /// Token scopes the request needs, e.g. `repository:team/api:pull,push`.
    pub scopes: Vec<String>,
}

impl Request {
    /// A request with no body.
    pub fn new(method: Method, url: impl Into<String>, scopes: Vec<String>) -> Self {
        Request {
            method,
            url: url.into(),
            content_type: None,
            accept: None,
            body: BodySource::Empty,
            scopes,
        }
    }
}

/// An extra CA certificate to trust (`--registry-ca`), read once for every client.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    /// The file it was read from (for errors).
    pub path: PathBuf,
    /// Its PEM bytes.
    pub pem: Vec<u8>,
}

/// Options for the HTTP client.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Use plain HTTP (loopback registries, `--insecure-registry`).
    pub plain_http: bool,
    /// Extra CA certificate to trust.
    pub extra_ca: Option<CaCertificate>,
    /// Retry settings.
    pub policy: RetryPolicy,
    /// Bounds on every wait.
    pub timeouts: Timeouts,
}

/// A client for one registry.
pub struct RegistryClient {
    http: Client,
    base: String,
    /// `base`, parsed once: requests to other origins get no credentials.
    base_url: Option<reqwest::Url>,
    registry: String,
    credential: Credential,
    policy: RetryPolicy,
    timeouts: Timeouts,
    reporter: Reporter,
    state: Mutex<AuthState>,
}

impl RegistryClient {
    /// A client for the registry of `repo`.
    pub fn new(
        repo: &Repository,
        credential: Credential,
        opts: &ClientOptions,
    ) -> Result<Self, RegistryError> {
        // reqwest is built without a default crypto provider; use ring (no C toolchain
        // beyond what ring itself needs, and it builds for musl).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .user_agent(concat!("cargo-containerize/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.timeouts.connect)
            // The wait for an answer to a request without a body, and for each read of a
            // response body; a blob upload gets the whole-request bound instead (below).
            .timeout(opts.timeouts.read);
        let invalid_ca = |ca: &CaCertificate, e: reqwest::Error| RegistryError::InvalidCa {
            path: ca.path.clone(),
            reason: error_chain(&e),
        };
        if let Some(ca) = &opts.extra_ca {
            let cert = reqwest::Certificate::from_pem(&ca.pem).map_err(|e| invalid_ca(ca, e))?;
            builder = builder.add_root_certificate(cert);
        }
        // With rustls the PEM is parsed here, so a bad CA file fails the build; nothing
        // else we configure can.
        let http = builder.build().map_err(|e| match &opts.extra_ca {
            Some(ca) => invalid_ca(ca, e),
            None => RegistryError::ClientSetup {
                reason: error_chain(&e),
            },
        })?;
        let scheme = if opts.plain_http { "http" } else { "https" };
        Ok(RegistryClient {
            http,
            base_url: reqwest::Url::parse(&format!("{scheme}://{}", repo.api_host())).ok(),
            base: format!("{scheme}://{}", repo.api_host()),
            registry: repo.registry.clone(),
            credential,
            policy: opts.policy,
            timeouts: opts.timeouts,
            reporter: Reporter::silent(),
            state: Mutex::new(AuthState::default()),
        })
    }

    /// The registry as the user named it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Reports retries through `reporter` (`-v` lines).
    pub fn set_reporter(&mut self, reporter: Reporter) {
        self.reporter = reporter;
    }

    /// The retry policy (upload sessions restart with it).
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Runs `attempt` through the retry loop with this client's policy, saying on `-v`
    /// what failed and how long it waits before each retry (`what`: the request).
    pub fn retrying<T>(
        &self,
        what: &str,
        attempt: impl FnMut(u32) -> Result<T, Failure>,
        give_up: impl FnOnce(retry::Exhausted) -> RegistryError,
    ) -> Result<T, RegistryError> {
        let attempts = self.policy.attempts;
        retry::with_retries_reporting(&self.policy, attempt, give_up, |n, detail, delay| {
            self.reporter.verbose(
                "Retrying",
                format!(
                    "{what} in {:.1} s (attempt {} of {attempts} failed: {detail})",
                    delay.as_secs_f64(),
                    n
                ),
            );
        })
    }

    /// A small JSON document's body (manifest, index, config, token answer), at most
    /// [`MAX_DOCUMENT`] bytes; `what` names it in errors.
    pub fn read_document(&self, resp: Response, what: &str) -> Result<Vec<u8>, RegistryError> {
        let mut bytes = Vec::new();
        match self.read_body(resp, &mut bytes, Some(MAX_DOCUMENT)) {
            Ok(_) => Ok(bytes),
            Err(BodyError::TooLarge { declared }) => Err(RegistryError::TooLarge {
                registry: self.registry.clone(),
                what: what.to_string(),
                limit: MAX_DOCUMENT,
                declared: declared.map_or_else(String::new, |n| format!(" (it says {n} bytes)")),
            }),
            Err(BodyError::Interrupted(e)) => Err(e.into()),
            Err(BodyError::Io(e) | BodyError::Write(e)) => Err(RegistryError::ReadBody {
                registry: self.registry.clone(),
                what: what.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Reads `resp`'s body into `out`: at most `limit` bytes (a larger body, or a
    /// declared `Content-Length` over it, is [`BodyError::TooLarge`]), within the
    /// whole-request bound (each read is bounded by the read timeout already), stopping
    /// at once on Ctrl-C. Returns the bytes read.
    pub fn read_body(
        &self,
        mut resp: Response,
        out: &mut dyn std::io::Write,
        limit: Option<u64>,
    ) -> Result<u64, BodyError> {
        let declared = resp.content_length();
        if let (Some(limit), Some(len)) = (limit, declared)
            && len > limit
        {
            return Err(BodyError::TooLarge { declared });
        }
        let deadline = std::time::Instant::now() + self.timeouts.request;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            crate::interrupt::check()?;
            if std::time::Instant::now() > deadline {
                return Err(BodyError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the body took longer than {} s (CARGO_CONTAINERIZE_REQUEST_TIMEOUT)",
                        self.timeouts.request.as_secs()
                    ),
                )));
            }
            let n = match std::io::Read::read(&mut resp, &mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BodyError::Io(e)),
            };
            total += n as u64;
            if limit.is_some_and(|l| total > l) {
                return Err(BodyError::TooLarge { declared });
            }
            out.write_all(&buf[..n]).map_err(BodyError::Write)?;
        }
    }

    /// Resolves a Location header or path against the registry.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        }
    }

    /// Whether `url` has the registry's scheme, host and port (its URL origin).
    fn same_origin(&self, url: &str) -> bool {
        match (reqwest::Url::parse(url), &self.base_url) {
            (Ok(u), Some(base)) => u.origin() == base.origin(),
            _ => false,
        }
    }

    fn build(&self, req: &Request, auth: Option<&str>) -> Result<RequestBuilder, RegistryError> {
        let url = self.absolute(&req.url);
        let mut b = self.http.request(req.method.clone(), &url);
        if let Some(ct) = &req.content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        if let Some(a) = &req.accept {
            b = b.header(header::ACCEPT, a);
        }
        // Credentials go to the registry only: an upload Location on another host (blob
        // storage such as S3 or GCS) is pre-signed and must not see them. (reqwest drops
        // the header on redirects to another host itself.)
        if let Some(a) = auth.filter(|_| self.same_origin(&url)) {
            b = b.header(header::AUTHORIZATION, a);
        }
        b = match &req.body {
            BodySource::Empty => b.header(header::CONTENT_LENGTH, 0),
            BodySource::Bytes(bytes) => b.body(bytes.clone()),
            BodySource::File {
                path,
                size,
                progress,
            } => {
                let f = std::fs::File::open(path)
                    .map_err(|e| RegistryError::Fs(crate::fsutil::FsError::new("read", path, e)))?;
                // Sending the blob and getting the answer, as one bound; Ctrl-C stops
                // the stream at once.
                b.header(header::CONTENT_LENGTH, *size)
                    .timeout(self.timeouts.request)
                    .body(Body::sized(Interruptible(progress.reader(f)), *size))
            }
        };
        Ok(b)
    }

    fn unauthorized(&self, scopes: &[String], detail: &str) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            scopes: scopes.join(" "),
            detail: detail.to_string(),
        }
    }

    /// Sends `req`, answering auth challenges and retrying transient failures. Returns the
    /// final response, whatever its status (except 401, which becomes an error).
    pub fn send(&self, req: &Request) -> Result<Response, RegistryError> {
        let url = self.absolute(&req.url);
        let mut renewed = false;
        let what = format!("{} {url}", req.method);
        self.retrying(
            &what,
            |_| retry::transient_status(self.attempt(req, &mut renewed)?),
            |last| match last.outcome {
                Outcome::Connection => RegistryError::Connection {
                    url: url.clone(),
                    attempts: last.attempts,
                    message: last.detail,
                },
                Outcome::Status(..) => RegistryError::GaveUp {
                    url: url.clone(),
                    attempts: last.attempts,
                    last: last.detail,
                },
            },
        )
    }

    /// One attempt at `req`, for callers that retry a larger sequence themselves (an
    /// upload session) through [`retry::with_retries`]. A 401 with a challenge is answered
    /// within the attempt: the credentials are renewed (a cached token may have expired)
    /// and the request sent again, once per `renewed` flag; a second 401 is an error. A
    /// connection failure is transient, except an untrusted certificate.
    pub fn attempt(&self, req: &Request, renewed: &mut bool) -> Result<Response, Failure> {
        loop {
            let auth = self.authorization(&req.scopes, false)?;
            let sent = send_interruptible(self.build(req, auth.as_deref())?);
            let resp = match sent.map_err(RegistryError::from)? {
                Ok(resp) => resp,
                Err(e) => {
                    let message = error_chain(&e);
                    // An untrusted certificate does not get better with retries.
                    if is_certificate_error(&message) {
                        let registry = self.registry.clone();
                        return Err(RegistryError::Tls { registry, message }.into());
                    }
                    return Err(Failure::Transient {
                        outcome: Outcome::Connection,
                        detail: message,
                    });
                }
            };
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if *renewed {
                // Valid credentials without the right (a pull-only account or token): the
                // registry says so in its challenge.
                let insufficient = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("insufficient_scope"));
                if insufficient {
                    return Err(RegistryError::InsufficientScope {
                        registry: self.registry.clone(),
                        scopes: req.scopes.join(" "),
                    }
                    .into());
                }
                return Err(self
                    .unauthorized(&req.scopes, "the registry rejected the credentials (401)")
                    .into());
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let Some(challenge) = challenge else {
                return Err(self
                    .unauthorized(
                        &req.scopes,
                        "401 without a usable WWW-Authenticate challenge",
                    )
                    .into());
            };
            if let Ok(mut s) = self.state.lock() {
                s.challenge = Some(challenge);
            }
            self.authorization(&req.scopes, true)?;
            *renewed = true;
        }
    }
}

/// The largest manifest, index, config or token answer read (containerd's limit too).
pub const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;

/// A response body that could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit (`declared`: the registry's `Content-Length`).
    TooLarge {
        /// What the registry declared, if anything.
        declared: Option<u64>,
    },
    /// The connection broke, stalled or took too long: worth another attempt.
    Io(std::io::Error),
    /// Writing what was read failed (a full disk).
    Write(std::io::Error),
    /// Ctrl-C.
    Interrupted(crate::interrupt::Interrupted),
}

impl From<crate::interrupt::Interrupted> for BodyError {
    fn from(e: crate::interrupt::Interrupted) -> Self {
        BodyError::Interrupted(e)
    }
}

/// Sends `request` on a thread of its own and waits for it, so that Ctrl-C ends the wait
/// at once (the abandoned request ends by its own timeouts, or with the process).
fn send_interruptible(
    request: RequestBuilder,
) -> Result<reqwest::Result<Response>, crate::interrupt::Interrupted> {
    crate::interrupt::check()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(request.send());
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(result) => {
                crate::interrupt::check()?;
                return Ok(result);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => crate::interrupt::check()?,
            // The sending thread always sends before it ends.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::interrupt::Interrupted);
            }
        }
    }
}

/// A request body that ends the request with an error as soon as Ctrl-C is pressed.
struct Interruptible<R>(R);

impl<R: std::io::Read> std::io::Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::interrupt::requested() {
            return Err(std::io::Error::other("interrupted"));
        }
        self.0.read(buf)
    }
}

/// Whether a connection error is the TLS handshake refusing the server's certificate
/// (rustls reports `invalid peer certificate: …`; the error is wrapped in io::Error, which
/// hides it from `source()`, so its text is what there is to go on).
fn is_certificate_error(chain: &str) -> bool {
    chain.contains("invalid peer certificate")
}

/// An error and its causes on one line (reqwest hides the interesting part in `source`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
