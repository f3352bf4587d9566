//! Auth: the ping that picks the scheme and reads the challenge, the
//! credential lookup, the token cache, and the authenticated request that
//! re-authenticates once when the registry refuses the credentials in use.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use canary_core::{Error, ErrorKind, Secret};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::transport::{Reply, Request};
use super::{lock, Host, OciRegistry};
use crate::challenge::{self, Challenge};
use crate::credentials::{base64_basic, Credential};
use crate::endpoint;
use crate::errors::{self, protocol_error, Call};

/// What a host's auth has found out so far: behind the host's async lock,
/// so concurrent requests ping and fetch a token once.
#[derive(Default)]
pub(super) struct AuthState {
    /// `https://host/` or `http://host/`, once the ping answered.
    base: Option<Url>,
    /// The ping's challenge; `None` for an open registry (or before the
    /// ping, while `base` is `None`).
    challenge: Option<Challenge>,
    /// Whether `credential` has been looked up.
    resolved: bool,
    /// `None` for anonymous.
    credential: Option<Credential>,
    token: Option<Token>,
    /// Scopes a challenge asked for beyond our `repository:…:pull,push`.
    extra_scopes: BTreeSet<String>,
    /// Bumped whenever the credentials in use change, so concurrent 401s
    /// re-authenticate once, not once each.
    generation: u64,
}

/// A Bearer token and the repositories its scopes cover.
struct Token {
    value: Secret,
    valid_until: Instant,
    repos: BTreeSet<String>,
}

#[derive(serde::Deserialize)]
struct TokenBody {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn bearer(token: &Secret) -> HeaderValue {
    sensitive(&format!("Bearer {}", token.expose()))
}

impl OciRegistry {
    /// An API request: authenticated, retried, re-authenticated once on 401
    /// (and on ECR's 403 for an expired token).
    pub(super) async fn api(&self, host: &Host, req: Request<'_>) -> Result<Reply, Error> {
        let max = self.inner.options.retry.max_attempts;
        let mut reauthed = false;
        loop {
            let (auth, generation) = self.authorize(host, req.repository).await?;
            let reply = self.send(host, &req, auth.as_ref(), max).await?;
            if reauthed {
                return Ok(reply);
            }
            let expired_403 = reply.status == 403
                && errors::is_expired_token_text(&String::from_utf8_lossy(&reply.body));
            if reply.status != 401 && !expired_403 {
                return Ok(reply);
            }
            reauthed = true;
            self.count(host, |s| s.reauths += 1);
            let mut state = host.state.lock().await;
            if state.generation == generation {
                state.generation += 1;
                state.token = None;
                if expired_403 {
                    // ECR: the password is a 12-hour token; read it again.
                    state.resolved = false;
                } else if let Some(ch) = reply
                    .headers
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(challenge::parse)
                {
                    if let Challenge::Bearer { scope, .. } = &ch {
                        let ours = lock(&host.repos).clone();
                        for s in scope {
                            let covered = s
                                .strip_prefix("repository:")
                                .and_then(|r| r.rsplit_once(':'))
                                .is_some_and(|(repo, _)| ours.contains(repo));
                            if !covered {
                                state.extra_scopes.insert(s.clone());
                            }
                        }
                    }
                    state.challenge = Some(ch);
                } else if reply.status == 401 && state.challenge.is_none() {
                    return Err(self.fail(host, &req, &reply));
                }
            }
        }
    }

    /// Pings the host once (choosing the scheme) and returns the base URL.
    pub(super) async fn base(&self, host: &Host) -> Result<Url, Error> {
        let mut state = host.state.lock().await;
        if let Some(base) = &state.base {
            return Ok(base.clone());
        }
        let (base, reply) = self.ping(host).await?;
        let req = Request {
            call: Call::Ping,
            method: Method::GET,
            url: reply.url.clone(),
            headers: HeaderMap::new(),
            body: None,
            repository: None,
        };
        let challenge = if reply.success() {
            None
        } else if reply.status == 401 {
            let found = reply
                .headers
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(challenge::parse);
            if found.is_none() {
                return Err(protocol_error(
                    "GET",
                    reply.url.as_str(),
                    401,
                    &host.registry,
                    "no Bearer or Basic challenge in WWW-Authenticate",
                ));
            }
            found
        } else if reply.status == 404 {
            return Err(protocol_error(
                "GET",
                reply.url.as_str(),
                404,
                &host.registry,
                "no distribution API at /v2/",
            ));
        } else {
            return Err(self.fail(host, &req, &reply));
        };
        state.challenge = challenge;
        state.base = Some(base.clone());
        Ok(base)
    }

    /// `GET /v2/` over HTTPS; for loopback and insecure hosts, over plain
    /// HTTP when HTTPS fails before any HTTP exchange.
    async fn ping(&self, host: &Host) -> Result<(Url, Reply), Error> {
        let max = self.inner.options.retry.max_attempts;
        let https = Url::parse(&format!("https://{}/", host.api_authority)).map_err(|e| {
            Error::new(
                ErrorKind::Invalid,
                format!("registry host `{}` is not a URL host: {e}", host.registry),
            )
        })?;
        let ping = |base: &Url| Request {
            call: Call::Ping,
            method: Method::GET,
            url: base.join("v2/").expect("static path"),
            headers: HeaderMap::new(),
            body: None,
            repository: None,
        };
        if !host.allow_http {
            let reply = self.send(host, &ping(&https), None, max).await?;
            return Ok((https, reply));
        }
        // One HTTPS attempt, no retries: a plain-HTTP registry fails the TLS
        // handshake at once.
        let tls_error = match self.send_probe(host, &ping(&https)).await {
            Ok(reply) => return Ok((https, reply)),
            Err(e) => e,
        };
        self.count(host, |s| s.scheme_fallbacks += 1);
        let http = Url::parse(&format!("http://{}/", host.api_authority)).expect("valid host");
        match self.send(host, &ping(&http), None, max).await {
            Ok(reply)
                if reply.status == 400
                    && String::from_utf8_lossy(&reply.body).contains("HTTPS server") =>
            {
                // An HTTPS registry whose certificate we refused.
                Err(tls_error)
            }
            Ok(reply) => Ok((http, reply)),
            Err(http_error) if http_error.kind() == tls_error.kind() => Err(http_error),
            Err(_) => Err(tls_error),
        }
    }

    /// The `Authorization` header for a request on `repository`, fetching a
    /// token when needed; and the auth generation it belongs to.
    async fn authorize(
        &self,
        host: &Host,
        repository: Option<&str>,
    ) -> Result<(Option<HeaderValue>, u64), Error> {
        self.base(host).await?;
        if let Some(repo) = repository {
            lock(&host.repos).insert(repo.to_string());
        }
        let mut state = host.state.lock().await;
        let generation = state.generation;
        let Some(challenge) = state.challenge.clone() else {
            return Ok((None, generation));
        };
        let credential = self.credential(host, &mut state).await?;
        let header = match (&challenge, &credential) {
            (_, Some(Credential::Bearer(token))) => bearer(token),
            (Challenge::Basic, Some(Credential::Basic { username, password })) => {
                sensitive(&format!("Basic {}", base64_basic(username, password)))
            }
            (Challenge::Basic, Some(Credential::IdentityToken { .. })) => {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "{} asks for Basic auth, but its docker config entry is an identity token",
                        host.registry
                    ),
                )
                .with_hint("log in again with a username and password (docker login)"));
            }
            (Challenge::Basic, None) => {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "{} requires credentials (Basic auth) and none were found",
                        host.registry
                    ),
                )
                .with_hint(format!(
                    "credential sources tried: {}",
                    self.inner.options.credentials.describe_sources()
                )));
            }
            (
                Challenge::Bearer {
                    realm,
                    service,
                    scope: _,
                },
                _,
            ) => {
                let repos = lock(&host.repos).clone();
                let fresh = state.token.as_ref().is_some_and(|t| {
                    t.valid_until > Instant::now() && repository.is_none_or(|r| t.repos.contains(r))
                });
                if !fresh {
                    let token = self
                        .fetch_token(
                            host,
                            realm,
                            service.as_deref(),
                            &repos,
                            &state.extra_scopes,
                            credential.as_ref(),
                        )
                        .await?;
                    state.token = Some(token);
                }
                bearer(&state.token.as_ref().expect("token set").value)
            }
        };
        Ok((Some(header), generation))
    }

    /// The credential for the host, resolved once (a credential helper may
    /// run, so off the async executor).
    async fn credential(
        &self,
        host: &Host,
        state: &mut AuthState,
    ) -> Result<Option<Credential>, Error> {
        if state.resolved {
            return Ok(state.credential.clone());
        }
        let credentials = self.inner.options.credentials.clone();
        let registry = host.registry.clone();
        let resolved = tokio::task::spawn_blocking(move || credentials.resolve(&registry))
            .await
            .map_err(|e| Error::new(ErrorKind::Other, format!("credential lookup failed: {e}")))?
            .map_err(|message| Error::new(ErrorKind::Unauthorized, message))?;
        if let Some(c) = &resolved {
            tracing::debug!(registry = %host.registry, credential = %c.describe(), "credentials found");
            lock(&host.secrets).extend(c.secrets());
        }
        state.credential.clone_from(&resolved);
        state.resolved = true;
        Ok(resolved)
    }

    async fn fetch_token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        repos: &BTreeSet<String>,
        extra_scopes: &BTreeSet<String>,
        credential: Option<&Credential>,
    ) -> Result<Token, Error> {
        let mut url = Url::parse(realm).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} named token realm `{realm}`, which is not a URL: {e}",
                    host.registry
                ),
            )
        })?;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let realm_host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        let plain_ok = endpoint::is_loopback(&realm_host) || self.inner.insecure.lists(&realm_host);
        if url.scheme() != "https" && !(url.scheme() == "http" && plain_ok) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} named token realm {url}, which is not HTTPS; canary does not send \
                     credentials over plain HTTP",
                    host.registry
                ),
            )
            .with_hint(
                "list the realm's host under `[registry] insecure` if you trust the network",
            ));
        }
        // Anonymous clients can never push; asking for it only invites a
        // refusal from token servers that do not downgrade the scope.
        let actions = if credential.is_some() {
            "pull,push"
        } else {
            "pull"
        };
        let scopes: Vec<String> = repos
            .iter()
            .map(|r| format!("repository:{r}:{actions}"))
            .chain(extra_scopes.iter().cloned())
            .collect();
        let mut headers = HeaderMap::new();
        let (method, body, auth) = match credential {
            Some(Credential::IdentityToken { token }) => {
                // OAuth2 refresh-token grant, as docker does with an
                // identity token.
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", token.expose());
                form.append_pair("client_id", "canary");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (Method::POST, Some(form.finish().into_bytes()), None)
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                }
                let auth = match other {
                    Some(Credential::Basic { username, password }) => Some(sensitive(&format!(
                        "Basic {}",
                        base64_basic(username, password)
                    ))),
                    _ => None,
                };
                (Method::GET, None, auth)
            }
        };
        let req = Request {
            call: Call::Token,
            method,
            url,
            headers,
            body: body.as_deref(),
            repository: None,
        };
        let reply = self
            .send(
                host,
                &req,
                auth.as_ref(),
                self.inner.options.retry.max_attempts,
            )
            .await?;
        if !reply.success() {
            return Err(self.fail(host, &req, &reply));
        }
        let garbage = |problem: &str| {
            protocol_error(
                req.method.as_str(),
                reply.url.as_str(),
                reply.status,
                &host.registry,
                problem,
            )
        };
        let parsed: TokenBody = serde_json::from_slice(&reply.body)
            .map_err(|_| garbage("the token endpoint did not answer token JSON"))?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| garbage("the token endpoint answered no token"))?;
        lock(&host.secrets).push(value.clone());
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60));
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Ok(Token {
            value: Secret::new(value),
            valid_until: Instant::now() + lifetime.saturating_sub(margin),
            repos: repos.clone(),
        })
    }
}
