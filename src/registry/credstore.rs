//! `login`'s writes: credentials → docker's `config.json`, the way `docker login` stores
//! them. A file that does not parse (or whose `auths`, `credHelpers` or `credsStore` have
//! the wrong type) is refused with the parse error and left as it is: replacing it would
//! lose the user's other logins and settings. With `credHelpers.<registry>` or
//! `credsStore` set, the password goes to that `docker-credential-*` helper (`store`) and
//! `config.json` only gets an empty `auths.<registry>` entry, as docker does. A symlinked
//! `config.json` stays a symlink (its target is replaced), and a new file is created with
//! mode 0600 from the start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use crate::fsutil::{self, FsError};
use crate::process::Ended;

/// How long a credential helper may take to store a password, unless told otherwise
/// (`login` passes the read timeout, `CARGO_CONTAINERIZE_READ_TIMEOUT`).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors storing credentials.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    /// `config.json` exists but is not a docker config this tool can update safely.
    #[error("`{}` is not a valid docker config file: {message}", path.display())]
    #[diagnostic(
        code(containerize::login),
        help(
            "fix the file (or move it away), then log in again; it was left unchanged so no other login or setting is lost"
        )
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parse error or the key with the wrong type.
        message: String,
    },
    /// The credential helper failed or did not answer.
    #[error("docker-credential-{helper} (configured in `{}`) could not store the credentials for {registry}: {message}", path.display())]
    #[diagnostic(
        code(containerize::login),
        help(
            "check that docker-credential-{helper} is on PATH and works (`docker-credential-{helper} list`), or remove it from `credsStore`/`credHelpers` to store the password in the file"
        )
    )]
    Helper {
        /// The helper's name (`docker-credential-<helper>`).
        helper: String,
        /// The config file that names it.
        path: PathBuf,
        /// The registry.
        registry: String,
        /// What went wrong (the helper's own message; never the password).
        message: String,
    },
    /// Reading or writing the file.
    #[error(transparent)]
    #[diagnostic(code(containerize::login))]
    Fs(#[from] FsError),
}

impl StoreError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::Malformed { .. } => crate::exit::CONFIG,
            StoreError::Helper { .. } => crate::exit::REGISTRY,
            StoreError::Fs(_) => crate::exit::OUTPUT,
        }
    }
}

/// Where `login` puts a registry's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialStore {
    /// `auths.<registry>.auth` in the file.
    File,
    /// A `docker-credential-<name>` helper.
    Helper(String),
}

/// A parsed docker `config.json` (or an empty one when the file does not exist yet).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

fn malformed(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn valid_helper(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads and checks `path` before anything is changed.
pub fn read_docker_config(path: &Path) -> Result<DockerConfig, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DockerConfig {
                path: path.to_path_buf(),
                doc: Map::new(),
            });
        }
        Err(e) => return Err(FsError::new("read", path, e).into()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // docker treats an empty file as an empty config.
        return Ok(DockerConfig {
            path: path.to_path_buf(),
            doc: Map::new(),
        });
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| malformed(path, e.to_string()))?;
    let Value::Object(doc) = doc else {
        return Err(malformed(
            path,
            format!("the document is {}, expected an object", type_name(&doc)),
        ));
    };
    for key in ["auths", "credHelpers"] {
        if let Some(v) = doc.get(key)
            && !v.is_object()
        {
            return Err(malformed(
                path,
                format!("`{key}` is {}, expected an object", type_name(v)),
            ));
        }
    }
    if let Some(Value::Object(helpers)) = doc.get("credHelpers") {
        for (registry, helper) in helpers {
            if !helper.as_str().is_some_and(valid_helper) {
                return Err(malformed(
                    path,
                    format!("`credHelpers.{registry}` is not a helper name"),
                ));
            }
        }
    }
    if let Some(v) = doc.get("credsStore")
        && !v.as_str().is_some_and(|s| s.is_empty() || valid_helper(s))
    {
        return Err(malformed(path, "`credsStore` is not a helper name"));
    }
    if let Some(Value::Object(auths)) = doc.get("auths") {
        for (registry, entry) in auths {
            if !entry.is_object() {
                return Err(malformed(
                    path,
                    format!(
                        "`auths.{registry}` is {}, expected an object",
                        type_name(entry)
                    ),
                ));
            }
        }
    }
    Ok(DockerConfig {
        path: path.to_path_buf(),
        doc,
    })
}

impl DockerConfig {
    /// Where the password for `key` goes: `credHelpers.<key>`, else `credsStore`, else
    /// the file, in docker's order.
    pub fn store_for(&self, key: &str) -> CredentialStore {
        let per_registry = self
            .doc
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str);
        let global = self
            .doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match per_registry.or(global) {
            Some(h) => CredentialStore::Helper(h.to_string()),
            None => CredentialStore::File,
        }
    }

    /// Stores `username`/`password` for `key` and writes the file (keeping every other
    /// setting); returns where the password went.
    pub fn store(
        mut self,
        key: &str,
        username: &str,
        password: &str,
        helper_timeout: Duration,
    ) -> Result<CredentialStore, StoreError> {
        let store = self.store_for(key);
        let entry = match &store {
            CredentialStore::File => {
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                serde_json::json!({ "auth": auth })
            }
            CredentialStore::Helper(helper) => {
                self.run_helper(helper, key, username, password, helper_timeout)?;
                // docker keeps an empty entry so the registry is listed as logged in.
                serde_json::json!({})
            }
        };
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = auths {
            map.insert(key.to_string(), entry);
        }
        let bytes = serde_json::to_vec_pretty(&Value::Object(self.doc))
            .map_err(|e| FsError::new("write", &self.path, e.into()))?;
        if let Some(dir) = self.path.parent() {
            fsutil::create_dir_all(dir)?;
        }
        fsutil::write_private(&self.path, &bytes)?;
        Ok(store)
    }

    fn run_helper(
        &self,
        helper: &str,
        key: &str,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let fail = |message: String| StoreError::Helper {
            helper: helper.to_string(),
            path: self.path.clone(),
            registry: key.to_string(),
            message,
        };
        let program = format!("docker-credential-{helper}");
        let input =
            serde_json::json!({ "ServerURL": key, "Username": username, "Secret": password });
        let ended = crate::process::output_within(
            Command::new(&program).arg("store"),
            Some(input.to_string().as_bytes()),
            timeout,
        )
        .map_err(|e| fail(format!("could not run `{program} store`: {e}")))?;
        let out = match ended {
            Ended::Exited(out) => out,
            Ended::TimedOut => {
                return Err(fail(format!(
                    "`{program} store` did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
        };
        if !out.status.success() {
            let said = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
            let message = [said(&out.stdout), said(&out.stderr)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
                .replace(password, "<redacted>");
            return Err(fail(format!(
                "`{program} store` failed ({}): {message}",
                out.status
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::registry::{AuthSources, Credential};
    use crate::reference::Repository;
    use std::os::unix::fs::PermissionsExt;

    fn store(cfg: &Path) -> Result<CredentialStore, StoreError> {
        read_docker_config(cfg)?.store("127.0.0.1:5000", "me", "pw:with:colons", HELPER_TIMEOUT)
    }

    #[test]
    fn login_keeps_other_settings_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"credHelpers":{"gcr.io":"gcloud"},"auths":{"other":{"auth":"eDp5"}},"detachKeys":"ctrl-x"}"#,
        )
        .unwrap();
        assert_eq!(store(&cfg).unwrap(), CredentialStore::File);
        let doc: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        assert_eq!(doc["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(doc["auths"]["other"]["auth"], "eDp5");
        assert_eq!(doc["detachKeys"], "ctrl-x");
        let repo = Repository::parse("127.0.0.1:5000/x").unwrap();
        let sources = AuthSources {
            docker_config: Some(cfg.clone()),
            ..Default::default()
        };
        assert_eq!(
            crate::registry::auth::credential_for(&repo, &sources, Duration::from_secs(30))
                .unwrap()
                .0,
            Credential::Basic {
                username: "me".into(),
                password: "pw:with:colons".into()
            }
        );
        assert_eq!(
            std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// Issue 20, item 3: a malformed file is refused and left byte for byte as it was.
    #[test]
    fn r20_a_malformed_config_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        for (text, said) in [
            (r#"{"auths":{"a":{"auth":"eDp5"}},}"#, "trailing comma"),
            (r#"{"auths":"oops"}"#, "`auths` is a string"),
            ("[1,2]", "an array"),
            (r#"{"credHelpers":{"x":7}}"#, "credHelpers.x"),
            (r#"{"auths":{"a":"b"}}"#, "auths.a"),
        ] {
            std::fs::write(&cfg, text).unwrap();
            let err = store(&cfg).unwrap_err();
            assert!(matches!(err, StoreError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains(said), "{err}");
            assert_eq!(err.exit_code(), crate::exit::CONFIG);
            assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
        }
    }

    /// Issue 20, items 3 and 12: a symlinked config stays a symlink; a new file is 0600
    /// from its creation whatever the umask.
    #[test]
    fn r20_a_symlinked_config_stays_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("dotfiles/docker.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, r#"{"proxies":{"default":{"httpProxy":"x"}}}"#).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.path().join("config.json");
        std::os::unix::fs::symlink("dotfiles/docker.json", &link).unwrap();
        store(&link).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let doc: Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
        assert_eq!(doc["proxies"]["default"]["httpProxy"], "x");
        assert!(doc["auths"]["127.0.0.1:5000"]["auth"].is_string());
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(real.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
    }

    #[test]
    fn helpers_are_chosen_in_dockers_order() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"credsStore":"desktop","credHelpers":{"127.0.0.1:5000":"kit"}}"#,
        )
        .unwrap();
        let c = read_docker_config(&cfg).unwrap();
        assert_eq!(
            c.store_for("127.0.0.1:5000"),
            CredentialStore::Helper("kit".into())
        );
        assert_eq!(
            c.store_for("ghcr.io"),
            CredentialStore::Helper("desktop".into())
        );
        let empty = read_docker_config(&d.path().join("missing.json")).unwrap();
        assert_eq!(empty.store_for("ghcr.io"), CredentialStore::File);
    }
}
