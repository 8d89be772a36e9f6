//! The registry settings schema: how to reach registries (credentials' sources, plain-HTTP
//! hosts, an extra CA, retries, parallel uploads), resolved by `config` from flags and the
//! environment. Plain data, so `config` depends on nothing above it; the registry stage
//! reads these values and holds the behaviour (`registry::transport`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Env, auth_sources};

/// How to talk to registries (from the command line and environment): for `--push`, for
/// pulling `--base` images and for `login`.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Where credentials are looked up.
    pub auth: AuthSources,
    /// Hosts spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Extra CA certificate to trust.
    pub registry_ca: Option<PathBuf>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Parallel blob uploads.
    pub jobs: usize,
    /// How long any network wait may last.
    pub timeouts: Timeouts,
}

/// The bounds on every network wait (`CARGO_CONTAINERIZE_CONNECT_TIMEOUT`,
/// `_READ_TIMEOUT`, `_REQUEST_TIMEOUT`, in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection (TCP and TLS handshake).
    pub connect: Duration,
    /// Waiting for the registry: the answer to a request without a body, and each read
    /// of a response body (a registry that goes silent this long has stalled); also how
    /// long a credential helper may take.
    pub read: Duration,
    /// A whole request: sending a blob and getting the answer, or reading a whole
    /// response body (a registry that trickles bytes cannot hold the run forever).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
            request: Duration::from_secs(600),
        }
    }
}

/// How to authenticate to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials.
    Anonymous,
    /// Username and password (or a personal access token as password).
    Basic {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker's config).
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where credentials may be found (resolved from the environment by `config`).
#[derive(Debug, Clone, Default)]
pub struct AuthSources {
    /// `CARGO_CONTAINERIZE_REGISTRY_USERNAME` + `_PASSWORD`.
    pub env: Option<Credential>,
    /// docker's `config.json` (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// podman's `auth.json` candidates, in order (`$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`).
    pub podman_auth: Vec<PathBuf>,
}

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per request (first try included).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base: Duration,
    /// Largest delay between attempts (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// Resolves [`RegistrySettings`] from the registry flags (`--insecure-registry`,
/// `--registry-ca`, `-j`) and the environment (credentials' sources,
/// `CARGO_CONTAINERIZE_RETRY_ATTEMPTS`, `CARGO_CONTAINERIZE_RETRY_BASE_MS`). Every
/// command that talks to a registry resolves its settings here.
pub fn resolve_registry(
    insecure_registries: Vec<String>,
    registry_ca: Option<PathBuf>,
    jobs: Option<u32>,
    env: &Env,
) -> Result<RegistrySettings, ConfigError> {
    Ok(RegistrySettings {
        auth: auth_sources(env)?,
        insecure_registries,
        registry_ca,
        retry: retry_policy(env)?,
        jobs: jobs.map_or(4, |j| j.max(1) as usize),
        timeouts: timeouts(env)?,
    })
}

/// An environment variable holding a number, if set.
fn env_number(env: &Env, key: &str) -> Result<Option<u64>, ConfigError> {
    env.get(key)
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| ConfigError::BadArg {
                origin: key.into(),
                message: format!("`{v}` is not a number"),
            })
        })
        .transpose()
}

/// The default [`Timeouts`] with the environment's overrides (whole seconds, at least 1).
fn timeouts(env: &Env) -> Result<Timeouts, ConfigError> {
    let mut t = Timeouts::default();
    for (key, field) in [
        ("CARGO_CONTAINERIZE_CONNECT_TIMEOUT", &mut t.connect),
        ("CARGO_CONTAINERIZE_READ_TIMEOUT", &mut t.read),
        ("CARGO_CONTAINERIZE_REQUEST_TIMEOUT", &mut t.request),
    ] {
        match env_number(env, key)? {
            Some(0) => {
                return Err(ConfigError::BadArg {
                    origin: key.into(),
                    message: "a timeout of 0 seconds would fail every request; give at least 1 \
                              (every network wait is bounded, there is no \"never\")"
                        .into(),
                });
            }
            Some(secs) => *field = Duration::from_secs(secs),
            None => {}
        }
    }
    Ok(t)
}

/// The default [`RetryPolicy`] with the environment's overrides.
fn retry_policy(env: &Env) -> Result<RetryPolicy, ConfigError> {
    let number = |key: &str| env_number(env, key);
    let mut retry = RetryPolicy::default();
    if let Some(n) = number("CARGO_CONTAINERIZE_RETRY_ATTEMPTS")? {
        retry.attempts = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    }
    if let Some(ms) = number("CARGO_CONTAINERIZE_RETRY_BASE_MS")? {
        retry.base = Duration::from_millis(ms);
    }
    Ok(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_settings_come_from_the_environment() {
        let env = Env::from_pairs([
            ("CARGO_CONTAINERIZE_RETRY_ATTEMPTS", "0"),
            ("CARGO_CONTAINERIZE_RETRY_BASE_MS", "1"),
        ]);
        let s = resolve_registry(vec!["reg:5000".into()], None, Some(0), &env).unwrap();
        assert_eq!(
            (s.retry.attempts, s.retry.base, s.retry.max, s.jobs),
            (1, Duration::from_millis(1), RetryPolicy::default().max, 1)
        );
        assert_eq!(s.insecure_registries, ["reg:5000"]);
        assert_eq!(
            resolve_registry(vec![], None, None, &Env::default())
                .unwrap()
                .retry,
            RetryPolicy::default()
        );
        let t = Env::from_pairs([
            ("CARGO_CONTAINERIZE_CONNECT_TIMEOUT", "2"),
            ("CARGO_CONTAINERIZE_READ_TIMEOUT", "3"),
            ("CARGO_CONTAINERIZE_REQUEST_TIMEOUT", " 4 "),
        ]);
        let t = resolve_registry(vec![], None, None, &t).unwrap().timeouts;
        assert_eq!(
            (t.connect, t.read, t.request),
            (
                Duration::from_secs(2),
                Duration::from_secs(3),
                Duration::from_secs(4)
            )
        );
        let zero = Env::from_pairs([("CARGO_CONTAINERIZE_READ_TIMEOUT", "0")]);
        assert!(matches!(
            resolve_registry(vec![], None, None, &zero),
            Err(ConfigError::BadArg { origin, .. }) if origin == "CARGO_CONTAINERIZE_READ_TIMEOUT"
        ));
        let bad = Env::from_pairs([("CARGO_CONTAINERIZE_RETRY_BASE_MS", "soon")]);
        assert!(matches!(
            resolve_registry(vec![], None, None, &bad),
            Err(ConfigError::BadArg { origin, .. }) if origin == "CARGO_CONTAINERIZE_RETRY_BASE_MS"
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(format!("{c:?}").contains("<redacted>"));
        assert!(!format!("{:?}", Credential::IdentityToken("tok".into())).contains("tok"));
    }
}
