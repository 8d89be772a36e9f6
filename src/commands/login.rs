//! `cargo containerize login REGISTRY -u USER --password-stdin`: checks the credentials
//! against the registry, then stores them in docker's `config.json` like `docker login`.

use std::io::Read;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};

use crate::config::registry::Credential;
use crate::config::{self, Env};
use crate::output::Shell;
use crate::registry::RegistryError;
use crate::registry::auth;
use crate::registry::reference::Repository;
use crate::registry::transport::{ClientOptions, RegistryClient, Request};

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
}

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
    /// Writing the config.
    #[error(transparent)]
    #[diagnostic(code(containerize::login))]
    Fs(#[from] crate::fsutil::FsError),
}

/// Runs `login`.
pub fn exec(args: LoginArgs, env: &Env, shell: &mut Shell) -> Result<(), LoginError> {
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
    let opts = ClientOptions {
        plain_http: args.insecure || repo.is_loopback(),
        ..Default::default()
    };
    let client = RegistryClient::new(&repo, credential, &opts)?;
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
    let sources = config::auth_sources(env).map_err(|e| LoginError::Usage(e.to_string()))?;
    let path: PathBuf = sources.docker_config.ok_or_else(|| {
        LoginError::Usage("cannot find docker's config directory: set DOCKER_CONFIG or HOME".into())
    })?;
    auth::store_credential(&path, repo.auth_key(), &args.username, &password)?;
    shell.status(
        "Login",
        format!(
            "succeeded for {} (credentials stored in {})",
            repo.registry,
            path.display()
        ),
    );
    Ok(())
}
