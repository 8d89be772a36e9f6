//! One registry's HTTP API, with authentication and retries: requests go out without
//! credentials until the registry answers 401 with a `WWW-Authenticate` challenge; then
//! Basic credentials are sent, or a Bearer token is fetched for the request's scopes
//! (and fetched again when it expires). Transient failures are retried with backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Body, Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use crate::registry::PushError;
use crate::registry::auth::Credential;
use crate::registry::reference::Repository;
use crate::registry::retry::{Decision, Outcome, RetryPolicy};

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
    /// Retry transient failures of this request itself (false where the caller restarts a
    /// larger sequence, like an upload session).
    pub retry: bool,
}

impl Request {
    /// A request with no body that is retried.
    pub fn new(method: Method, url: impl Into<String>, scopes: Vec<String>) -> Self {
        Request {
            method,
            url: url.into(),
            content_type: None,
            accept: None,
            body: BodySource::Empty,
            scopes,
            retry: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let mut map = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (
                quoted[..end].to_string(),
                quoted.get(end + 1..).unwrap_or(""),
            )
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        map.insert(key, val);
        rest = remaining.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: map.remove("realm")?,
            service: map.remove("service"),
            scope: map.remove("scope"),
        }),
        _ => None,
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

/// Options for the HTTP client.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Use plain HTTP (loopback registries, `--insecure-registry`).
    pub plain_http: bool,
    /// Extra CA certificate (PEM) to trust.
    pub extra_ca: Option<Vec<u8>>,
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

fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

fn retry_after(resp: &Response) -> Option<u64> {
    resp.headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl RegistryClient {
    /// A client for the registry of `repo`.
    pub fn new(
        repo: &Repository,
        credential: Credential,
        opts: &ClientOptions,
    ) -> Result<Self, PushError> {
        // reqwest is built without a default crypto provider; use ring (no C toolchain
        // beyond what ring itself needs, and it builds for musl).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .user_agent(concat!("cargo-containerize/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(None::<Duration>);
        if let Some(pem) = &opts.extra_ca {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| PushError::Client {
                message: format!("invalid --registry-ca certificate: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| PushError::Client {
            message: e.to_string(),
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

    fn build(&self, req: &Request, auth: Option<&str>) -> Result<RequestBuilder, PushError> {
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
                    .map_err(|e| PushError::Fs(crate::fsutil::FsError::new("read", path, e)))?;
                b.header(header::CONTENT_LENGTH, *size)
                    .body(Body::sized(progress.reader(f), *size))
            }
        };
        Ok(b)
    }

    /// The Authorization header value for these scopes, fetching a token if needed.
    fn authorization(&self, scopes: &[String], refresh: bool) -> Result<Option<String>, PushError> {
        let challenge = self
            .state
            .lock()
            .map(|s| s.challenge.clone())
            .unwrap_or(None);
        match (challenge, &self.credential) {
            (None, _) => Ok(None),
            (Some(Challenge::Basic), Credential::Basic { username, password }) => {
                use base64::Engine;
                let raw = format!("{username}:{password}");
                Ok(Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )))
            }
            (Some(Challenge::Basic), _) => Err(self.unauthorized(
                scopes,
                "the registry asks for a username and password, and none are configured",
            )),
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }),
                _,
            ) => {
                let mut all: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    all.extend(s.split(' ').map(String::from));
                }
                all.sort();
                all.dedup();
                let key = all.join(" ");
                if !refresh
                    && let Some(t) = self
                        .state
                        .lock()
                        .ok()
                        .and_then(|s| s.tokens.get(&key).cloned())
                {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), &all)?;
                if let Ok(mut s) = self.state.lock() {
                    s.tokens.insert(key, token.clone());
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, PushError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let b = match &self.credential {
                Credential::IdentityToken(refresh) => {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh),
                        ("client_id", "cargo-containerize"),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    let scope = scopes.join(" ");
                    form.push(("scope", &scope));
                    self.http.post(realm).form(&form)
                }
                cred => {
                    let mut q: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = service {
                        q.push(("service", s));
                    }
                    for s in scopes {
                        q.push(("scope", s));
                    }
                    let b = self.http.get(realm).query(&q);
                    match cred {
                        Credential::Basic { username, password } => {
                            b.basic_auth(username, Some(password))
                        }
                        _ => b,
                    }
                }
            };
            let outcome = match b.send() {
                Ok(resp) if resp.status().is_success() => {
                    let t: TokenResponse = resp.json().map_err(|e| PushError::Client {
                        message: format!(
                            "the token service at {realm} sent an unreadable answer: {e}"
                        ),
                    })?;
                    return t.token.or(t.access_token).ok_or_else(|| PushError::Client {
                        message: format!("the token service at {realm} sent no token"),
                    });
                }
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ) =>
                {
                    return Err(self.unauthorized(
                        scopes,
                        &format!(
                            "the token service at {realm} rejected the credentials ({})",
                            resp.status()
                        ),
                    ));
                }
                Ok(resp) => Outcome::Status(resp.status().as_u16(), retry_after(&resp)),
                Err(_) => Outcome::Connection,
            };
            match self.policy.decide(&outcome, attempt, jitter()) {
                Decision::Retry(d) => std::thread::sleep(d),
                Decision::GiveUp => {
                    return Err(PushError::GaveUp {
                        url: realm.to_string(),
                        attempts: attempt,
                        last: format!("{outcome:?}"),
                    });
                }
            }
        }
    }

    fn unauthorized(&self, scopes: &[String], detail: &str) -> PushError {
        PushError::Unauthorized {
            registry: self.registry.clone(),
            scopes: scopes.join(" "),
            detail: detail.to_string(),
        }
    }

    /// Sends `req`, answering auth challenges and retrying transient failures. Returns the
    /// final response, whatever its status (except 401, which becomes an error).
    pub fn send(&self, req: &Request) -> Result<Response, PushError> {
        let mut attempt = 0;
        let mut refreshed = false;
        let mut last_error = String::new();
        loop {
            attempt += 1;
            let auth = self.authorization(&req.scopes, false)?;
            let url = self.absolute(&req.url);
            let result = self.build(req, auth.as_deref())?.send();
            let outcome = match result {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_challenge);
                    if refreshed {
                        return Err(self.unauthorized(
                            &req.scopes,
                            "the registry rejected the credentials (401)",
                        ));
                    }
                    let Some(challenge) = challenge else {
                        return Err(self.unauthorized(
                            &req.scopes,
                            "401 without a usable WWW-Authenticate challenge",
                        ));
                    };
                    if let Ok(mut s) = self.state.lock() {
                        s.challenge = Some(challenge);
                    }
                    // A fresh token (the cached one may have expired); one retry only.
                    self.authorization(&req.scopes, true)?;
                    refreshed = true;
                    attempt -= 1;
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let outcome = Outcome::Status(status, retry_after(&resp));
                    if !req.retry || !crate::registry::retry::is_transient(&outcome) {
                        return Ok(resp);
                    }
                    outcome
                }
                Err(e) => {
                    let message = error_chain(&e);
                    // An untrusted certificate does not get better with retries.
                    if is_certificate_error(&message) {
                        let registry = self.registry.clone();
                        return Err(PushError::Tls { registry, message });
                    }
                    if !req.retry {
                        let attempts = attempt;
                        return Err(PushError::Connection {
                            url,
                            attempts,
                            message,
                        });
                    }
                    last_error = message;
                    Outcome::Connection
                }
            };
            match self.policy.decide(&outcome, attempt, jitter()) {
                Decision::Retry(d) => std::thread::sleep(d),
                Decision::GiveUp => {
                    return Err(match outcome {
                        Outcome::Connection => PushError::Connection {
                            url,
                            attempts: attempt,
                            message: last_error,
                        },
                        Outcome::Status(s, _) => PushError::GaveUp {
                            url,
                            attempts: attempt,
                            last: format!("HTTP {s}"),
                        },
                    });
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_and_basic_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:9/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://auth.example/token", service="x""#),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("x".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
