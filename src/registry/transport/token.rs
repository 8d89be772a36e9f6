//! Credentials → the `Authorization` header a challenge asks for: Basic from a username
//! and password, or a Bearer token fetched from the challenge's realm for the request's
//! scopes (with a refresh token, by OAuth2 POST; else by GET with Basic auth or none) and
//! cached per scope set until the registry rejects it.

use std::collections::HashMap;

use base64::Engine;
use reqwest::StatusCode;
use serde::Deserialize;

use super::RegistryClient;
use super::challenge::Challenge;
use super::retry::{self, Failure};
use crate::config::registry::Credential;
use crate::registry::RegistryError;

/// What the client learnt from 401s: the registry's challenge and the tokens it issued.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    pub(super) challenge: Option<Challenge>,
    /// Scope set (sorted, space-separated) → token.
    tokens: HashMap<String, String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

/// `Basic base64(username:password)`.
fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The scopes to ask a token for: the request's and the challenge's, sorted, once each.
fn token_scopes(request: &[String], challenge: Option<&str>) -> Vec<String> {
    let mut all: Vec<String> = request.to_vec();
    if let Some(s) = challenge {
        all.extend(s.split(' ').map(String::from));
    }
    all.sort();
    all.dedup();
    all
}

impl RegistryClient {
    /// The Authorization header value for these scopes (none before the registry has sent
    /// a challenge), fetching a token if needed; `renew` fetches one even if cached.
    pub(super) fn authorization(
        &self,
        scopes: &[String],
        renew: bool,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = self
            .state
            .lock()
            .map(|s| s.challenge.clone())
            .unwrap_or(None);
        match (challenge, &self.credential) {
            (None, _) => Ok(None),
            (Some(Challenge::Basic), Credential::Basic { username, password }) => {
                Ok(Some(basic_header(username, password)))
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
                let all = token_scopes(scopes, scope.as_deref());
                let key = all.join(" ");
                if !renew
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

    /// Asks the token service at `realm` for a token, retrying transient failures.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let attempt = |_| {
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
            let sent = super::send_interruptible(b).map_err(RegistryError::from)?;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => {
                    return Err(Failure::Transient {
                        outcome: retry::Outcome::Connection,
                        detail: super::error_chain(&e),
                    });
                }
            };
            if resp.status().is_success() {
                let t: TokenResponse = resp.json().map_err(|e| RegistryError::BadToken {
                    realm: realm.to_string(),
                    reason: format!("an unreadable answer: {e}"),
                })?;
                return t.token.or(t.access_token).ok_or_else(|| {
                    Failure::Fatal(RegistryError::BadToken {
                        realm: realm.to_string(),
                        reason: "no token".into(),
                    })
                });
            }
            if matches!(
                resp.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                return Err(Failure::Fatal(self.unauthorized(
                    scopes,
                    &format!(
                        "the token service at {realm} rejected the credentials ({})",
                        resp.status()
                    ),
                )));
            }
            // Any other answer: retried if transient, else given up on at once.
            Err(Failure::Transient {
                outcome: retry::status_outcome(&resp),
                detail: format!("HTTP {}", resp.status().as_u16()),
            })
        };
        let what = format!("token request to {realm}");
        self.retrying(&what, attempt, |last| RegistryError::GaveUp {
            url: realm.to_string(),
            attempts: last.attempts,
            last: last.detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_base64_of_user_colon_password() {
        assert_eq!(basic_header("user", "pw"), "Basic dXNlcjpwdw==");
        // Colons in the password are kept (only the first one separates).
        assert_eq!(basic_header("me", "a:b"), "Basic bWU6YTpi");
    }

    #[test]
    fn token_scopes_merge_the_request_and_the_challenge_once_each() {
        let req = vec!["repository:team/api:pull,push".to_string()];
        assert_eq!(token_scopes(&req, None), req);
        assert_eq!(
            token_scopes(
                &req,
                Some("repository:team/api:pull,push repository:base:pull")
            ),
            vec![
                "repository:base:pull".to_string(),
                "repository:team/api:pull,push".to_string()
            ]
        );
    }
}
