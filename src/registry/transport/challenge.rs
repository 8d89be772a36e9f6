//! `WWW-Authenticate` header → [`Challenge`]: the scheme a registry asks for on a 401 and,
//! for Bearer, where to fetch a token. See
//! <https://distribution.github.io/distribution/spec/auth/token/> and RFC 9110 §11.6.1.

use std::collections::HashMap;

/// What a registry's 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Username and password on every request.
    Basic,
    /// A token from `realm`, for `service` and `scope`.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// Scopes the registry asked for (space-separated).
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header; `None` for schemes we cannot answer, or a Bearer
/// challenge without a realm.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
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

    #[test]
    fn schemes_and_keys_are_case_insensitive_and_values_may_be_unquoted() {
        assert_eq!(
            parse_challenge("bearer REALM=https://auth.example/token,Service=reg"),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge("BASIC"), Some(Challenge::Basic));
        assert_eq!(parse_challenge("  Basic  "), Some(Challenge::Basic));
    }

    #[test]
    fn keeps_commas_and_spaces_inside_quoted_values() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://a.example/t",scope="repository:x/y:pull,push repository:z:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://a.example/t".into(),
                service: None,
                scope: Some("repository:x/y:pull,push repository:z:pull".into())
            })
        );
    }

    #[test]
    fn a_bearer_challenge_without_realm_or_an_unknown_scheme_is_unusable() {
        assert_eq!(parse_challenge(r#"Bearer service="reg""#), None);
        assert_eq!(parse_challenge("Bearer"), None);
        assert_eq!(parse_challenge(r#"Digest realm="x", nonce="y""#), None);
        assert_eq!(parse_challenge(""), None);
    }
}
