//! The protocol, as a client sees it over HTTP.

use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;

use super::*;

const REPO: &str = "acme/platform";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> &'r str {
    r.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn serves_pushed_manifests_byte_for_byte() {
    let registry = Registry::start().await;
    let base = registry.base_url();
    let bytes = image_manifest("4c1d56e", "amd64");
    let digest = registry.push_manifest(REPO, "staging-4c1d56e", OCI_MANIFEST, bytes.clone());
    assert_eq!(digest, sha256_digest(&bytes));
    let c = client();

    let r = c.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );

    for reference in ["staging-4c1d56e", digest.as_str()] {
        let url = format!("{base}/v2/{REPO}/manifests/{reference}");
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(header(&r, "content-length"), bytes.len().to_string());
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        let r = c.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(header(&r, "content-length"), bytes.len().to_string());
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
    }
}

#[tokio::test]
async fn put_stores_exact_bytes_and_media_type() {
    let registry = Registry::start().await;
    let base = registry.base_url();
    let c = client();
    // Odd whitespace and key order: a re-serialisation would change the digest.
    let bytes = b"{ \"schemaVersion\":2,\n  \"mediaType\": \"x\", \"manifests\":[] }\n".to_vec();
    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/latest"))
        .header("content-type", DOCKER_MANIFEST_LIST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let digest = sha256_digest(&bytes);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/{REPO}/manifests/{digest}")
    );
    let stored = registry.manifest(REPO, "latest").unwrap();
    assert_eq!(stored.bytes, bytes);
    assert_eq!(stored.media_type, DOCKER_MANIFEST_LIST);
    assert_eq!(registry.tag_digest(REPO, "latest"), Some(digest.clone()));

    let r = c
        .get(format!("{base}/v2/{REPO}/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type"), DOCKER_MANIFEST_LIST);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // By digest: must match; stores without moving a tag.
    let other = image_manifest("x", "arm64");
    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/{digest}"))
        .header("content-type", OCI_MANIFEST)
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "DIGEST_INVALID");
    let r = c
        .put(format!(
            "{base}/v2/{REPO}/manifests/{}",
            sha256_digest(&other)
        ))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // No Content-Type: the body's mediaType is used.
    assert_eq!(
        registry
            .manifest(REPO, &sha256_digest(&other))
            .unwrap()
            .media_type,
        OCI_MANIFEST
    );
    assert_eq!(registry.tags(REPO), vec!["latest".to_string()]);

    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/latest"))
        .header("content-type", OCI_MANIFEST)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "MANIFEST_INVALID");
    assert_eq!(registry.tag_digest(REPO, "latest"), Some(digest));
}

#[tokio::test]
async fn unknown_names_and_manifests_use_distribution_errors() {
    let registry = Registry::start().await;
    let base = registry.base_url();
    registry.push_image(REPO, "staging-1", "1");
    let c = client();
    let cases = [
        ("acme/nope/manifests/latest", 404, "NAME_UNKNOWN"),
        ("acme/platform/manifests/latest", 404, "MANIFEST_UNKNOWN"),
        ("acme/nope/tags/list", 404, "NAME_UNKNOWN"),
        ("Acme/platform/manifests/latest", 400, "NAME_INVALID"),
        ("acme/platform/manifests/-bad", 400, "TAG_INVALID"),
        ("acme/platform/blobs/sha256:00", 404, "BLOB_UNKNOWN"),
    ];
    for (path, status, code) in cases {
        let r = c.get(format!("{base}/v2/{path}")).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(error_code(&r.bytes().await.unwrap()), code, "{path}");
    }
    let r = c
        .head(format!("{base}/v2/{REPO}/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .delete(format!("{base}/v2/{REPO}/manifests/staging-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

async fn all_tags(c: &reqwest::Client, base: &str, first: &str) -> (Vec<String>, usize) {
    let mut url = format!("{base}{first}");
    let mut tags = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        pages += 1;
        let next = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        });
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["name"], REPO);
        tags.extend(
            v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string()),
        );
        match next {
            Some(next) => url = format!("{base}{next}"),
            None => return (tags, pages),
        }
    }
}

#[tokio::test]
async fn tags_list_paginates_with_link_headers() {
    let registry = Registry::start_with(RegistryOptions::default().with_page_size(3)).await;
    let base = registry.base_url();
    let mut expected: Vec<String> = (0..8).map(|i| format!("staging-{i:02}")).collect();
    expected.push("latest".to_string());
    for t in &expected {
        registry.push_image(REPO, t, t);
    }
    expected.sort();
    let c = client();
    let list = format!("/v2/{REPO}/tags/list");
    assert_eq!(all_tags(&c, &base, &list).await, (expected.clone(), 3));
    assert_eq!(
        all_tags(&c, &base, &format!("{list}?n=2")).await,
        (expected.clone(), 5)
    );
    // `n` above the cap is capped; `last` starts after a tag.
    let (tags, _) = all_tags(&c, &base, &format!("{list}?n=100&last=staging-05")).await;
    assert_eq!(tags, expected[7..].to_vec());
    let r = c.get(format!("{base}{list}?n=x")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let open = Registry::start().await;
    for t in &expected {
        open.push_image(REPO, t, t);
    }
    assert_eq!(all_tags(&c, &open.base_url(), &list).await, (expected, 1));
}

#[tokio::test]
async fn index_helpers_build_a_consistent_index() {
    let registry = Registry::start().await;
    let digest = registry.push_index(REPO, "staging-1", "1", &["amd64", "arm64"]);
    let index = registry.manifest(REPO, &digest).unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    let v: Value = serde_json::from_slice(&index.bytes).unwrap();
    let children = v["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for child in children {
        let child_digest = child["digest"].as_str().unwrap();
        let stored = registry.manifest(REPO, child_digest).unwrap();
        assert_eq!(stored.bytes.len() as u64, child["size"].as_u64().unwrap());
    }
    assert_ne!(image_manifest("1", "amd64"), image_manifest("2", "amd64"));
    assert_eq!(registry.tags(REPO), vec!["staging-1".to_string()]);
}

#[tokio::test]
async fn drop_stops_the_server() {
    let registry = Registry::start().await;
    let host = registry.host();
    drop(registry);
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(&host).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "{host} still accepts connections");
}

#[tokio::test]
async fn blob_uploads_chunked_and_monolithic() {
    let registry = Registry::start().await;
    let base = registry.base_url();
    let c = client();
    let bytes = b"a payload in two parts".to_vec();
    let digest = sha256_digest(&bytes);

    let r = c
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = header(&r, "location").to_string();
    assert!(location.starts_with(&format!("/v2/{REPO}/blobs/uploads/")));
    let r = c
        .patch(format!("{base}{location}"))
        .body(bytes[..5].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-4");
    // A wrong digest is refused and the session is gone.
    let wrong = sha256_digest(b"other");
    let r = c
        .put(format!("{base}{location}?digest={wrong}"))
        .body(bytes[5..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "DIGEST_INVALID");
    let r = c
        .put(format!("{base}{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(registry.blob(REPO, &wrong), None);

    // Start again: PATCH the first part, PUT the rest with the digest.
    let r = c
        .post(format!("{base}/v2/{REPO}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&r, "location").to_string();
    c.patch(format!("{base}{location}"))
        .body(bytes[..5].to_vec())
        .send()
        .await
        .unwrap();
    let r = c
        .put(format!("{base}{location}?digest={digest}"))
        .body(bytes[5..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(header(&r, "location"), format!("/v2/{REPO}/blobs/{digest}"));
    assert_eq!(registry.blob(REPO, &digest), Some(bytes.clone()));

    let url = format!("{base}/v2/{REPO}/blobs/{digest}");
    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), bytes.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // One request: POST with the digest and the bytes.
    let one = b"{}".to_vec();
    let one_digest = sha256_digest(&one);
    let r = c
        .post(format!(
            "{base}/v2/other/repo/blobs/uploads/?digest={one_digest}"
        ))
        .body(one.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(registry.blob("other/repo", &one_digest), Some(one));
    // Blobs are per repository.
    let r = c
        .head(format!("{base}/v2/other/repo/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// An artifact manifest with a `subject`, as an OCI client writes it.
fn artifact_manifest(
    subject: &str,
    subject_size: usize,
    artifact_type: &str,
    note: &str,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(b"{}"),
            "size": 2,
        },
        "layers": [],
        "subject": { "mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size },
        "annotations": { "note": note },
    }))
    .unwrap()
}

async fn put_artifact(c: &reqwest::Client, base: &str, bytes: &[u8]) -> reqwest::Response {
    let digest = sha256_digest(bytes);
    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/{digest}"))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r
}

#[tokio::test]
async fn referrers_api_lists_manifests_by_subject() {
    let registry = Registry::start().await;
    let base = registry.base_url();
    let c = client();
    let subject = registry.push_image(REPO, "staging-1", "1");
    let size = registry.manifest(REPO, &subject).unwrap().bytes.len();
    let first = artifact_manifest(&subject, size, "application/x.a", "first");
    let second = artifact_manifest(&subject, size, "application/x.b", "second");
    for bytes in [&first, &second] {
        let r = put_artifact(&c, &base, bytes).await;
        assert_eq!(header(&r, "oci-subject"), subject);
    }
    // An image manifest without a subject gets no OCI-Subject.
    let r = c
        .put(format!("{base}/v2/{REPO}/manifests/plain"))
        .header("content-type", OCI_MANIFEST)
        .body(image_manifest("2", "amd64"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("oci-subject").is_none());

    let url = format!("{base}/v2/{REPO}/referrers/{subject}");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["mediaType"], OCI_INDEX);
    let listed = v["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for (bytes, t, note) in [
        (&first, "application/x.a", "first"),
        (&second, "application/x.b", "second"),
    ] {
        let entry = listed
            .iter()
            .find(|e| e["digest"] == sha256_digest(bytes))
            .expect("listed");
        assert_eq!(entry["artifactType"], t);
        assert_eq!(entry["annotations"]["note"], note);
        assert_eq!(entry["size"], bytes.len());
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
    }

    let r = c
        .get(format!("{url}?artifactType=application%2Fx.b"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256_digest(&second));

    // Nothing refers to another digest: an empty index, not a 404.
    let other = sha256_digest(b"nothing");
    let r = c
        .get(format!("{base}/v2/{REPO}/referrers/{other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v["manifests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn without_the_referrers_api_it_behaves_like_distribution() {
    let registry = Registry::start_with(RegistryOptions::default().with_referrers_api(false)).await;
    let base = registry.base_url();
    let c = client();
    let subject = registry.push_image(REPO, "staging-1", "1");
    let artifact = artifact_manifest(&subject, 10, "application/x.a", "first");
    let r = put_artifact(&c, &base, &artifact).await;
    assert!(r.headers().get("oci-subject").is_none());
    let r = c
        .get(format!("{base}/v2/{REPO}/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");
}
