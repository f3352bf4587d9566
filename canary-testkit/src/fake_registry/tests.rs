//! Auth and faults on the fake registry, as a client sees them over HTTP.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::Method;
use canary_sandbox::registry::api::is_digest;
use serde_json::Value;

use crate::test_http::{client, error_code, header};

use super::*;

const REPO: &str = "acme/platform";

fn parse_challenge(value: &str) -> HashMap<String, String> {
    let rest = value.strip_prefix("Bearer ").unwrap();
    rest.split("\",")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

async fn fetch_token(c: &reqwest::Client, challenge: &str, password: &str) -> reqwest::Response {
    let ch = parse_challenge(challenge);
    c.get(&ch["realm"])
        .query(&[
            ("service", ch["service"].as_str()),
            ("scope", ch["scope"].as_str()),
        ])
        .basic_auth("ci", Some(password))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bearer_flow_enforces_scopes_and_expiry() {
    let registry =
        FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "s3cret")).await;
    let base = registry.base_url();
    registry.push_image(REPO, "staging-1", "1");
    let c = client();
    let manifest_url = format!("{base}/v2/{REPO}/manifests/staging-1");

    let r = c.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let ch = parse_challenge(&header(&r, "www-authenticate"));
    assert_eq!(ch["realm"], format!("{base}/token"));
    assert_eq!(ch["service"], SERVICE);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "UNAUTHORIZED");

    let r = c.get(&manifest_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = header(&r, "www-authenticate");
    assert_eq!(
        parse_challenge(&challenge)["scope"],
        format!("repository:{REPO}:pull")
    );

    let r = fetch_token(&c, &challenge, "wrong").await;
    assert_eq!(r.status(), 401);
    let r = fetch_token(&c, &challenge, "s3cret").await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let pull = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["access_token"], v["token"]);

    let r = c
        .get(&manifest_url)
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{base}/v2/acme/other/manifests/x"))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a token is for its repository only");

    let put_url = format!("{base}/v2/{REPO}/manifests/latest");
    let body = image_manifest("1", "amd64");
    let r = c
        .put(&put_url)
        .bearer_auth(&pull)
        .header("content-type", OCI_MANIFEST)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = header(&r, "www-authenticate");
    let ch = parse_challenge(&challenge);
    assert_eq!(ch["scope"], format!("repository:{REPO}:pull,push"));
    assert_eq!(ch["error"], "insufficient_scope");
    assert_eq!(registry.tag_digest(REPO, "latest"), None);

    let r = fetch_token(&c, &challenge, "s3cret").await;
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let push = v["token"].as_str().unwrap().to_string();
    let r = c
        .put(&put_url)
        .bearer_auth(&push)
        .header("content-type", OCI_MANIFEST)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    registry.expire_tokens();
    let r = c
        .get(&manifest_url)
        .bearer_auth(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Several scopes in one token request.
    let r = c
        .get(format!("{base}/token"))
        .query(&[
            ("service", SERVICE),
            ("scope", "repository:acme/platform:pull"),
            ("scope", "repository:acme/tenant:pull,push"),
        ])
        .basic_auth("ci", Some("s3cret"))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let both = v["token"].as_str().unwrap();
    let r = c
        .head(&manifest_url)
        .bearer_auth(both)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{base}/v2/acme/tenant/manifests/latest"))
        .bearer_auth(both)
        .header("content-type", OCI_MANIFEST)
        .body(image_manifest("2", "amd64"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(format!("{registry:?}").contains("***"));
    assert!(!format!("{registry:?}").contains("s3cret"));
}

#[tokio::test]
async fn basic_auth_and_push_denied() {
    let registry = FakeRegistry::start_with(
        FakeRegistryOptions::default()
            .with_basic("AWS", "pw")
            .with_push_denied(),
    )
    .await;
    let base = registry.base_url();
    registry.push_image(REPO, "staging-1", "1");
    let c = client();
    let url = format!("{base}/v2/{REPO}/manifests/staging-1");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        format!("Basic realm=\"{SERVICE}\"")
    );
    let r = c
        .get(&url)
        .basic_auth("AWS", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(&url)
        .basic_auth("AWS", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/latest"))
        .basic_auth("AWS", Some("pw"))
        .header("content-type", OCI_MANIFEST)
        .body(image_manifest("1", "amd64"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "DENIED");
    assert_eq!(registry.tag_digest(REPO, "latest"), None);
}

#[tokio::test]
async fn status_and_html_faults_have_no_effect() {
    let registry = FakeRegistry::start().await;
    let base = registry.base_url();
    let c = client();
    let url = format!("{base}/v2/{REPO}/manifests/latest");
    let body = image_manifest("1", "amd64");
    registry.inject(Fault::nth(1, FaultKind::Status(503)));
    registry.inject(Fault::nth(2, FaultKind::Status(429)));
    registry.inject(Fault::nth(3, FaultKind::HtmlBody));
    for (status, code) in [
        (503, Some("UNAVAILABLE")),
        (429, Some("TOOMANYREQUESTS")),
        (200, None),
    ] {
        let r = c
            .put(&url)
            .header("content-type", OCI_MANIFEST)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        if let Some(code) = code {
            assert_eq!(header(&r, "retry-after"), "0");
            assert_eq!(error_code(&r.bytes().await.unwrap()), code);
        } else {
            assert!(header(&r, "content-type").starts_with("text/html"));
            assert!(r.text().await.unwrap().contains("<html>"));
        }
        assert_eq!(registry.tag_digest(REPO, "latest"), None);
    }
    let r = c
        .put(&url)
        .header("content-type", OCI_MANIFEST)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let faults: Vec<_> = registry
        .requests()
        .into_iter()
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        faults,
        vec![
            (Some(503), Some(FaultKind::Status(503))),
            (Some(429), Some(FaultKind::Status(429))),
            (Some(200), Some(FaultKind::HtmlBody)),
            (Some(201), None),
        ]
    );
}

#[tokio::test]
async fn reset_connection_sends_nothing_and_changes_nothing() {
    let registry = FakeRegistry::start().await;
    let base = registry.base_url();
    let c = client();
    let url = format!("{base}/v2/{REPO}/manifests/latest");
    registry.inject(Fault::nth_method(
        Method::PUT,
        1,
        FaultKind::ResetConnection,
    ));
    // Warm a pooled connection first: the reset must hit a reused one too.
    assert_eq!(
        c.get(format!("{base}/v2/")).send().await.unwrap().status(),
        200
    );
    let err = c
        .put(&url)
        .header("content-type", OCI_MANIFEST)
        .body(image_manifest("1", "amd64"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert_eq!(registry.tag_digest(REPO, "latest"), None);
    let last = registry.requests().pop().unwrap();
    assert_eq!(
        (last.method, last.status, last.fault),
        (Method::PUT, None, Some(FaultKind::ResetConnection))
    );
    let r = c
        .put(&url)
        .header("content-type", OCI_MANIFEST)
        .body(image_manifest("1", "amd64"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn truncated_body_and_wrong_digest() {
    let registry = FakeRegistry::start().await;
    let base = registry.base_url();
    let bytes = image_manifest("1", "amd64");
    let digest = registry.push_manifest(REPO, "staging-1", OCI_MANIFEST, bytes.clone());
    let c = client();
    let url = format!("{base}/v2/{REPO}/manifests/staging-1");
    registry.inject(Fault::nth_method(Method::GET, 1, FaultKind::TruncatedBody));
    registry.inject(Fault::nth_method(
        Method::GET,
        2,
        FaultKind::WrongDigestHeader,
    ));
    registry.inject(Fault::nth_method(
        Method::HEAD,
        1,
        FaultKind::WrongDigestHeader,
    ));

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), bytes.len().to_string());
    assert!(r.bytes().await.is_err(), "the body must end early");

    let r = c.get(&url).send().await.unwrap();
    let announced = header(&r, "docker-content-digest");
    assert_ne!(announced, digest);
    assert!(is_digest(&announced));
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let r = c.head(&url).send().await.unwrap();
    assert_ne!(header(&r, "docker-content-digest"), digest);

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn slow_fault_delays_and_counts_per_method() {
    let registry = FakeRegistry::start().await;
    let base = registry.base_url();
    registry.push_image(REPO, "staging-1", "1");
    let c = client();
    let url = format!("{base}/v2/{REPO}/manifests/staging-1");
    // The 2nd HEAD, whatever comes in between.
    registry.inject(Fault::nth_method(
        Method::HEAD,
        2,
        FaultKind::Slow(Duration::from_millis(300)),
    ));
    c.head(&url).send().await.unwrap();
    c.get(&url).send().await.unwrap();
    let start = Instant::now();
    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    let requests = registry.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].fault,
        Some(FaultKind::Slow(Duration::from_millis(300)))
    );
    assert_eq!(requests[2].path, format!("/v2/{REPO}/manifests/staging-1"));
}

#[tokio::test]
async fn token_endpoint_faults_are_counted_apart() {
    let registry =
        FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "pw")).await;
    let base = registry.base_url();
    registry.inject(Fault::nth_token(1, FaultKind::HtmlBody));
    let c = client();
    let token = format!("{base}/token?service={SERVICE}&scope=repository%3Aacme%2Fplatform%3Apull");
    let r = c
        .get(&token)
        .basic_auth("ci", Some("pw"))
        .send()
        .await
        .unwrap();
    assert!(header(&r, "content-type").starts_with("text/html"));
    let r = c
        .get(&token)
        .basic_auth("ci", Some("pw"))
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v["token"].is_string());
    let r = c
        .get(format!("{base}/v2/{REPO}/tags/list"))
        .bearer_auth(v["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    // Percent-decoded scope granted pull on acme/platform; the repo is unknown.
    assert_eq!(r.status(), 404);
}
