//! `cargo containerize login REGISTRY -u USER --password-stdin`: checks the credentials
//! against the registry, then stores them in docker's `config.json` like `docker login`.
//! The check connects the way a push does (`registry::connect_as`): the same scheme
//! choice, `--registry-ca`, `--insecure-registry` and retries.

use std::io::Read;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};

use crate::cli::LoginArgs;
use crate::commands::{Error, Outcome};
use crate::config::Env;
use crate::config::registry::{Credential, RegistrySettings, resolve_registry};
use crate::output::Shell;
use crate::reference::Repository;
use crate::registry::credstore::{self, CredentialStore, StoreError};
use crate::registry::transport::Request;
use crate::registry::{self, RegistryError};

/// Errors of `login`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoginError {
    /// Bad registry name or no password.
    #[error("{0}")]
    #[diagnostic(code(containerize::usage))]
    Usage(String),
    /// The registry said no.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    /// Reading, checking or writing docker's config (or its credential helper).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

impl LoginError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoginError::Usage(_) => crate::exit::CONFIG,
            LoginError::Registry(_) => crate::exit::REGISTRY,
            LoginError::Store(e) => e.exit_code(),
        }
    }
}

/// The settings a push would use for `repo` (`--insecure` is `--insecure-registry` for
/// the registry logged in to).
fn registry_settings(
    args: &LoginArgs,
    repo: &Repository,
    env: &Env,
) -> Result<RegistrySettings, LoginError> {
    let mut insecure = args.insecure_registry.clone();
    if args.insecure {
        insecure.push(repo.registry.clone());
    }
    resolve_registry(insecure, args.registry_ca.clone(), None, env)
        .map_err(|e| LoginError::Usage(e.to_string()))
}

/// Runs `login`.
pub fn exec(args: LoginArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    run(args, env, shell)?;
    Ok(Outcome::default())
}

fn run(args: LoginArgs, env: &Env, shell: &mut Shell) -> Result<(), LoginError> {
    let repo = Repository::parse(&args.registry).map_err(|e| LoginError::Usage(e.to_string()))?;
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| LoginError::Usage(format!("could not read the password from stdin: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(LoginError::Usage(
            "no password on stdin (pipe it: echo \"$TOKEN\" | cargo containerize login ...)".into(),
        ));
    }
    let credential = Credential::Basic {
        username: args.username.clone(),
        password: password.clone(),
    };
    let settings = registry_settings(&args, &repo, env)?;
    let path: PathBuf = settings.auth.docker_config.clone().ok_or_else(|| {
        LoginError::Usage("cannot find docker's config directory: set DOCKER_CONFIG or HOME".into())
    })?;
    // Checked before the registry is asked, and never replaced when it does not parse.
    let config = credstore::read_docker_config(&path)?;
    let client =
        registry::connect_as(&repo, credential, &settings, registry::extra_ca(&settings)?)?;
    let resp = client.send(&Request::new(Method::GET, "/v2/", Vec::new()))?;
    if resp.status() != StatusCode::OK {
        return Err(RegistryError::Unexpected {
            registry: repo.registry.clone(),
            action: "a login check (GET /v2/)".into(),
            status: resp.status().as_u16(),
            code: String::new(),
            message: String::new(),
        }
        .into());
    }
    let stored = config.store(
        repo.auth_key(),
        &args.username,
        &password,
        // The same bound as a helper's `get` during a push (CARGO_CONTAINERIZE_READ_TIMEOUT).
        settings.timeouts.read,
    )?;
    let place = match stored {
        CredentialStore::File => path.display().to_string(),
        CredentialStore::Helper(h) => format!("docker-credential-{h}, named in {}", path.display()),
    };
    shell.status(
        "Login",
        format!(
            "succeeded for {} (credentials stored in {place})",
            repo.registry
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(insecure: bool, insecure_registry: &[&str], ca: Option<&str>) -> LoginArgs {
        LoginArgs {
            registry: "reg.example:5000".into(),
            username: "me".into(),
            password_stdin: true,
            insecure,
            insecure_registry: insecure_registry.iter().map(|h| h.to_string()).collect(),
            registry_ca: ca.map(PathBuf::from),
        }
    }

    #[test]
    fn login_connects_with_the_settings_a_push_would_use() {
        let repo = Repository::parse("reg.example:5000").unwrap();
        let env = Env::from_pairs([
            ("CARGO_CONTAINERIZE_RETRY_ATTEMPTS", "2"),
            ("DOCKER_CONFIG", "/d"),
        ]);
        let s = registry_settings(&args(false, &[], Some("ca.pem")), &repo, &env).unwrap();
        assert!(s.insecure_registries.is_empty());
        assert_eq!(s.registry_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(s.retry.attempts, 2);
        assert_eq!(s.auth.docker_config, Some(PathBuf::from("/d/config.json")));
        let s = registry_settings(&args(true, &["other:1"], None), &repo, &env).unwrap();
        assert_eq!(s.insecure_registries, ["other:1", "reg.example:5000"]);
        let bad = Env::from_pairs([("CARGO_CONTAINERIZE_RETRY_ATTEMPTS", "x")]);
        assert!(matches!(
            registry_settings(&args(false, &[], None), &repo, &bad),
            Err(LoginError::Usage(_))
        ));
    }
}
