//! The auth gate in front of the sandbox registry: HTTP Basic on every
//! request, or the bearer token flow with scoped, expiring tokens, and the
//! "push denied" answer of a token without write access. Test-only: the
//! sandbox registry the demo runs is open.
//!
//! The gate routes with the registry's own [`Endpoint`], so a path the
//! registry refuses before looking at credentials (`404`, `NAME_INVALID`)
//! is refused the same way here, and a challenge names the same repository
//! the registry would serve.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use axum::middleware::Next;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use canary_core::Secret;
use canary_sandbox::registry::api::{
    error_response, is_digest, is_tag, json_response, with_api_version, Endpoint,
};
use rand::RngCore as _;
use serde_json::json;

use super::{FakeAuth, FakeRegistryOptions, SERVICE};

struct Grant {
    scopes: Vec<(String, Vec<String>)>,
    expires: Instant,
}

/// What the gate enforces, and the tokens it issued.
pub(super) struct Gate {
    options: FakeRegistryOptions,
    base_url: String,
    tokens: Mutex<HashMap<String, Grant>>,
}

impl Gate {
    /// A gate for the registry served at `base_url` (the token realm).
    pub(super) fn new(options: FakeRegistryOptions, base_url: String) -> Self {
        Self {
            options,
            base_url,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, Grant>> {
        // A test that panicked while holding the lock left plain data behind.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Expires every token issued so far.
    pub(super) fn expire_tokens(&self) {
        let now = Instant::now();
        for grant in self.tokens().values_mut() {
            grant.expires = now;
        }
    }

    /// The answer the gate gives in the registry's place, if any.
    fn answer(&self, request: &Request) -> Option<Response<Body>> {
        let path = request.uri().path();
        if path == "/token" {
            let query = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
                .map(|q| q.0)
                .unwrap_or_default();
            return Some(self.token(request.headers(), &query));
        }
        // Unrouted: the registry refuses it before any auth.
        let endpoint = Endpoint::parse(path).ok()?;
        // Every write needs `push`: a manifest PUT, and a blob upload's
        // POST, PATCH and PUT.
        let push = !matches!(*request.method(), Method::GET | Method::HEAD);
        if let Some(denied) = self.authorize(
            request.headers(),
            endpoint.repository().map(|repo| (repo, push)),
        ) {
            return Some(denied);
        }
        let valid_manifest_put = request.method() == Method::PUT
            && matches!(endpoint, Endpoint::Manifest { reference, .. }
                if is_tag(reference) || is_digest(reference));
        (self.options.push_denied && valid_manifest_put).then(|| {
            error_response(
                StatusCode::FORBIDDEN,
                "DENIED",
                "requested access to the resource is denied",
            )
        })
    }

    /// `None` when the request may go on; otherwise the `401` to send.
    /// `target` is `(repository, push)` for repository requests.
    fn authorize(
        &self,
        headers: &HeaderMap,
        target: Option<(&str, bool)>,
    ) -> Option<Response<Body>> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match &self.options.auth {
            FakeAuth::None => None,
            FakeAuth::Basic { username, password } => {
                if basic_matches(authorization, username, password) {
                    None
                } else {
                    Some(unauthorized(&format!("Basic realm=\"{SERVICE}\"")))
                }
            }
            FakeAuth::Bearer { .. } => {
                let scope = target.map(|(repo, push)| {
                    let actions = if push { "pull,push" } else { "pull" };
                    format!("repository:{repo}:{actions}")
                });
                let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
                let ok = token.is_some_and(|t| {
                    self.tokens().get(t).is_some_and(|grant| {
                        grant.expires > Instant::now()
                            && target.is_none_or(|(repo, push)| {
                                grant.scopes.iter().any(|(r, actions)| {
                                    r == repo
                                        && actions.iter().any(|a| a == "pull" || a == "*")
                                        && (!push
                                            || actions.iter().any(|a| a == "push" || a == "*"))
                                })
                            })
                    })
                });
                if ok {
                    return None;
                }
                let mut challenge = format!(
                    "Bearer realm=\"{}/token\",service=\"{SERVICE}\"",
                    self.base_url
                );
                if let Some(scope) = scope {
                    challenge.push_str(",scope=\"");
                    challenge.push_str(&scope);
                    challenge.push('"');
                }
                if token.is_some() {
                    challenge.push_str(",error=\"insufficient_scope\"");
                }
                Some(unauthorized(&challenge))
            }
        }
    }

    fn token(&self, headers: &HeaderMap, query: &[(String, String)]) -> Response<Body> {
        let FakeAuth::Bearer { username, password } = &self.options.auth else {
            return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no token endpoint");
        };
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !basic_matches(authorization, username, password) {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "invalid username or password",
            );
        }
        let scopes: Vec<(String, Vec<String>)> = query
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, repo, actions) = (parts.next()?, parts.next()?, parts.next()?);
                (kind == "repository").then(|| {
                    (
                        repo.to_string(),
                        actions.split(',').map(str::to_string).collect(),
                    )
                })
            })
            .collect();
        let mut raw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let ttl = self.options.token_ttl;
        self.tokens().insert(
            token.clone(),
            Grant {
                scopes,
                expires: Instant::now() + ttl,
            },
        );
        json_response(
            StatusCode::OK,
            &json!({ "token": token, "access_token": token, "expires_in": ttl.as_secs() }),
        )
    }
}

/// The middleware: answers for the registry where the gate refuses (or
/// serves `/token`), passes everything else on.
pub(super) async fn gate(
    State(gate): State<Arc<Gate>>,
    request: Request,
    next: Next,
) -> Response<Body> {
    match gate.answer(&request) {
        Some(answer) => answer,
        None => next.run(request).await,
    }
}

fn basic_matches(authorization: Option<&str>, username: &str, password: &Secret) -> bool {
    let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = BASE64.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{}", password.expose());
    decoded == expected.as_bytes()
}

fn unauthorized(challenge: &str) -> Response<Body> {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(challenge).expect("a challenge is a header value"),
    );
    with_api_version(response)
}
