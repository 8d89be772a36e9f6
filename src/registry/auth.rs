//! Registry host → [`Credential`], looked up the way docker and podman do: explicit
//! `CARGO_CONTAINERIZE_REGISTRY_USERNAME`/`_PASSWORD` (CI), docker's `config.json`
//! (`auths` with base64 `auth` or `identitytoken`, `credHelpers`, `credsStore` through
//! `docker-credential-*` helpers), podman's `auth.json`, then anonymous. Credentials never
//! reach `Debug` output, logs or errors.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::config::registry::{AuthSources, Credential};
use crate::reference::Repository;

/// A credential helper or config file that failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("could not read the credentials for {registry} from {source_desc}: {message}")]
#[diagnostic(
    code(containerize::auth),
    help("check the file or helper, or log in again: cargo containerize login {registry}")
)]
pub struct AuthError {
    /// The registry.
    pub registry: String,
    /// Which file or helper.
    pub source_desc: String,
    /// What went wrong (never includes credentials).
    pub message: String,
}

fn from_file(
    path: &PathBuf,
    repo: &Repository,
    limit: Duration,
) -> Result<Option<Credential>, AuthError> {
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    // A credential helper may wait for a prompt nobody sees (a locked keychain): the
    // lookup runs aside and is given up on after `limit`.
    let (tx, rx) = std::sync::mpsc::channel();
    let key = repo.auth_key().to_string();
    std::thread::spawn(move || {
        let _ = tx.send(docker_credential::get_credential_from_reader(
            BufReader::new(file),
            &key,
        ));
    });
    let answer = rx.recv_timeout(limit).map_err(|_| AuthError {
        registry: repo.registry.clone(),
        source_desc: format!("the credential helper configured in `{}`", path.display()),
        message: format!(
            "no answer within {} s (CARGO_CONTAINERIZE_READ_TIMEOUT); the helper may be waiting for a password prompt or a locked keychain",
            limit.as_secs()
        ),
    })?;
    match answer {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Credential::Basic { username, password }))
        }
        Ok(DockerCredential::IdentityToken(t)) => Ok(Some(Credential::IdentityToken(t))),
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound,
        ) => Ok(None),
        // A store helper that has nothing for this registry answers "credentials not found".
        Err(CredentialRetrievalError::HelperFailure { stdout, stderr, .. })
            if stdout.contains("credentials not found")
                || stderr.contains("credentials not found") =>
        {
            Ok(None)
        }
        Err(CredentialRetrievalError::HelperFailure { helper, stderr, .. }) => Err(AuthError {
            registry: repo.registry.clone(),
            source_desc: format!(
                "docker-credential-{helper} (configured in `{}`)",
                path.display()
            ),
            message: format!("the helper failed: {}", stderr.trim()),
        }),
        Err(e) => Err(AuthError {
            registry: repo.registry.clone(),
            source_desc: format!("`{}`", path.display()),
            message: e.to_string(),
        }),
    }
}

/// Finds the credential for `repo`, and says where it came from (for `-v`).
pub fn credential_for(
    repo: &Repository,
    sources: &AuthSources,
    limit: Duration,
) -> Result<(Credential, String), AuthError> {
    if let Some(c) = &sources.env {
        return Ok((
            c.clone(),
            "CARGO_CONTAINERIZE_REGISTRY_USERNAME/PASSWORD".into(),
        ));
    }
    let files = sources.docker_config.iter().chain(&sources.podman_auth);
    for path in files {
        if let Some(c) = from_file(path, repo, limit)? {
            return Ok((c, format!("`{}`", path.display())));
        }
    }
    Ok((Credential::Anonymous, "no credentials (anonymous)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    fn repo() -> Repository {
        Repository::parse("127.0.0.1:5000/team").unwrap()
    }

    #[test]
    fn reads_docker_then_podman_files_and_falls_back_to_anonymous() {
        let d = tempfile::tempdir().unwrap();
        let docker = d.path().join("config.json");
        let podman = d.path().join("auth.json");
        std::fs::write(&docker, r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#).unwrap();
        // base64("user:pw")
        std::fs::write(
            &podman,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwdw=="}}}"#,
        )
        .unwrap();
        let sources = AuthSources {
            env: None,
            docker_config: Some(docker.clone()),
            podman_auth: vec![podman],
        };
        let (c, from) = credential_for(&repo(), &sources, LIMIT).unwrap();
        assert_eq!(
            c,
            Credential::Basic {
                username: "user".into(),
                password: "pw".into()
            }
        );
        assert!(from.contains("auth.json"));
        let none = AuthSources {
            docker_config: Some(docker),
            ..Default::default()
        };
        assert_eq!(
            credential_for(&repo(), &none, LIMIT).unwrap().0,
            Credential::Anonymous
        );
        let env = AuthSources {
            env: Some(Credential::Basic {
                username: "ci".into(),
                password: "x".into(),
            }),
            ..Default::default()
        };
        assert!(
            matches!(credential_for(&repo(), &env, LIMIT).unwrap().0, Credential::Basic { ref username, .. } if username == "ci")
        );
    }

    #[test]
    fn identity_tokens_are_used() {
        let d = tempfile::tempdir().unwrap();
        let docker = d.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjo=","identitytoken":"refresh-me"}}}"#,
        )
        .unwrap();
        let sources = AuthSources {
            docker_config: Some(docker),
            ..Default::default()
        };
        assert_eq!(
            credential_for(&repo(), &sources, LIMIT).unwrap().0,
            Credential::IdentityToken("refresh-me".into())
        );
    }
}
