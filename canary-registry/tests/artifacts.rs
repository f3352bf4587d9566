//! Artifacts attached to a manifest (`attach`, `referrers`, `push_blob`,
//! `get_blob`): on the sandbox registry with the referrers API and without
//! it (the tag schema fallback), behind the fake registry's token auth, and
//! against wiremock for what a registry won't do on demand (a 5xx on the
//! referrers endpoint, a tag schema index written by someone else).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use canary_core::{Digest, ErrorKind, ImageRef, ManualClock, Reference, Registry, Secret};
use canary_registry::{
    Artifact, Credentials, OciRegistry, RegistryOptions, RequestStats, RetryPolicy, OCI_EMPTY,
    OCI_EMPTY_DIGEST, OCI_INDEX, OCI_MANIFEST,
};
use canary_sandbox::registry::{Registry as Sandbox, RegistryOptions as SandboxOptions};
use canary_testkit::fake_registry::{FakeRegistry, FakeRegistryOptions};
use serde_json::{json, Value};
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REPO: &str = "acme/platform";
const RECORD: &str = "application/vnd.canary.record.v1+dsse";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const SBOM: &str = "application/vnd.example.sbom.v1+json";

fn client(credentials: Credentials) -> OciRegistry {
    OciRegistry::new(RegistryOptions {
        credentials,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        },
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..RegistryOptions::default()
    })
    .unwrap()
}

fn image(host: &str) -> ImageRef {
    ImageRef::parse(&format!("{host}/{REPO}")).unwrap()
}

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

/// A record-shaped artifact: an (unsigned) DSSE envelope and the
/// annotations a listing is read by.
fn record(kind: &str, run: &str) -> Artifact {
    use base64::Engine as _;
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "predicate": { "canary": { "kind": kind, "run_id": run } },
    });
    let blob = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&statement).unwrap()),
        "signatures": [],
    });
    Artifact {
        artifact_type: RECORD.to_string(),
        blob_media_type: DSSE.to_string(),
        blob: serde_json::to_vec(&blob).unwrap(),
        annotations: BTreeMap::from([
            ("dev.canary.record.kind".to_string(), kind.to_string()),
            ("dev.canary.run-id".to_string(), run.to_string()),
            ("dev.canary.command".to_string(), "verify".to_string()),
            (
                "dev.canary.time-ms".to_string(),
                "1700000000000".to_string(),
            ),
            (
                "org.opencontainers.image.created".to_string(),
                "2023-11-14T22:13:20Z".to_string(),
            ),
        ]),
    }
}

fn sbom() -> Artifact {
    Artifact {
        artifact_type: SBOM.to_string(),
        blob_media_type: "application/json".to_string(),
        blob: br#"{"packages":[]}"#.to_vec(),
        annotations: BTreeMap::new(),
    }
}

fn since(client: &OciRegistry, before: RequestStats) -> RequestStats {
    let now = client.stats();
    RequestStats {
        auth: now.auth - before.auth,
        get: now.get - before.get,
        head: now.head - before.head,
        put: now.put - before.put,
        post: now.post - before.post,
        retries: now.retries - before.retries,
        reauths: now.reauths - before.reauths,
        scheme_fallbacks: now.scheme_fallbacks - before.scheme_fallbacks,
    }
}

/// Two artifacts on one subject of the sandbox registry: listed, filtered,
/// read back byte-exact; the request count of each call; and where the
/// listing lives (the API, or the tag schema index).
async fn attach_list_filter_read(referrers_api: bool) {
    let sandbox =
        Sandbox::start_with(SandboxOptions::default().with_referrers_api(referrers_api)).await;
    let subject = digest(&sandbox.push_image(REPO, "staging-1", "1"));
    let img = image(&sandbox.host());
    let client = client(Credentials::anonymous());
    client.check_image(&img).unwrap();

    let intent = record("intent", "run-1");
    let before = client.stats();
    let first = client.attach(&img, &subject, &intent).await.unwrap();
    let cost_first = since(&client, before);
    let before = client.stats();
    let second = client.attach(&img, &subject, &sbom()).await.unwrap();
    let cost_second = since(&client, before);
    // HEAD subject; HEAD + POST + PUT of the empty config and of the blob;
    // PUT of the manifest; without the API, GET + PUT of the tag index.
    // The second attach knows the empty config: no HEAD, no upload.
    let tag_index = if referrers_api { 0 } else { 2 };
    assert_eq!(cost_first.api(), 8 + tag_index, "{cost_first:?}");
    assert_eq!(cost_first.post, 2);
    assert_eq!(cost_second.api(), 5 + tag_index, "{cost_second:?}");
    assert_eq!(cost_first.retries + cost_second.retries, 0);

    // Listed, with the annotations copied, by one request (the attach told
    // the client which way the registry lists).
    let before = client.stats();
    let all = client.referrers(&img, &subject, None).await.unwrap();
    assert_eq!(since(&client, before).api(), 1);
    assert_eq!(all.len(), 2, "{all:?}");
    let mine = all
        .iter()
        .find(|r| r.digest == first)
        .expect("first listed");
    assert_eq!(mine.artifact_type.as_deref(), Some(RECORD));
    assert_eq!(mine.media_type, OCI_MANIFEST);
    assert_eq!(mine.annotations, intent.annotations);
    let theirs = all
        .iter()
        .find(|r| r.digest == second)
        .expect("second listed");
    assert_eq!(theirs.artifact_type.as_deref(), Some(SBOM));
    assert!(theirs.annotations.is_empty());

    let records = client
        .referrers(&img, &subject, Some(RECORD))
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].digest, first);
    assert!(client
        .referrers(&img, &subject, Some("application/x.none"))
        .await
        .unwrap()
        .is_empty());

    // Read back: the manifest by digest, then its one layer.
    let manifest = client
        .get_manifest(&img, &Reference::Digest(first.clone()))
        .await
        .unwrap();
    assert_eq!(manifest.media_type(), OCI_MANIFEST);
    assert_eq!(mine.size, manifest.bytes().len() as u64);
    let body: Value = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(body["artifactType"], RECORD);
    assert_eq!(body["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(body["config"]["digest"], OCI_EMPTY_DIGEST);
    assert_eq!(body["config"]["size"], 2);
    assert_eq!(body["subject"]["digest"], subject.to_string());
    assert_eq!(body["subject"]["mediaType"], OCI_MANIFEST);
    let stored_subject = sandbox.manifest(REPO, &subject.to_string()).unwrap();
    assert_eq!(body["subject"]["size"], stored_subject.bytes.len());
    assert_eq!(body["annotations"]["dev.canary.record.kind"], "intent");
    assert_eq!(body["layers"][0]["mediaType"], DSSE);
    let layer = digest(body["layers"][0]["digest"].as_str().unwrap());
    let blob = client.get_blob(&img, &layer, 1 << 20).await.unwrap();
    assert_eq!(blob, intent.blob);
    assert_eq!(
        sandbox.blob(REPO, OCI_EMPTY_DIGEST).as_deref(),
        Some(&b"{}"[..])
    );
    // A limit below the blob's size refuses it.
    let small = client.get_blob(&img, &layer, 8).await.unwrap_err();
    assert_eq!(small.kind(), ErrorKind::Protocol, "{small}");

    // Where the listing lives.
    let tag = format!("sha256-{}", subject.hex());
    match sandbox.manifest(REPO, &tag) {
        None => assert!(referrers_api, "no tag schema index without the API"),
        Some(index) => {
            assert!(!referrers_api, "a tag schema index next to the API");
            assert_eq!(index.media_type, OCI_INDEX);
            let index: Value = serde_json::from_slice(&index.bytes).unwrap();
            let listed: Vec<&str> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["digest"].as_str().unwrap())
                .collect();
            assert_eq!(
                listed,
                [first.to_string().as_str(), second.to_string().as_str()]
            );
        }
    }

    // A fresh client learns the registry's way once, then remembers it.
    let fresh = self::client(Credentials::anonymous());
    let before = fresh.stats();
    assert_eq!(
        fresh.referrers(&img, &subject, None).await.unwrap().len(),
        2
    );
    let first_call = since(&fresh, before).api();
    assert_eq!(first_call, if referrers_api { 1 } else { 2 });
    let before = fresh.stats();
    assert_eq!(
        fresh.referrers(&img, &subject, None).await.unwrap().len(),
        2
    );
    assert_eq!(since(&fresh, before).api(), 1);

    // A new client (a new run) finds the empty config with one HEAD.
    let before = fresh.stats();
    fresh
        .attach(&img, &subject, &record("outcome", "run-1"))
        .await
        .unwrap();
    let cost = since(&fresh, before);
    assert_eq!(cost.api(), 6 + tag_index, "{cost:?}");
    assert_eq!(cost.post, 1, "{cost:?}");
}

#[tokio::test]
async fn sandbox_with_the_referrers_api() {
    attach_list_filter_read(true).await;
}

#[tokio::test]
async fn sandbox_without_the_referrers_api_uses_the_tag_schema() {
    attach_list_filter_read(false).await;
}

#[tokio::test]
async fn attach_to_a_missing_subject_fails_before_writing_a_manifest() {
    let sandbox = Sandbox::start().await;
    sandbox.push_image(REPO, "staging-1", "1");
    let img = image(&sandbox.host());
    let client = client(Credentials::anonymous());
    let missing = Digest::sha256_of(b"no such manifest");
    let error = client
        .attach(&img, &missing, &record("intent", "r"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(sandbox.tags(REPO), ["staging-1"]);
}

#[tokio::test]
async fn blob_uploads_are_authorised_with_push_scope() {
    // The fake's token auth refuses a POST or PUT without `push` in the
    // token's scope.
    let fake = FakeRegistry::start_with(
        FakeRegistryOptions::default()
            .with_bearer("ci", "pw-123456")
            .without_referrers_api(),
    )
    .await;
    let subject = digest(&fake.push_image(REPO, "staging-1", "1"));
    let img = image(&fake.host());
    let client = client(Credentials::basic("ci", Secret::new("pw-123456")));
    client.check_image(&img).unwrap();
    let id = client
        .attach(&img, &subject, &record("outcome", "run-2"))
        .await
        .unwrap();
    let listed = client
        .referrers(&img, &subject, Some(RECORD))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, id);
    let stats = client.stats();
    assert_eq!(stats.reauths, 0, "one token covered every write: {stats:?}");
    assert!(fake.blob(REPO, OCI_EMPTY_DIGEST).is_some());

    // Anonymous: the token server grants no push, and the upload is refused.
    let anonymous = self::client(Credentials::anonymous());
    let error = anonymous.push_blob(&img, b"anything").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
}

#[tokio::test]
async fn push_blob_skips_what_the_registry_has() {
    let sandbox = Sandbox::start().await;
    sandbox.push_image(REPO, "staging-1", "1");
    let img = image(&sandbox.host());
    let writer = client(Credentials::anonymous());
    let d = writer.push_blob(&img, b"payload").await.unwrap();
    assert_eq!(d, Digest::sha256_of(b"payload"));
    assert_eq!(sandbox.blob(REPO, &d.to_string()).unwrap(), b"payload");
    // Another client: one HEAD, no upload.
    let other = client(Credentials::anonymous());
    let before = other.stats();
    other.push_blob(&img, b"payload").await.unwrap();
    let cost = since(&other, before);
    assert_eq!((cost.head, cost.post, cost.put), (1, 0, 0), "{cost:?}");
    // A wrong digest asked for is not found; the bytes are checked.
    let missing = other
        .get_blob(&img, &Digest::sha256_of(b"other"), 1024)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

// ---- wiremock -------------------------------------------------------------

struct Mocked {
    server: MockServer,
    subject: Digest,
    subject_bytes: Vec<u8>,
}

impl Mocked {
    /// A registry with the subject manifest, blob uploads, and a catch-all
    /// that fails the test on any request not mocked.
    async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(599))
            .with_priority(u8::MAX)
            .expect(0)
            .named("unexpected request")
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&server)
            .await;
        let subject_bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#.to_vec();
        let subject = Digest::sha256_of(&subject_bytes);
        Mock::given(method("HEAD"))
            .and(path(format!("/v2/{REPO}/manifests/{subject}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", OCI_MANIFEST)
                    .insert_header("docker-content-digest", subject.to_string().as_str())
                    .insert_header("content-length", subject_bytes.len().to_string().as_str()),
            )
            .mount(&server)
            .await;
        Self {
            server,
            subject,
            subject_bytes,
        }
    }

    fn image(&self) -> ImageRef {
        image(&self.server.address().to_string())
    }

    fn referrers_path(&self) -> String {
        format!("/v2/{REPO}/referrers/{}", self.subject)
    }

    fn tag_path(&self) -> String {
        format!("/v2/{REPO}/manifests/sha256-{}", self.subject.hex())
    }

    /// Blobs are missing, uploads succeed; manifest PUTs by digest are
    /// answered `201`, with `OCI-Subject` when `api`.
    async fn writes(&self, api: bool) {
        Mock::given(method("HEAD"))
            .and(path_regex(format!(
                "^/v2/{REPO}/blobs/sha256:[0-9a-f]{{64}}$"
            )))
            .respond_with(ResponseTemplate::new(404))
            .mount(&self.server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v2/{REPO}/blobs/uploads/")))
            .respond_with(ResponseTemplate::new(202).insert_header(
                "location",
                format!("/v2/{REPO}/blobs/uploads/u1?_state=x").as_str(),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/v2/{REPO}/blobs/uploads/u1")))
            .respond_with(ResponseTemplate::new(201))
            .mount(&self.server)
            .await;
        let mut answer = ResponseTemplate::new(201);
        if api {
            answer = answer.insert_header("oci-subject", self.subject.to_string().as_str());
        }
        Mock::given(method("PUT"))
            .and(path_regex(format!(
                "^/v2/{REPO}/manifests/sha256:[0-9a-f]{{64}}$"
            )))
            .respond_with(answer)
            .named("artifact manifest PUT")
            .mount(&self.server)
            .await;
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap()
    }

    async fn count(&self, method_name: &str, request_path: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() == method_name && r.url.path() == request_path)
            .count()
    }
}

fn index_of(entries: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap()
}

fn entry(d: &Digest, artifact_type: &str) -> Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": d.to_string(),
        "size": 321,
        "artifactType": artifact_type,
        "annotations": { "k": "v" },
    })
}

#[tokio::test]
async fn a_5xx_on_the_referrers_endpoint_is_retried_not_a_fallback() {
    let m = Mocked::start().await;
    let listed = Digest::sha256_of(b"listed");
    Mock::given(method("GET"))
        .and(path(m.referrers_path()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m.server)
        .await;
    Mock::given(method("GET"))
        .and(path(m.referrers_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", OCI_INDEX)
                .set_body_bytes(index_of(&[entry(&listed, RECORD)])),
        )
        .with_priority(2)
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let found = client
        .referrers(&m.image(), &m.subject, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest, listed);
    assert_eq!(found[0].size, 321);
    assert_eq!(found[0].annotations["k"], "v");
    assert_eq!(client.stats().retries, 1);
    assert_eq!(m.count("GET", &m.referrers_path()).await, 2);
    assert_eq!(m.count("GET", &m.tag_path()).await, 0, "no fallback");
    // The API is remembered: the next call asks it again, once.
    client
        .referrers(&m.image(), &m.subject, None)
        .await
        .unwrap();
    assert_eq!(m.count("GET", &m.referrers_path()).await, 3);
}

#[tokio::test]
async fn a_persistent_5xx_is_an_error_never_the_fallback() {
    let m = Mocked::start().await;
    Mock::given(method("GET"))
        .and(path(m.referrers_path()))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let error = client
        .referrers(&m.image(), &m.subject, None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert_eq!(m.count("GET", &m.tag_path()).await, 0, "no fallback");
}

#[tokio::test]
async fn a_404_on_the_referrers_endpoint_switches_to_the_tag_schema() {
    let m = Mocked::start().await;
    let listed = Digest::sha256_of(b"listed");
    Mock::given(method("GET"))
        .and(path(m.referrers_path()))
        .respond_with(ResponseTemplate::new(404).set_body_string("404 page not found\n"))
        .expect(1)
        .mount(&m.server)
        .await;
    Mock::given(method("GET"))
        .and(path(m.tag_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", OCI_INDEX)
                .set_body_bytes(index_of(&[entry(&listed, RECORD), entry(&m.subject, SBOM)])),
        )
        .expect(3)
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let all = client
        .referrers(&m.image(), &m.subject, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let records = client
        .referrers(&m.image(), &m.subject, Some(RECORD))
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].digest, listed);
    assert_eq!(records[0].artifact_type.as_deref(), Some(RECORD));
    // The second call went straight to the tag (the 404 is remembered);
    // another repository would ask again.
    client
        .referrers(&m.image(), &m.subject, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_tag_schema_index_keeps_earlier_entries() {
    let m = Mocked::start().await;
    m.writes(false).await;
    let earlier = Digest::sha256_of(b"someone else's signature");
    let mut foreign = entry(&earlier, "application/vnd.dev.cosign.artifact.sig.v1+json");
    foreign["data"] = json!("e30=");
    let current = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [foreign],
        "annotations": { "written.by": "another tool" },
    }))
    .unwrap();
    Mock::given(method("GET"))
        .and(path(m.tag_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", OCI_INDEX)
                .set_body_bytes(current),
        )
        .expect(1)
        .mount(&m.server)
        .await;
    Mock::given(method("PUT"))
        .and(path(m.tag_path()))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let artifact = record("outcome", "run-9");
    let before = client.stats();
    let id = client
        .attach(&m.image(), &m.subject, &artifact)
        .await
        .unwrap();
    // HEAD subject, HEAD + POST + PUT per blob (two), PUT manifest, GET +
    // PUT of the tag index.
    let cost = since(&client, before);
    assert_eq!(
        (cost.head, cost.post, cost.put, cost.get),
        (3, 2, 4, 1),
        "{cost:?}"
    );

    let put = m
        .requests()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT" && r.url.path() == m.tag_path())
        .expect("the index was written");
    assert_eq!(
        put.headers.get("content-type").unwrap().to_str().unwrap(),
        OCI_INDEX
    );
    let index: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["annotations"]["written.by"], "another tool");
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0], foreign, "the earlier entry, untouched");
    assert_eq!(manifests[1]["digest"], id.to_string());
    assert_eq!(manifests[1]["mediaType"], OCI_MANIFEST);
    assert_eq!(manifests[1]["artifactType"], RECORD);
    assert_eq!(manifests[1]["annotations"]["dev.canary.run-id"], "run-9");

    // The manifest PUT carried the subject's descriptor from the HEAD.
    let manifest_put = m
        .requests()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT" && r.url.path().ends_with(&format!("/{id}")))
        .expect("the artifact manifest was written");
    assert!(id.matches(&manifest_put.body));
    let body: Value = serde_json::from_slice(&manifest_put.body).unwrap();
    assert_eq!(
        body["subject"],
        json!({
            "mediaType": OCI_MANIFEST,
            "digest": m.subject.to_string(),
            "size": m.subject_bytes.len(),
        })
    );
    // The blob upload: POST, then PUT to the Location with its query kept
    // and the digest added.
    let blob_put = m
        .requests()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT" && r.url.path().ends_with("/uploads/u1"))
        .expect("a blob was uploaded");
    let query: BTreeMap<String, String> = blob_put.url.query_pairs().into_owned().collect();
    assert_eq!(query["_state"], "x");
    assert!(query["digest"].starts_with("sha256:"));
}

#[tokio::test]
async fn a_missing_tag_schema_index_starts_empty() {
    let m = Mocked::start().await;
    m.writes(false).await;
    Mock::given(method("GET"))
        .and(path(m.tag_path()))
        .respond_with(ResponseTemplate::new(404).set_body_string(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        ))
        .expect(1)
        .mount(&m.server)
        .await;
    Mock::given(method("PUT"))
        .and(path(m.tag_path()))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let id = client
        .attach(&m.image(), &m.subject, &record("intent", "run-1"))
        .await
        .unwrap();
    let put = m
        .requests()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT" && r.url.path() == m.tag_path())
        .unwrap();
    let index: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], id.to_string());
}

#[tokio::test]
async fn oci_subject_on_the_put_means_no_tag_schema_write() {
    let m = Mocked::start().await;
    m.writes(true).await;
    let client = client(Credentials::anonymous());
    client
        .attach(&m.image(), &m.subject, &record("intent", "run-1"))
        .await
        .unwrap();
    assert_eq!(m.count("GET", &m.tag_path()).await, 0);
    assert_eq!(m.count("PUT", &m.tag_path()).await, 0);
}

#[tokio::test]
async fn an_upload_location_on_another_origin_is_refused() {
    let m = Mocked::start().await;
    Mock::given(method("HEAD"))
        .and(path_regex(format!("^/v2/{REPO}/blobs/")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&m.server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/{REPO}/blobs/uploads/")))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("location", "https://elsewhere.example/upload/u1"),
        )
        .mount(&m.server)
        .await;
    let client = client(Credentials::anonymous());
    let error = client.push_blob(&m.image(), b"x").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    assert!(error.message().contains("another origin"), "{error}");
}
