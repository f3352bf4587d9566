//! [`OciRegistry`]: the distribution API client.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use canary_core::{
    Digest, Error, ErrorKind, ImageRef, Manifest, Reference, Registry, Secret, Tag, UsageError,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};

use crate::challenge::{self, Challenge};
use crate::credentials::{base64_basic, Credential};
use crate::endpoint::{self, Insecure};
use crate::errors::{self, parse_error, protocol_error, transport_error, Call, Failure};
use crate::manifest::{self, Unusable};
use crate::options::RegistryOptions;
use crate::stats::RequestStats;

/// Largest manifest accepted (the distribution registry's own limit).
const MAX_MANIFEST: usize = 4 << 20;
/// Largest tags-list page or other body accepted.
const MAX_BODY: usize = 16 << 20;
/// Tags asked for per page.
const TAGS_PAGE: u32 = 1000;
/// Pages followed at most, against a server whose `Link` loops.
const MAX_PAGES: usize = 10_000;

/// The [`Registry`] of canary over the OCI distribution API.
///
/// Each trait method is one HTTP request once authenticated (plus retries;
/// plus one GET when a HEAD answer lacks `Docker-Content-Digest`; one per
/// page for `list_tags`). Authentication happens once per registry host:
/// a `GET /v2/` ping, then, for a Bearer challenge, one token request that
/// covers every repository of that registry canary knows of (those passed
/// to [`OciRegistry::check_image`], and any used since), with `pull,push`.
/// Cheap to clone; clones share connections, tokens and counters.
#[derive(Clone)]
pub struct OciRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: RegistryOptions,
    insecure: Insecure,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    stats: Mutex<HashMap<String, RequestStats>>,
}

/// One registry host and its auth state.
struct Host {
    /// As written in image names (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// Where the API is (`registry-1.docker.io`).
    api_authority: String,
    /// Loopback or listed as insecure: plain HTTP allowed.
    allow_http: bool,
    /// Repositories seen, for the scopes of the next token.
    repos: Mutex<BTreeSet<String>>,
    /// Strings never to print: credentials and tokens of this host.
    secrets: Mutex<Vec<String>>,
    state: tokio::sync::Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
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

struct Token {
    value: Secret,
    valid_until: Instant,
    repos: BTreeSet<String>,
}

/// An HTTP answer, body read.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    url: Url,
    /// The registry asked (Retry-After) for a longer wait than allowed.
    retry_after_refused: Option<Duration>,
}

impl Reply {
    fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Request<'a> {
    call: Call,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<&'a [u8]>,
    repository: Option<&'a str>,
}

impl fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = lock(&self.inner.hosts).keys().cloned().collect();
        f.debug_struct("OciRegistry")
            .field("options", &self.inner.options)
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OciRegistry {
    /// A client with `options`. Checks the options (the CA file, the
    /// insecure list, the user agent) and makes no request: every problem
    /// here is a [`UsageError`].
    pub fn new(options: RegistryOptions) -> Result<Self, UsageError> {
        let insecure = Insecure::parse(&options.insecure)?;
        if options.timeout.is_zero() {
            return Err(UsageError::new(
                "registry timeout",
                "is zero",
                "give a timeout such as `30s`",
            ));
        }
        if options.retry.max_attempts == 0 {
            return Err(UsageError::new(
                "registry retry max_attempts",
                "is zero",
                "use 1 for no retries",
            ));
        }
        let user_agent = HeaderValue::from_str(&options.user_agent).map_err(|_| {
            UsageError::new(
                format!("user agent `{}`", options.user_agent.escape_debug()),
                "is not a valid header value",
                "use printable ASCII",
            )
        })?;
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .redirect(redirect_policy());
        if let Some(path) = &options.ca_file {
            let input = format!("registry.ca_file `{}`", path.display());
            let pem = std::fs::read(path).map_err(|e| {
                UsageError::new(
                    input.clone(),
                    format!("cannot be read: {e}"),
                    "point ca_file at a PEM file of CA certificates",
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    UsageError::new(
                        input.clone(),
                        "holds no PEM certificate",
                        "point ca_file at a PEM file with `-----BEGIN CERTIFICATE-----` blocks",
                    )
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            UsageError::new(
                "registry options",
                format!("cannot build an HTTP client: {e}"),
                "check ca_file",
            )
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                options,
                insecure,
                hosts: Mutex::new(HashMap::new()),
                stats: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Checks that `image` can be reached under these options, without a
    /// request, and remembers its repository so the registry's one token
    /// request covers it. Call it for every image of a release before the
    /// first request.
    ///
    /// Refuses an image on port 80 (plain HTTP) of a host that is neither
    /// loopback nor listed in [`RegistryOptions::insecure`].
    pub fn check_image(&self, image: &ImageRef) -> Result<(), UsageError> {
        let registry = image.registry();
        let (_, port) = endpoint::split_host_port(registry);
        let allow_http = endpoint::is_loopback(registry) || self.inner.insecure.lists(registry);
        if port == Some("80") && !allow_http {
            return Err(UsageError::new(
                format!("image `{image}`"),
                "names port 80, plain HTTP, on a host that is not loopback",
                format!(
                    "use the registry's HTTPS address, or list `{registry}` under \
                     `[registry] insecure` if it is on a network you trust"
                ),
            ));
        }
        let host = self.host(registry);
        lock(&host.repos).insert(image.path().to_string());
        Ok(())
    }

    /// Requests sent so far, all registries together.
    pub fn stats(&self) -> RequestStats {
        let mut total = RequestStats::default();
        for s in lock(&self.inner.stats).values() {
            total += *s;
        }
        total
    }

    /// Requests sent so far to one registry (as written in image names).
    pub fn stats_for(&self, registry: &str) -> RequestStats {
        lock(&self.inner.stats)
            .get(&registry.to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }

    fn count(&self, host: &Host, f: impl FnOnce(&mut RequestStats)) {
        f(lock(&self.inner.stats)
            .entry(host.registry.clone())
            .or_default());
    }

    fn host(&self, registry: &str) -> Arc<Host> {
        let key = registry.to_ascii_lowercase();
        let mut hosts = lock(&self.inner.hosts);
        hosts
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Host {
                    allow_http: endpoint::is_loopback(&key) || self.inner.insecure.lists(&key),
                    api_authority: endpoint::api_host(&key),
                    registry: key,
                    repos: Mutex::new(BTreeSet::new()),
                    secrets: Mutex::new(Vec::new()),
                    state: tokio::sync::Mutex::new(AuthState::default()),
                })
            })
            .clone()
    }

    // ---------------------------------------------------------------- sending

    /// Sends one request with retries on 408/429/5xx and connection errors.
    /// A final retryable status comes back as a `Reply` for the caller to
    /// map; a final transport error as an `Error`.
    async fn send(
        &self,
        host: &Host,
        req: &Request<'_>,
        auth: Option<&HeaderValue>,
        max_attempts: u32,
    ) -> Result<Reply, Error> {
        let policy = &self.inner.options.retry;
        let secrets = lock(&host.secrets).clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count(host, |s| {
                match req.call {
                    Call::Ping | Call::Token => s.auth += 1,
                    Call::HeadManifest => s.head += 1,
                    Call::PutManifest => s.put += 1,
                    Call::GetManifest | Call::ListTags => s.get += 1,
                }
                if attempt > 1 {
                    s.retries += 1;
                }
            });
            let mut builder = self
                .inner
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(value) = auth {
                builder = builder.header(AUTHORIZATION, value.clone());
            }
            if let Some(body) = req.body {
                builder = builder.body(body.to_vec());
            }
            let started = Instant::now();
            let outcome = match builder.send().await {
                Ok(resp) => read_reply(resp, req, &host.registry).await,
                Err(e) => Err(transport_error(
                    req.method.as_str(),
                    req.url.as_str(),
                    &host.registry,
                    &e,
                    &secrets,
                )),
            };
            match outcome {
                Ok(mut reply) => {
                    tracing::debug!(
                        method = %req.method,
                        url = %req.url,
                        status = reply.status,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis(),
                        "registry request"
                    );
                    if !retryable_status(reply.status) || attempt >= max_attempts {
                        return Ok(reply);
                    }
                    let delay = match retry_after(&reply.headers) {
                        Some(d) if d > policy.max_delay => {
                            reply.retry_after_refused = Some(d);
                            return Ok(reply);
                        }
                        Some(d) => d,
                        None => policy.backoff(attempt, rand::random()),
                    };
                    tracing::info!(
                        method = %req.method,
                        url = %req.url,
                        status = reply.status,
                        delay_ms = delay.as_millis(),
                        "registry asked to retry"
                    );
                    policy.sleeper.sleep(delay).await;
                }
                Err(error) => {
                    tracing::debug!(
                        method = %req.method,
                        url = %req.url,
                        attempt,
                        error = %error,
                        "registry request failed"
                    );
                    if !error.retryable() || attempt >= max_attempts {
                        return Err(error);
                    }
                    policy
                        .sleeper
                        .sleep(policy.backoff(attempt, rand::random()))
                        .await;
                }
            }
        }
    }

    /// Maps a failed reply through the one error mapping.
    fn fail(&self, host: &Host, req: &Request<'_>, reply: &Reply) -> Error {
        let secrets = lock(&host.secrets).clone();
        let error = parse_error(&Failure {
            call: req.call,
            method: req.method.as_str(),
            url: reply.url.as_str(),
            registry: &host.registry,
            repository: req.repository,
            status: reply.status,
            body: &reply.body,
            secrets: &secrets,
        });
        match reply.retry_after_refused {
            Some(d) => error.with_hint(format!(
                "the registry asked canary to wait {}s before retrying, longer than the \
                 retry policy's max_delay ({}s); retry later",
                d.as_secs(),
                self.inner.options.retry.max_delay.as_secs()
            )),
            None => error,
        }
    }

    /// An API request: authenticated, retried, re-authenticated once on 401
    /// (and on ECR's 403 for an expired token).
    async fn api(&self, host: &Host, req: Request<'_>) -> Result<Reply, Error> {
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

    // ------------------------------------------------------------------ auth

    /// Pings the host once (choosing the scheme) and returns the base URL.
    async fn base(&self, host: &Host) -> Result<Url, Error> {
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

    /// One attempt, not counted as a request unless it got an answer.
    async fn send_probe(&self, host: &Host, req: &Request<'_>) -> Result<Reply, Error> {
        let secrets = lock(&host.secrets).clone();
        match self
            .inner
            .http
            .request(req.method.clone(), req.url.clone())
            .send()
            .await
        {
            Ok(resp) => {
                self.count(host, |s| s.auth += 1);
                read_reply(resp, req, &host.registry).await
            }
            Err(e) => Err(transport_error(
                req.method.as_str(),
                req.url.as_str(),
                &host.registry,
                &e,
                &secrets,
            )),
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

    // ------------------------------------------------------------- manifests

    fn manifest_url(base: &Url, image: &ImageRef, reference: &str) -> Url {
        base.join(&format!("v2/{}/manifests/{reference}", image.path()))
            .expect("validated path")
    }

    /// A GET or HEAD of a manifest, accepting every manifest type.
    fn manifest_read<'a>(
        call: Call,
        method: Method,
        base: &Url,
        image: &'a ImageRef,
        reference: &Reference,
    ) -> Request<'a> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        Request {
            call,
            method,
            url: Self::manifest_url(base, image, &reference.to_string()),
            headers,
            body: None,
            repository: Some(image.path()),
        }
    }

    async fn get_inner(&self, image: &ImageRef, reference: &Reference) -> Result<Manifest, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let req = Self::manifest_read(Call::GetManifest, Method::GET, &base, image, reference);
        let reply = self.api(&host, req_clone(&req)).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        let media_type = manifest::media_type_of(reply.header("content-type"), &reply.body)
            .map_err(|u| match u {
                Unusable::NotAManifest(p) => {
                    protocol_error("GET", reply.url.as_str(), reply.status, &host.registry, &p)
                }
                Unusable::Unsupported(p) => {
                    Error::new(ErrorKind::Invalid, format!("GET {}: {p}", reply.url))
                        .with_hint("push the image again with a current client (schema 2 or OCI)")
                }
            })?;
        let announced = announced_digest(&reply, "GET", &host.registry)?;
        if let Some(d) = &announced {
            if !d.matches(&reply.body) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "GET {}: the body hashes to {}, but Docker-Content-Digest says {d}",
                        reply.url,
                        d.compute_like(&reply.body)
                    ),
                ));
            }
        }
        if let Reference::Digest(wanted) = reference {
            if !wanted.matches(&reply.body) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "GET {}: the body hashes to {}, not the requested {wanted}",
                        reply.url,
                        wanted.compute_like(&reply.body)
                    ),
                ));
            }
        }
        let digest = match (announced, reference) {
            (Some(d), _) => d,
            (None, Reference::Digest(d)) => d.clone(),
            (None, Reference::Tag(_)) => Digest::sha256_of(&reply.body),
        };
        Ok(Manifest::with_digest(media_type, reply.body, digest))
    }

    async fn head_inner(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let req = Self::manifest_read(Call::HeadManifest, Method::HEAD, &base, image, reference);
        let reply = self.api(&host, req_clone(&req)).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        let Some(d) = announced_digest(&reply, "HEAD", &host.registry)? else {
            // Some registries omit the header on HEAD: read the bytes and
            // hash them rather than trust anything else.
            tracing::debug!(url = %reply.url, "HEAD without Docker-Content-Digest; falling back to GET");
            return match self.get_inner(image, reference).await {
                Ok(m) => Ok(Some(m.digest().clone())),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
        };
        if let Reference::Digest(wanted) = reference {
            if d.algorithm() == wanted.algorithm() && &d != wanted {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "HEAD {}: Docker-Content-Digest says {d}, not the requested {wanted}",
                        reply.url
                    ),
                ));
            }
            return Ok(Some(wanted.clone()));
        }
        Ok(Some(d))
    }

    async fn put_inner(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(manifest.media_type()).map_err(|_| {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "media type `{}` is not a valid Content-Type",
                    manifest.media_type().escape_debug()
                ),
            )
        })?;
        headers.insert(CONTENT_TYPE, content_type);
        let req = Request {
            call: Call::PutManifest,
            method: Method::PUT,
            url: Self::manifest_url(&base, image, tag.as_str()),
            headers,
            body: Some(manifest.bytes()),
            repository: Some(image.path()),
        };
        let reply = self.api(&host, req_clone(&req)).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        if let Some(d) = announced_digest(&reply, "PUT", &host.registry)? {
            if !d.matches(manifest.bytes()) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "PUT {}: the registry reports digest {d} for the manifest {}; \
                         it did not store the exact bytes",
                        reply.url,
                        manifest.digest()
                    ),
                ));
            }
        }
        Ok(manifest.digest().clone())
    }

    async fn list_inner(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let first = base
            .join(&format!("v2/{}/tags/list?n={TAGS_PAGE}", image.path()))
            .expect("validated path");
        let mut url = first.clone();
        let mut tags = Vec::new();
        let mut seen = BTreeSet::new();
        for page in 0..MAX_PAGES {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            let req = Request {
                call: Call::ListTags,
                method: Method::GET,
                url: url.clone(),
                headers,
                body: None,
                repository: Some(image.path()),
            };
            let reply = self.api(&host, req_clone(&req)).await?;
            if !reply.success() {
                let error = self.fail(&host, &req, &reply);
                if page == 0 && error.kind() == ErrorKind::NotFound {
                    return Ok(Vec::new());
                }
                if page == 0
                    && url == first
                    && String::from_utf8_lossy(&reply.body).contains("PAGINATION_NUMBER_INVALID")
                {
                    // A registry with a smaller page limit: let it choose.
                    url = base
                        .join(&format!("v2/{}/tags/list", image.path()))
                        .expect("validated path");
                    continue;
                }
                return Err(error);
            }
            let body: TagsBody = serde_json::from_slice(&reply.body).map_err(|_| {
                protocol_error(
                    "GET",
                    reply.url.as_str(),
                    reply.status,
                    &host.registry,
                    "the body is not a tags list",
                )
            })?;
            for t in body.tags.unwrap_or_default() {
                if let Ok(tag) = Tag::parse(&t) {
                    tags.push(tag);
                } else {
                    tracing::warn!(tag = %t.escape_debug(), "registry listed an invalid tag; skipped");
                }
            }
            seen.insert(url.to_string());
            match next_link(&reply) {
                None => return Ok(tags),
                Some(next) => {
                    let next = reply.url.join(&next).map_err(|_| {
                        protocol_error(
                            "GET",
                            reply.url.as_str(),
                            reply.status,
                            &host.registry,
                            "the Link header is not a URL",
                        )
                    })?;
                    if next.origin() != base.origin() {
                        return Err(protocol_error(
                            "GET",
                            reply.url.as_str(),
                            reply.status,
                            &host.registry,
                            &format!(
                                "the Link header points to another host ({next}); not followed"
                            ),
                        ));
                    }
                    if seen.contains(next.as_str()) {
                        return Ok(tags);
                    }
                    url = next;
                }
            }
        }
        Err(protocol_error(
            "GET",
            url.as_str(),
            200,
            &host.registry,
            "more than 10000 pages of tags",
        ))
    }
}

#[derive(serde::Deserialize)]
struct TokenBody {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize)]
struct TagsBody {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

fn req_clone<'a>(req: &Request<'a>) -> Request<'a> {
    Request {
        call: req.call,
        method: req.method.clone(),
        url: req.url.clone(),
        headers: req.headers.clone(),
        body: req.body,
        repository: req.repository,
    }
}

fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn bearer(token: &Secret) -> HeaderValue {
    sensitive(&format!("Bearer {}", token.expose()))
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Never follow a redirect from HTTPS down to plain HTTP (Authorization is
/// already dropped by reqwest on a change of host).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() == "http"
            && !attempt.url().host_str().is_some_and(endpoint::is_loopback);
        if downgrade {
            attempt.error("refusing a redirect from HTTPS to plain HTTP")
        } else if attempt.previous().len() >= 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

async fn read_reply(
    mut resp: reqwest::Response,
    req: &Request<'_>,
    registry: &str,
) -> Result<Reply, Error> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let url = resp.url().clone();
    let limit = match req.call {
        Call::GetManifest => MAX_MANIFEST,
        _ => MAX_BODY,
    };
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(protocol_error(
                        req.method.as_str(),
                        url.as_str(),
                        status,
                        registry,
                        &format!("the body is larger than {} MiB", limit >> 20),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(transport_error(
                    req.method.as_str(),
                    url.as_str(),
                    registry,
                    &e,
                    &[],
                ))
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
        url,
        retry_after_refused: None,
    })
}

/// `Docker-Content-Digest`, parsed; a header that is not a digest is a
/// protocol error.
fn announced_digest(reply: &Reply, method: &str, registry: &str) -> Result<Option<Digest>, Error> {
    match reply.header("docker-content-digest") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => Digest::parse(v.trim()).map(Some).map_err(|_| {
            protocol_error(
                method,
                reply.url.as_str(),
                reply.status,
                registry,
                &format!(
                    "Docker-Content-Digest `{}` is not a digest",
                    v.escape_debug()
                ),
            )
        }),
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            params
                .split(';')
                .any(|p| {
                    let p = p.trim().to_ascii_lowercase().replace(' ', "");
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| target.to_string())
        })
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(v)?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers
/// must send.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut parts = s.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[async_trait]
impl Registry for OciRegistry {
    async fn get_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Manifest, Error> {
        self.get_inner(image, reference).await
    }

    async fn head_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        self.head_inner(image, reference).await
    }

    async fn put_manifest(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        self.put_inner(image, tag, manifest).await
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.list_inner(image).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        assert!(parse_http_date("garbage").is_none());
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn link_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
        );
        let reply = Reply {
            status: 200,
            headers,
            body: vec![],
            url: Url::parse("https://r.example/v2/a/tags/list?n=2").unwrap(),
            retry_after_refused: None,
        };
        assert_eq!(
            next_link(&reply).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
    }
}
