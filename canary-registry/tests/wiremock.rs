//! `OciRegistry` against wiremock, for what a real registry won't do on
//! demand: Bearer token flows, 401 re-auth, 429/503 with `Retry-After`,
//! wrong digests, PUT answered 200/201/202, HEAD without
//! `Docker-Content-Digest`, pagination, HTML bodies, error JSON, ECR and
//! GHCR quirks. Every mock asserts its call count; retries never sleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use canary_core::{
    Digest, ErrorKind, ImageRef, Manifest, ManualClock, Reference, Registry, Secret, Tag,
};
use canary_registry::{
    Credentials, OciRegistry, RegistryOptions, RetryPolicy, DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST,
};
use wiremock::matchers::{
    any, body_bytes, header, headers, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cr3t-Pa55-9f8e7d";

fn index_body() -> Vec<u8> {
    // Deliberately odd whitespace: a re-serialisation would change it.
    format!("{{\n   \"schemaVersion\" :2, \"mediaType\":\"{OCI_INDEX}\",\n\t\"manifests\":[]}}\n")
        .into_bytes()
}

fn digest_of(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

struct Setup {
    server: MockServer,
    /// Every retry waits through it: it returns at once and records the wait.
    clock: Arc<ManualClock>,
}

impl Setup {
    async fn new() -> Self {
        let server = MockServer::start().await;
        // Anything not mocked is a bug in the client.
        Mock::given(any())
            .respond_with(ResponseTemplate::new(599))
            .with_priority(u8::MAX)
            .expect(0)
            .named("unexpected request")
            .mount(&server)
            .await;
        Self {
            server,
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        }
    }

    fn host(&self) -> String {
        self.server.address().to_string()
    }

    fn image(&self, repo: &str) -> ImageRef {
        ImageRef::parse(&format!("{}/{repo}", self.host())).unwrap()
    }

    fn client(&self, credentials: Credentials) -> OciRegistry {
        self.client_with(credentials, 4)
    }

    fn client_with(&self, credentials: Credentials, max_attempts: u32) -> OciRegistry {
        OciRegistry::new(RegistryOptions {
            credentials,
            retry: RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(10),
            },
            clock: self.clock.clone(),
            ..RegistryOptions::default()
        })
        .unwrap()
    }

    async fn open_ping(&self) {
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .expect(1)
            .named("ping")
            .mount(&self.server)
            .await;
    }

    async fn bearer_ping(&self) {
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(
                ResponseTemplate::new(401).insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/token",service="wm.test""#,
                        self.server.uri()
                    )
                    .as_str(),
                ),
            )
            .expect(1)
            .named("ping")
            .mount(&self.server)
            .await;
    }

    async fn basic_ping(&self) {
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(
                ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="wm""#),
            )
            .expect(1)
            .named("ping")
            .mount(&self.server)
            .await;
    }
}

fn basic_header() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

fn manifest_response(body: &[u8], content_type: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Content-Type", content_type)
        .insert_header("Docker-Content-Digest", digest_of(body).as_str())
        .set_body_raw(body.to_vec(), content_type)
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn staging() -> Reference {
    Reference::Tag(tag("staging-1"))
}

fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

#[tokio::test]
async fn bearer_flow_one_token_for_all_repositories_three_requests_per_image() {
    let s = Setup::new().await;
    s.bearer_ping().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "wm.test"))
        .and(query_param("scope", "repository:acme/platform:pull,push"))
        .and(query_param("scope", "repository:acme/tenant:pull,push"))
        .and(header("Authorization", basic_header().as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"token": "tok-1", "expires_in": 300})),
        )
        .expect(1)
        .named("token")
        .mount(&s.server)
        .await;
    let body = index_body();
    for repo in ["acme/platform", "acme/tenant"] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/{repo}/manifests/staging-1")))
            .and(header("Authorization", "Bearer tok-1"))
            .and(headers(
                "Accept",
                vec![
                    OCI_INDEX,
                    OCI_MANIFEST,
                    DOCKER_MANIFEST_LIST,
                    DOCKER_MANIFEST_V2,
                ],
            ))
            .respond_with(manifest_response(&body, OCI_INDEX))
            .expect(1)
            .mount(&s.server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/v2/{repo}/manifests/latest")))
            .and(header("Authorization", "Bearer tok-1"))
            .and(header("Content-Type", OCI_INDEX))
            .and(body_bytes(body.clone()))
            .respond_with(
                ResponseTemplate::new(201)
                    .insert_header("Docker-Content-Digest", digest_of(&body).as_str()),
            )
            .expect(1)
            .mount(&s.server)
            .await;
        Mock::given(method("HEAD"))
            .and(path(format!("/v2/{repo}/manifests/latest")))
            .and(header("Authorization", "Bearer tok-1"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Docker-Content-Digest", digest_of(&body).as_str()),
            )
            .expect(1)
            .mount(&s.server)
            .await;
    }

    let client = s.client(Credentials::basic(USER, Secret::new(PASSWORD)));
    let images = [s.image("acme/platform"), s.image("acme/tenant")];
    for i in &images {
        client.check_image(i).unwrap();
    }
    for i in &images {
        let before = client.stats();
        let m = client.get_manifest(i, &staging()).await.unwrap();
        assert_eq!(m.bytes(), body.as_slice());
        assert_eq!(m.media_type(), OCI_INDEX);
        client.put_manifest(i, &tag("latest"), &m).await.unwrap();
        let head = client
            .head_manifest(i, &Reference::Tag(tag("latest")))
            .await
            .unwrap();
        assert_eq!(head.as_ref(), Some(m.digest()));
        let after = client.stats();
        assert!(after.api() - before.api() <= 3, "{before:?} -> {after:?}");
    }
    let stats = client.stats_for(&s.host());
    assert_eq!(stats.auth, 2, "one ping and one token request: {stats:?}");
    assert_eq!(stats.api(), 6, "{stats:?}");
    assert_eq!(stats, client.stats());
    assert_eq!(
        stats.scheme_fallbacks, 1,
        "loopback: one HTTPS attempt, then plain HTTP"
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_ping_and_one_token() {
    let s = Setup::new().await;
    s.bearer_ping().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("scope", "repository:acme/a:pull"))
        .and(query_param("scope", "repository:acme/b:pull"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "tok-c"})),
        )
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("HEAD"))
        .and(header("Authorization", "Bearer tok-c"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Docker-Content-Digest", digest_of(b"x").as_str()),
        )
        .expect(4)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let (first, second) = (s.image("acme/a"), s.image("acme/b"));
    client.check_image(&first).unwrap();
    client.check_image(&second).unwrap();
    let reference = staging();
    let results = tokio::join!(
        client.head_manifest(&first, &reference),
        client.head_manifest(&second, &reference),
        client.head_manifest(&first, &reference),
        client.head_manifest(&second, &reference)
    );
    for result in [results.0, results.1, results.2, results.3] {
        assert!(result.unwrap().is_some());
    }
    assert_eq!(client.stats().auth, 2);
}

#[tokio::test]
async fn a_401_re_authenticates_once() {
    let s = Setup::new().await;
    s.bearer_ping().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok-old"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok-new"})),
        )
        .expect(1)
        .with_priority(2)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer tok-old"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/token",service="wm.test",scope="repository:acme/app:pull",error="invalid_token""#,
                        s.server.uri()
                    )
                    .as_str(),
                )
                .set_body_string(error_json("UNAUTHORIZED", "token expired")),
        )
        .expect(1)
        .mount(&s.server)
        .await;
    let body = index_body();
    Mock::given(method("GET"))
        .and(header("Authorization", "Bearer tok-new"))
        .respond_with(manifest_response(&body, OCI_INDEX))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let m = client
        .get_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap();
    assert_eq!(m.bytes(), body.as_slice());
    let stats = client.stats();
    assert_eq!(
        (stats.auth, stats.get, stats.reauths),
        (3, 2, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_second_401_is_final() {
    let s = Setup::new().await;
    s.bearer_ping().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "tok"})))
        .expect(2)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(error_json("UNAUTHORIZED", "authentication required")),
        )
        .expect(2)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let err = client
        .get_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.message()
            .contains("UNAUTHORIZED: authentication required"),
        "{}",
        err.message()
    );
    assert!(err.hint().unwrap().contains("CANARY_REGISTRY_USERNAME"));
}

#[tokio::test]
async fn tokens_are_cached_until_they_expire() {
    for (expires_in, token_requests) in [(300, 1), (0, 2)] {
        let s = Setup::new().await;
        s.bearer_ping().await;
        Mock::given(method("GET"))
            .and(path("/token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"token": "tok", "expires_in": expires_in})),
            )
            .expect(token_requests)
            .mount(&s.server)
            .await;
        Mock::given(method("HEAD"))
            .respond_with(ResponseTemplate::new(404))
            .expect(2)
            .mount(&s.server)
            .await;
        let client = s.client(Credentials::anonymous());
        let img = s.image("acme/app");
        assert_eq!(client.head_manifest(&img, &staging()).await.unwrap(), None);
        assert_eq!(client.head_manifest(&img, &staging()).await.unwrap(), None);
    }
}

#[tokio::test]
async fn rate_limit_and_unavailable_honour_retry_after_without_sleeping() {
    let s = Setup::new().await;
    s.open_ping().await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_string(error_json("TOOMANYREQUESTS", "slow down")),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "2"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(2)
        .mount(&s.server)
        .await;
    let body = index_body();
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(manifest_response(&body, OCI_INDEX))
        .expect(1)
        .with_priority(3)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let started = std::time::Instant::now();
    let m = client
        .get_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap();
    assert_eq!(m.bytes(), body.as_slice());
    assert_eq!(
        s.clock.sleeps(),
        vec![Duration::from_secs(3), Duration::from_secs(2)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "nothing really slept"
    );
    assert_eq!(client.stats().retries, 2);
}

/// A `Retry-After` date is measured against the client's clock, not the
/// machine's: the clock reads 2023-11-14 22:13:20, the date is 4 s later.
#[tokio::test]
async fn a_retry_after_date_is_measured_against_the_clock() {
    let s = Setup::new().await;
    s.open_ping().await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "Tue, 14 Nov 2023 22:13:24 GMT"),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .with_priority(2)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let found = client
        .head_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap();
    assert_eq!(found, None);
    assert_eq!(s.clock.sleeps(), vec![Duration::from_secs(4)]);
}

#[tokio::test]
async fn retries_are_bounded_with_growing_backoff() {
    let s = Setup::new().await;
    s.open_ping().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(4)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let m = Manifest::new(OCI_INDEX, index_body());
    let err = client
        .put_manifest(&s.image("acme/app"), &tag("latest"), &m)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{}", err.chain());
    assert!(err.message().contains("502"), "{}", err.message());
    let delays = s.clock.sleeps();
    assert_eq!(delays.len(), 3, "4 attempts, 3 waits: {delays:?}");
    for (i, d) in delays.iter().enumerate() {
        let full = Duration::from_millis(100) * 2u32.pow(u32::try_from(i).unwrap());
        assert!(
            *d >= full / 2 && *d <= full,
            "wait {i}: {d:?} not in [{:?}, {full:?}]",
            full / 2
        );
    }
}

#[tokio::test]
async fn a_retry_after_beyond_max_delay_stops_at_once() {
    let s = Setup::new().await;
    s.open_ping().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let err = client
        .head_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.hint().unwrap().contains("3600s"), "{:?}", err.hint());
    assert!(s.clock.sleeps().is_empty());
}

#[tokio::test]
async fn a_wrong_docker_content_digest_is_an_integrity_error() {
    let s = Setup::new().await;
    s.open_ping().await;
    let body = index_body();
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Docker-Content-Digest",
                    digest_of(b"something else").as_str(),
                )
                .set_body_raw(body.clone(), OCI_INDEX),
        )
        .expect(1)
        .mount(&s.server)
        .await;
    // Fetched by digest, the body must hash to that digest even when the
    // registry announces none.
    let wanted = Digest::sha256_of(b"wanted");
    Mock::given(method("GET"))
        .and(path(format!("/v2/acme/app/manifests/{wanted}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), OCI_INDEX))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    let err = client.get_manifest(&img, &staging()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.chain());
    assert!(err.message().contains("Docker-Content-Digest"));
    let err = client
        .get_manifest(&img, &Reference::Digest(wanted.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{}", err.chain());
    assert!(err.message().contains(&wanted.to_string()));
}

#[tokio::test]
async fn put_accepts_200_201_and_202_and_checks_the_reported_digest() {
    let s = Setup::new().await;
    s.open_ping().await;
    let body = index_body();
    for (t, status) in [("s200", 200), ("s201", 201), ("s202", 202)] {
        Mock::given(method("PUT"))
            .and(path(format!("/v2/acme/app/manifests/{t}")))
            .and(header("Content-Type", OCI_INDEX))
            .and(body_bytes(body.clone()))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&s.server)
            .await;
    }
    Mock::given(method("PUT"))
        .and(path("/v2/acme/app/manifests/rewritten"))
        .respond_with(ResponseTemplate::new(201).insert_header(
            "Docker-Content-Digest",
            digest_of(b"re-serialised").as_str(),
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    let m = Manifest::new(OCI_INDEX, body.clone());
    for t in ["s200", "s201", "s202"] {
        assert_eq!(
            &client.put_manifest(&img, &tag(t), &m).await.unwrap(),
            m.digest()
        );
    }
    let err = client
        .put_manifest(&img, &tag("rewritten"), &m)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
}

#[tokio::test]
async fn head_without_docker_content_digest_falls_back_to_get() {
    let s = Setup::new().await;
    s.open_ping().await;
    let body = index_body();
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/latest"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/latest"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), OCI_INDEX))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/app/manifests/missing"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    assert_eq!(
        client
            .head_manifest(&img, &Reference::Tag(tag("latest")))
            .await
            .unwrap(),
        Some(Digest::sha256_of(&body))
    );
    assert_eq!(
        client
            .head_manifest(&img, &Reference::Tag(tag("missing")))
            .await
            .unwrap(),
        None
    );
    let stats = client.stats();
    assert_eq!((stats.head, stats.get), (2, 1));
}

#[tokio::test]
async fn application_json_content_type_is_tolerated() {
    let s = Setup::new().await;
    s.open_ping().await;
    let body =
        format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[]}}"#)
            .into_bytes();
    Mock::given(method("GET"))
        .respond_with(manifest_response(&body, "application/json"))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("PUT"))
        .and(header("Content-Type", DOCKER_MANIFEST_LIST))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    let m = client.get_manifest(&img, &staging()).await.unwrap();
    assert_eq!(m.media_type(), DOCKER_MANIFEST_LIST);
    client.put_manifest(&img, &tag("latest"), &m).await.unwrap();
}

#[tokio::test]
async fn tags_list_follows_link_pagination() {
    let s = Setup::new().await;
    s.open_ping().await;
    let page = |tags: &[&str], next: Option<&str>| {
        let mut r = ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"name": "acme/app", "tags": tags}));
        if let Some(n) = next {
            r = r.insert_header("Link", format!(r#"<{n}>; rel="next""#).as_str());
        }
        r
    };
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .and(query_param("n", "1000"))
        .and(query_param_is_missing("last"))
        .respond_with(page(&["a", "b"], Some("/v2/acme/app/tags/list?last=b&n=2")))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .and(query_param("last", "b"))
        .respond_with(page(
            &["c"],
            Some(&format!(
                "{}/v2/acme/app/tags/list?last=c&n=2",
                s.server.uri()
            )),
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .and(query_param("last", "c"))
        .respond_with(page(&["staging-4c1d56e"], None))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/unknown/tags/list"))
        .respond_with(ResponseTemplate::new(404).set_body_string(error_json(
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/elsewhere/tags/list"))
        .respond_with(page(
            &["x"],
            Some("https://evil.example/v2/acme/elsewhere/tags/list?last=x"),
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let tags = client.list_tags(&s.image("acme/app")).await.unwrap();
    let names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
    assert_eq!(names, ["a", "b", "c", "staging-4c1d56e"]);
    assert!(client
        .list_tags(&s.image("acme/unknown"))
        .await
        .unwrap()
        .is_empty());
    let err = client
        .list_tags(&s.image("acme/elsewhere"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.message().contains("evil.example"));
}

#[tokio::test]
async fn an_html_body_is_a_protocol_error_naming_url_and_status() {
    let s = Setup::new().await;
    s.open_ping().await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!DOCTYPE html><html><body>Sign in</body></html>",
            "text/html",
        ))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw("<html><h1>Not Found</h1></html>", "text/html"),
        )
        .expect(1)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    let err = client.get_manifest(&img, &staging()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{}", err.chain());
    let url = format!("{}/v2/acme/app/manifests/staging-1", s.server.uri());
    assert!(err.message().contains(&url), "{}", err.message());
    assert!(err.message().contains("200 OK"), "{}", err.message());
    let err = client.list_tags(&img).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{}", err.chain());
    assert!(err.message().contains("404 Not Found"), "{}", err.message());
    assert!(err.message().contains("HTML"), "{}", err.message());
}

#[tokio::test]
async fn error_json_codes_are_classified_with_hints() {
    let s = Setup::new().await;
    s.open_ping().await;
    let cases = [
        (
            "GET",
            "missing",
            404,
            error_json("MANIFEST_UNKNOWN", "manifest unknown"),
            ErrorKind::NotFound,
            None,
        ),
        (
            "PUT",
            "immutable",
            400,
            error_json(
                "TAG_INVALID",
                "The image tag 'immutable' already exists in the 'acme/app' repository and cannot be overwritten because the repository is immutable.",
            ),
            ErrorKind::Invalid,
            Some("immutable"),
        ),
        (
            "PUT",
            "denied",
            403,
            error_json("DENIED", "requested access to the resource is denied"),
            ErrorKind::Denied,
            Some("may not push"),
        ),
        (
            "PUT",
            "blobs",
            400,
            error_json("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"),
            ErrorKind::Invalid,
            Some("blobs"),
        ),
    ];
    for (m, t, status, body, _, _) in &cases {
        Mock::given(method(*m))
            .and(path(format!("/v2/acme/app/manifests/{t}")))
            .respond_with(
                ResponseTemplate::new(*status).set_body_raw(body.clone(), "application/json"),
            )
            .expect(1)
            .mount(&s.server)
            .await;
    }
    let client = s.client(Credentials::anonymous());
    let img = s.image("acme/app");
    let manifest = Manifest::new(OCI_MANIFEST, b"{}".to_vec());
    for (m, t, status, _, kind, hint) in cases {
        let err = if m == "GET" {
            client
                .get_manifest(&img, &Reference::Tag(tag(t)))
                .await
                .unwrap_err()
        } else {
            client
                .put_manifest(&img, &tag(t), &manifest)
                .await
                .unwrap_err()
        };
        assert_eq!(err.kind(), kind, "{t}: {}", err.chain());
        assert!(
            err.message().contains(&status.to_string()),
            "{}",
            err.message()
        );
        if let Some(h) = hint {
            assert!(
                err.hint().unwrap_or("").contains(h),
                "{t}: {:?}",
                err.hint()
            );
        }
    }
}

#[tokio::test]
async fn ecr_403_for_an_expired_token_re_authenticates_once() {
    let s = Setup::new().await;
    s.basic_ping().await;
    Mock::given(method("PUT"))
        .and(header("Authorization", basic_header().as_str()))
        .respond_with(ResponseTemplate::new(403).set_body_string(error_json(
            "DENIED",
            "Your authorization token has expired. Reauthenticate and try again.",
        )))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&s.server)
        .await;
    Mock::given(method("PUT"))
        .and(header("Authorization", basic_header().as_str()))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .with_priority(2)
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::basic(USER, Secret::new(PASSWORD)));
    let m = Manifest::new(OCI_MANIFEST, b"{}".to_vec());
    client
        .put_manifest(&s.image("acme/app"), &tag("latest"), &m)
        .await
        .unwrap();
    let stats = client.stats();
    assert_eq!((stats.put, stats.reauths), (2, 1));
}

#[tokio::test]
async fn basic_auth_without_credentials_fails_before_any_api_request() {
    let s = Setup::new().await;
    s.basic_ping().await;
    let client = s.client(Credentials::anonymous());
    let err = client
        .get_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.message().contains("requires credentials"),
        "{}",
        err.message()
    );
}

/// A writer into a shared buffer, for capturing every log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_credential_appears_in_errors_debug_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = Setup::new().await;
    s.bearer_ping().await;
    let token = "tok-7a6b5c4d3e2f";
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": token})))
        .expect(2)
        .mount(&s.server)
        .await;
    // A hostile server that echoes what it got, headers included.
    Mock::given(method("GET"))
        .and(path("/v2/acme/app/manifests/staging-1"))
        .respond_with(|req: &Request| {
            let echoed = format!(
                "denied for {:?} password={PASSWORD} token={}",
                req.headers.get("authorization"),
                "tok-7a6b5c4d3e2f"
            );
            ResponseTemplate::new(401).set_body_string(error_json("UNAUTHORIZED", &echoed))
        })
        .expect(2)
        .mount(&s.server)
        .await;
    let options = RegistryOptions {
        credentials: Credentials::basic(USER, Secret::new(PASSWORD)),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    };
    let client = OciRegistry::new(options.clone()).unwrap();
    let err = client
        .get_manifest(&s.image("acme/app"), &staging())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let shown = format!(
        "{}\n{err:?}\n{:?}\n{client:?}\n{options:?}\n{:?}\n{}",
        err.chain(),
        err.hint(),
        Credentials::from_env(|n| match n {
            "CANARY_REGISTRY_USERNAME" => Some(USER.to_string()),
            "CANARY_REGISTRY_PASSWORD" => Some(PASSWORD.to_string()),
            "CANARY_REGISTRY_TOKEN" | "GITHUB_TOKEN" => Some(token.to_string()),
            "GITHUB_ACTOR" => Some("octo".to_string()),
            _ => None,
        })
        .unwrap(),
        String::from_utf8_lossy(&logs.0.lock().unwrap()),
    );
    assert!(
        shown.contains("password=***"),
        "the echo is there, scrubbed: {shown}"
    );
    for secret in [PASSWORD, basic.as_str(), token] {
        assert!(!shown.contains(secret), "`{secret}` leaked:\n{shown}");
    }
    assert!(!logs.0.lock().unwrap().is_empty(), "logs were captured");
}

/// One rule for CA bundles, shared with the smoke runner: an empty file is
/// refused like a file of garbage, naming the file.
#[test]
fn an_empty_ca_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = OciRegistry::new(RegistryOptions {
        ca_file: Some(empty),
        ..RegistryOptions::default()
    })
    .unwrap_err();
    assert!(e.input().contains("registry.ca_file"), "{e}");
    assert!(e.input().contains("empty.pem"), "{e}");
    assert!(e.problem().contains("no PEM certificate"), "{e}");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let host = server.address().to_string();

    // Malformed names, tags and digests never reach the adapter.
    assert!(ImageRef::parse(&format!("{host}/Acme/App")).is_err());
    assert!(ImageRef::parse(&format!("http://{host}/acme/app")).is_err());
    assert!(ImageRef::parse(&format!("{host}/acme/app:latest")).is_err());
    assert!(Tag::parse("bad tag").is_err());
    assert!(Digest::parse("sha256:abc").is_err());

    // Options: each a usage error that names the input.
    let bad_insecure = OciRegistry::new(RegistryOptions {
        insecure: vec![format!("http://{host}")],
        ..RegistryOptions::default()
    })
    .unwrap_err();
    assert!(
        bad_insecure.input().contains("registry.insecure"),
        "{bad_insecure}"
    );
    assert!(bad_insecure.fix().contains("host:port"));
    let dir = tempfile::tempdir().unwrap();
    let missing = OciRegistry::new(RegistryOptions {
        ca_file: Some(dir.path().join("nope.pem")),
        ..RegistryOptions::default()
    })
    .unwrap_err();
    assert!(missing.input().contains("nope.pem"), "{missing}");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let not_pem = OciRegistry::new(RegistryOptions {
        ca_file: Some(garbage),
        ..RegistryOptions::default()
    })
    .unwrap_err();
    assert!(
        not_pem.problem().contains("no PEM certificate"),
        "{not_pem}"
    );
    assert!(OciRegistry::new(RegistryOptions {
        timeout: Duration::ZERO,
        ..RegistryOptions::default()
    })
    .is_err());

    // Plain HTTP to a host that is not loopback nor listed as insecure.
    let client = OciRegistry::new(RegistryOptions::default()).unwrap();
    let http = ImageRef::parse("registry.example:80/acme/app").unwrap();
    let e = client.check_image(&http).unwrap_err();
    assert!(e.problem().contains("plain HTTP"), "{e}");
    assert!(e.fix().contains("insecure"), "{e}");
    let listed = OciRegistry::new(RegistryOptions {
        insecure: vec!["registry.example".into()],
        ..RegistryOptions::default()
    })
    .unwrap();
    listed.check_image(&http).unwrap();

    // A valid client and image make no request until asked to.
    client
        .check_image(&ImageRef::parse(&format!("{host}/acme/app")).unwrap())
        .unwrap();
    assert_eq!(client.stats(), canary_registry::RequestStats::default());
    drop(client);
    server.verify().await;
}

/// Issue 14, finding 9: a redirect loop was reported as a broken
/// connection after 21 requests (retried as if transient). It is a
/// protocol error, said so, after the 5 redirects canary follows.
#[tokio::test]
async fn a_redirect_loop_is_named_and_not_retried() {
    let s = Setup::new().await;
    s.open_ping().await;
    let loop_path = "/v2/acme/app/manifests/latest";
    Mock::given(method("HEAD"))
        .and(path(loop_path))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!("{}{loop_path}", s.server.uri()).as_str(),
        ))
        .expect(5)
        .named("redirect loop")
        .mount(&s.server)
        .await;
    let client = s.client(Credentials::anonymous());
    let err = client
        .head_manifest(
            &s.image("acme/app"),
            &Reference::Tag(Tag::parse("latest").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{}", err.chain());
    assert!(
        err.chain().contains("too many redirects"),
        "{}",
        err.chain()
    );
    assert!(
        err.hint().unwrap_or_default().contains("redirect"),
        "{:?}",
        err.hint()
    );
    assert!(
        s.clock.sleeps().is_empty(),
        "retried: {:?}",
        s.clock.sleeps()
    );
}
