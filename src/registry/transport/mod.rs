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
use std::time::Duration;

use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, header};

use crate::config::registry::{Credential, RetryPolicy};
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
            .connect_timeout(Duration::from_secs(30))
            .timeout(None::<Duration>);
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
            state: Mutex::new(AuthState::default()),
        })
    }

    /// The registry as the user named it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The retry policy (upload sessions restart with it).
    pub fn policy(&self) -> RetryPolicy {
        self.policy
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
                b.header(header::CONTENT_LENGTH, *size)
                    .body(Body::sized(progress.reader(f), *size))
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
        retry::with_retries(
            &self.policy,
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
            let resp = match self.build(req, auth.as_deref())?.send() {
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
