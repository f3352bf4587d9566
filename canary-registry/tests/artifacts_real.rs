//! Artifacts on the real CNCF distribution registry, 2.8 (Debian
//! `docker-registry`) and 3.1 (upstream `registry`), neither of which has
//! the referrers API: canary attaches a ledger-record-shaped artifact to an
//! image skopeo pushed, through the referrers tag schema, and two clients
//! canary did not write, `oras discover` and `regctl artifact list`, list it
//! with its artifactType. The registry's access log counts the requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use canary_core::{Digest, ImageRef, ManualClock, Reference, Registry};
use canary_registry::{Artifact, Credentials, OciRegistry, RegistryOptions, OCI_INDEX};
use canary_testkit::oci::{digest_of, inspect_raw, Fixture};
use canary_testkit::real_registry::{Distribution, Mode, RealRegistry};
use serde_json::{json, Value};

const REPO: &str = "acme/platform";
const RECORD: &str = "application/vnd.canary.record.v1+dsse";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

/// A record as the ledger stores it: an unsigned DSSE envelope over an
/// in-toto statement naming the image, with the listing's annotations.
fn record(kind: &str, subject: &Digest) -> Artifact {
    use base64::Engine as _;
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "127.0.0.1/acme/platform", "digest": { "sha256": subject.hex() } }],
        "predicateType": "https://slsa.dev/verification_summary/v1",
        "predicate": { "verificationResult": "PASSED", "canary": { "kind": kind } },
    });
    let envelope = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&statement).unwrap()),
        "signatures": [],
    });
    let mut annotations = BTreeMap::from([
        ("dev.canary.record.kind".to_string(), kind.to_string()),
        ("dev.canary.run-id".to_string(), format!("run-{kind}")),
        ("dev.canary.command".to_string(), "verify".to_string()),
        (
            "dev.canary.sha".to_string(),
            "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90".to_string(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            "2023-11-14T22:13:20Z".to_string(),
        ),
        (
            "dev.canary.time-ms".to_string(),
            "1700000000000".to_string(),
        ),
    ]);
    if kind == "outcome" {
        annotations.insert("dev.canary.outcome".to_string(), "promoted".to_string());
    }
    Artifact {
        artifact_type: RECORD.to_string(),
        blob_media_type: DSSE.to_string(),
        blob: serde_json::to_vec(&envelope).unwrap(),
        annotations,
    }
}

fn client() -> OciRegistry {
    OciRegistry::new(RegistryOptions {
        credentials: Credentials::anonymous(),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..RegistryOptions::default()
    })
    .unwrap()
}

/// The digests `oras discover --format json` lists with our artifactType.
fn oras_json_records(out: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let referrers = v["referrers"]
        .as_array()
        .unwrap_or_else(|| panic!("no referrers in {out}"));
    referrers
        .iter()
        .filter(|r| r["artifactType"] == RECORD)
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect()
}

async fn attach_and_cross_check(distribution: Distribution) {
    let reg = RealRegistry::start_with(Mode::Open, distribution);
    Fixture::single(&format!("artifacts-{distribution:?}"))
        .build()
        .push(&reg, REPO, "staging-1");
    let subject = Digest::parse(&digest_of(&reg, REPO, "staging-1")).unwrap();
    let img = ImageRef::parse(&format!("{}/{REPO}", reg.host())).unwrap();
    let client = client();
    client.check_image(&img).unwrap();

    let intent = record("intent", &subject);
    let mark = reg.access_mark();
    let intent_id = client.attach(&img, &subject, &intent).await.unwrap();
    let log = reg.access_since(mark);
    let api: Vec<String> = log
        .iter()
        .filter(|e| !e.is_ping())
        .map(|e| format!("{} {} {}", e.method, e.path, e.status))
        .collect();
    // HEAD subject; HEAD + POST + PUT for the empty config and for the
    // envelope; PUT manifest; GET (404) + PUT of the tag schema index.
    assert_eq!(api.len(), 10, "{api:#?}");
    assert!(
        !log.iter().any(|e| e.path.contains("/referrers/")),
        "an attach never asks the referrers API"
    );
    assert_eq!(client.stats().api(), 10, "{:?}", client.stats());

    let outcome = record("outcome", &subject);
    let mark = reg.access_mark();
    let before = client.stats().api();
    let outcome_id = client.attach(&img, &subject, &outcome).await.unwrap();
    let second: Vec<String> = reg
        .access_since(mark)
        .iter()
        .map(|e| format!("{} {} {}", e.method, e.path, e.status))
        .collect();
    // The empty config is known: no HEAD, no upload for it.
    assert_eq!(second.len(), 7, "{second:#?}");
    assert_eq!(client.stats().api() - before, 7);

    // The tag schema index, read by skopeo: both records, ours in order.
    let tag = format!("sha256-{}", subject.hex());
    let index: Value = serde_json::from_slice(&inspect_raw(&reg, REPO, &tag)).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            intent_id.to_string().as_str(),
            outcome_id.to_string().as_str()
        ]
    );

    // canary's own listing: a 404 from the referrers endpoint, then the tag.
    let fresh = self::client();
    let records = fresh.referrers(&img, &subject, Some(RECORD)).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].digest, intent_id);
    assert_eq!(records[0].annotations, intent.annotations);
    assert_eq!(records[1].annotations, outcome.annotations);
    assert_eq!(fresh.stats().api(), 2, "{:?}", fresh.stats());

    // Read back byte-exact: the manifest, then its layer.
    let manifest = fresh
        .get_manifest(&img, &Reference::Digest(outcome_id.clone()))
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(body["artifactType"], RECORD);
    assert_eq!(body["subject"]["digest"], subject.to_string());
    let layer = Digest::parse(body["layers"][0]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(
        fresh.get_blob(&img, &layer, 1 << 20).await.unwrap(),
        outcome.blob
    );

    // oras, tree and JSON.
    let digest = subject.to_string();
    let tree = reg.oras_discover(REPO, &digest, &[]);
    assert!(tree.contains(RECORD), "{tree}");
    assert!(tree.contains(&intent_id.to_string()), "{tree}");
    assert!(tree.contains(&outcome_id.to_string()), "{tree}");
    let json = reg.oras_discover(REPO, &digest, &["--format", "json"]);
    let found = oras_json_records(&json);
    assert_eq!(
        found,
        [intent_id.to_string(), outcome_id.to_string()],
        "{json}"
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let first = &v["referrers"][0];
    assert_eq!(first["annotations"]["dev.canary.record.kind"], "intent");
    let typed = reg.oras_discover(
        REPO,
        &digest,
        &["--format", "json", "--artifact-type", RECORD],
    );
    assert_eq!(oras_json_records(&typed).len(), 2, "{typed}");

    // regctl, its default text and the raw listing.
    let text = reg.regctl_artifact_list(REPO, &digest, &[]);
    assert!(text.contains(RECORD), "{text}");
    assert!(text.contains(&intent_id.to_string()), "{text}");
    assert!(text.contains(&outcome_id.to_string()), "{text}");
    let raw = reg.regctl_artifact_list(
        REPO,
        &digest,
        &[
            "--filter-artifact-type",
            RECORD,
            "--format",
            "{{json .Manifest}}",
        ],
    );
    let v: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    let entries = v["manifests"].as_array().unwrap_or_else(|| panic!("{raw}"));
    assert_eq!(entries.len(), 2, "{raw}");
    for (entry, id) in entries.iter().zip([&intent_id, &outcome_id]) {
        assert_eq!(entry["artifactType"], RECORD);
        assert_eq!(entry["digest"], id.to_string());
    }
}

#[tokio::test]
async fn distribution_2_8_lists_records_through_the_tag_schema() {
    attach_and_cross_check(Distribution::V2).await;
}

#[tokio::test]
async fn distribution_3_1_lists_records_through_the_tag_schema() {
    attach_and_cross_check(Distribution::V3).await;
}
