//! Repository names: `--repo REGISTRY/NAMESPACE` + image name → registry host and
//! repository path, with Docker Hub's defaults (`docker.io` → `registry-1.docker.io`,
//! `library/` for single names).

/// Where an image is pushed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Repository {
    /// Registry host as the user wrote it, with port (`127.0.0.1:5000`, `ghcr.io`, `docker.io`).
    pub registry: String,
    /// Path inside the registry (`org/app`).
    pub path: String,
}

/// A repository string that cannot be parsed. It never holds a password: a
/// `user:password@` part of the input is shown as `<redacted>@`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid repository ({reason})")]
pub struct BadRepository {
    /// The input, with any credentials redacted.
    pub input: String,
    /// What is wrong and what to write instead.
    pub reason: &'static str,
}

const EXPECTED: &str = "expected REGISTRY/NAMESPACE, e.g. ghcr.io/my-org or 127.0.0.1:5000/team";
const NO_CREDENTIALS: &str = "credentials do not belong in a repository: drop the `user:password@` part and run `cargo containerize login REGISTRY -u USER --password-stdin`";
const NO_SCHEME: &str = "write REGISTRY[:PORT]/NAMESPACE without a scheme: loopback registries and --insecure-registry hosts use plain HTTP, the rest HTTPS";

impl BadRepository {
    fn new(input: &str, reason: &'static str) -> BadRepository {
        BadRepository {
            input: redact_userinfo(input),
            reason,
        }
    }
}

/// `s` with a `user[:password]@` part before the host replaced by `<redacted>@`
/// (`http://u:pw@host/ns` → `http://<redacted>@host/ns`), for messages and events.
pub fn redact_userinfo(s: &str) -> String {
    let (scheme, rest) = match s.find("://") {
        Some(i) => s.split_at(i + 3),
        None => ("", s),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>{}", &rest[at..]),
        None => s.to_string(),
    }
}

/// Whether `host` is `HOST[:PORT]` (a DNS name, an IPv4 address or a bracketed IPv6 one).
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

impl Repository {
    /// Parses `REGISTRY/PATH` (or a bare Docker Hub path like `user`).
    pub fn parse(s: &str) -> Result<Repository, BadRepository> {
        let bad = || BadRepository::new(s, EXPECTED);
        if s.contains("://") {
            return Err(BadRepository::new(s, NO_SCHEME));
        }
        if s.split('/').next().is_some_and(|host| host.contains('@')) {
            return Err(BadRepository::new(s, NO_CREDENTIALS));
        }
        let s = s.trim().trim_end_matches('/');
        let (first, rest) = match s.split_once('/') {
            Some((f, r)) => (f, Some(r)),
            None => (s, None),
        };
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        let (registry, path) = match (is_host, rest) {
            (true, Some(rest)) => (first.to_string(), rest.to_string()),
            (true, None) => (first.to_string(), String::new()),
            (false, _) => ("docker.io".to_string(), s.to_string()),
        };
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !valid_host(&registry) || (!path.is_empty() && !path.split('/').all(valid_component)) {
            return Err(bad());
        }
        // A port is 1-65535: `host:99999` can never connect, so it is a usage error and
        // not something to retry.
        if let Some((_, port)) = registry.rsplit_once(':')
            && !registry.ends_with(']')
            && !port.parse::<u16>().is_ok_and(|p| p != 0)
        {
            return Err(bad());
        }
        Ok(Repository { registry, path })
    }

    /// The repository for image `name` under this one (`<repo>/<name>`).
    pub fn join(&self, name: &str) -> Repository {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.path)
        };
        Repository {
            registry: self.registry.clone(),
            path,
        }
        .normalized()
    }

    fn normalized(self) -> Repository {
        if self.registry == "docker.io" && !self.path.contains('/') {
            return Repository {
                path: format!("library/{}", self.path),
                ..self
            };
        }
        self
    }

    /// The host the API lives on (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        }
    }

    /// The key credentials are stored under (`https://index.docker.io/v1/` for Docker Hub).
    pub fn auth_key(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
                "https://index.docker.io/v1/"
            }
            other => other,
        }
    }

    /// Whether the registry is on loopback (plain HTTP by default).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    self.registry.as_str()
                }
            });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// Checks a tag against the OCI distribution grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registries_namespaces_and_docker_hub() {
        let r = Repository::parse("127.0.0.1:5000/team").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.path.as_str()),
            ("127.0.0.1:5000", "team")
        );
        assert_eq!(r.join("api").to_string(), "127.0.0.1:5000/team/api");
        assert!(r.is_loopback());
        let g = Repository::parse("ghcr.io/my-org/apps")
            .unwrap()
            .join("api");
        assert_eq!(g.to_string(), "ghcr.io/my-org/apps/api");
        assert!(!g.is_loopback());
        let hub = Repository::parse("someone").unwrap().join("api");
        assert_eq!(
            (hub.api_host(), hub.path.as_str()),
            ("registry-1.docker.io", "someone/api")
        );
        assert_eq!(hub.auth_key(), "https://index.docker.io/v1/");
        assert_eq!(
            Repository::parse("localhost:5000")
                .unwrap()
                .join("api")
                .to_string(),
            "localhost:5000/api"
        );
        assert!(Repository::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(Repository::parse("ghcr.io/My-Org").is_err());
        for bad_port in [
            "127.0.0.1:99999/ns",
            "reg.example:0/ns",
            "reg.example:http/ns",
        ] {
            assert!(Repository::parse(bad_port).is_err(), "{bad_port}");
        }
        assert!(Repository::parse("[::1]/x").is_ok());
        assert!(Repository::parse("ghcr.io//x").is_err());
    }

    /// Issue 20, item 4: a password in a repository is refused and never shown.
    #[test]
    fn r20_credentials_in_a_repository_are_refused_and_redacted() {
        for input in [
            "user:s3cret-PW@127.0.0.1:5000/ns",
            "http://user:s3cret-PW@127.0.0.1:5000/ns",
            "https://s3cret-PW@ghcr.io/org",
            "user:s3cret-PW@ghcr.io",
        ] {
            let err = Repository::parse(input).unwrap_err();
            let shown = err.to_string();
            assert!(!shown.contains("s3cret-PW"), "{shown}");
            assert!(shown.contains("<redacted>@"), "{shown}");
            let err = ImageReference::parse(&format!("{input}/base:1")).unwrap_err();
            assert!(!err.to_string().contains("s3cret-PW"), "{err}");
        }
        assert!(
            Repository::parse("user:pw@host/ns")
                .unwrap_err()
                .reason
                .contains("cargo containerize login")
        );
        assert!(Repository::parse("http://127.0.0.1:5000/ns").is_err());
        assert_eq!(
            redact_userinfo("ghcr.io/org@sha256:abc"),
            "ghcr.io/org@sha256:abc"
        );
    }
}

/// A full image reference: `REGISTRY/PATH[:TAG][@sha256:…]` (Docker Hub names allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The repository.
    pub repository: Repository,
    /// The tag (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// The digest, if pinned.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses a reference like `gcr.io/distroless/static:nonroot` or `127.0.0.1:5000/b@sha256:…`.
    pub fn parse(s: &str) -> Result<ImageReference, BadRepository> {
        let bad = || BadRepository::new(s, EXPECTED);
        if s.contains("://") {
            return Err(BadRepository::new(s, NO_SCHEME));
        }
        // `name@sha256:…` has its `@` after the last `/`; one before the first is userinfo.
        if let Some((host, _)) = s.split_once('/')
            && host.contains('@')
        {
            return Err(BadRepository::new(s, NO_CREDENTIALS));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(bad)?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if tag.as_deref().is_some_and(|t| validate_tag(t).is_err()) {
            return Err(bad());
        }
        let repo = Repository::parse(path)?;
        let (head, last) = match repo.path.rsplit_once('/') {
            Some((h, l)) => (Some(h.to_string()), l.to_string()),
            None => (None, repo.path.clone()),
        };
        let repository = Repository {
            registry: repo.registry.clone(),
            path: head.unwrap_or_default(),
        }
        .join(&last);
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageReference {
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_hub_names() {
        let r = ImageReference::parse("gcr.io/distroless/static:nonroot").unwrap();
        assert_eq!(
            (r.repository.to_string().as_str(), r.reference()),
            ("gcr.io/distroless/static", "nonroot")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageReference::parse(&format!("127.0.0.1:5000/base@{d}")).unwrap();
        assert_eq!(
            (r.repository.path.as_str(), r.reference(), r.tag.clone()),
            ("base", d.as_str(), None)
        );
        let r = ImageReference::parse("alpine").unwrap();
        assert_eq!(
            (r.repository.to_string().as_str(), r.reference()),
            ("docker.io/library/alpine", "latest")
        );
        let r = ImageReference::parse("localhost:5000/x/y:1.0").unwrap();
        assert_eq!(
            (
                r.repository.registry.as_str(),
                r.repository.path.as_str(),
                r.reference()
            ),
            ("localhost:5000", "x/y", "1.0")
        );
        assert!(ImageReference::parse("x@sha256:123").is_err());
    }
}
