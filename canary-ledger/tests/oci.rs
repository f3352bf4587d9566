//! `OciLedger` against the sandbox registry, with the referrers API and
//! without it (the referrers tag schema, as CNCF distribution 2.x/3.x).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use canary_core::ledger::{Ledger, RecordKind, Stored};
use canary_core::{Digest, ErrorKind, ImageRef};
use canary_ledger::{
    fetch_envelope, open, statement, verify_record, Invalid, OciLedger, SigningKey, VerifyingKey,
    RECORD_ARTIFACT_TYPE,
};
use canary_registry::{Artifact, OciRegistry, RegistryOptions, OCI_EMPTY, OCI_EMPTY_DIGEST};
use canary_sandbox::registry::{Registry, RegistryOptions as SandboxOptions};
use common::{generate, image, record, ED25519};

struct Setup {
    sandbox: Registry,
    registry: Arc<OciRegistry>,
    images: Vec<(ImageRef, Digest)>,
    _dir: tempfile::TempDir,
    signing: SigningKey,
    public: VerifyingKey,
}

async fn setup(referrers_api: bool) -> Setup {
    let sandbox =
        Registry::start_with(SandboxOptions::default().with_referrers_api(referrers_api)).await;
    let images = ["acme/platform", "acme/tenant"]
        .iter()
        .map(|repo| {
            let d = sandbox.push_image(repo, "staging-4c1d56e", &format!("{repo}-r2"));
            (image(&sandbox.host(), repo), Digest::parse(&d).unwrap())
        })
        .collect();
    // Default options: loopback is reached over plain HTTP.
    let registry = Arc::new(OciRegistry::new(RegistryOptions::default()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let k = generate(dir.path(), "k", ED25519);
    let signing = SigningKey::from_pkcs8_pem(&k.private_pem, "test").unwrap();
    let public = VerifyingKey::from_public_key_pem(&k.public_pem, "test").unwrap();
    Setup {
        sandbox,
        registry,
        images,
        _dir: dir,
        signing,
        public,
    }
}

fn by_kind(mut stored: Vec<Stored>) -> Vec<Stored> {
    stored.sort_by_key(|s| s.record.kind == RecordKind::Outcome);
    stored
}

async fn round_trip(referrers_api: bool) {
    let s = setup(referrers_api).await;
    let ledger = OciLedger::new(
        s.registry.clone(),
        Some(s.signing),
        statement::verifier_id("0.1.0"),
    );
    let intent = record(RecordKind::Intent, &s.images);
    let outcome = record(RecordKind::Outcome, &s.images);

    let mut ids = BTreeMap::new();
    for (img, digest) in &s.images {
        let i = ledger.append(img, digest, &intent).await.unwrap();
        let o = ledger.append(img, digest, &outcome).await.unwrap();
        assert_ne!(i, o);
        ids.insert(img.clone(), (i, o));
    }

    for (img, digest) in &s.images {
        let (intent_id, outcome_id) = &ids[img];
        let attached = by_kind(ledger.attached(img, digest).await.unwrap());
        assert_eq!(attached.len(), 2, "{img}: {attached:?}");
        assert_eq!(attached[0].id, *intent_id);
        assert_eq!(attached[0].record, intent);
        assert_eq!(attached[1].id, *outcome_id);
        assert_eq!(attached[1].record, outcome);
        assert!(attached.iter().all(|a| a.signed));

        let got = ledger.get(img, outcome_id).await.unwrap();
        assert_eq!(got, attached[1]);

        // The statement's subjects: every image of the release, with its
        // target digest.
        let envelope = fetch_envelope(&s.registry, img, intent_id).await.unwrap();
        let subjects: Vec<(String, String)> = open(&envelope)
            .unwrap()
            .subject
            .into_iter()
            .map(|sub| (sub.name, sub.digest["sha256"].clone()))
            .collect();
        let want: Vec<(String, String)> = s
            .images
            .iter()
            .map(|(i, d)| (i.to_string(), d.hex().to_string()))
            .collect();
        assert_eq!(subjects, want);

        let verified = verify_record(&s.registry, img, intent_id, &s.public)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(verified.key_id, s.public.key_id());
        assert_eq!(verified.statement.record(), &intent);

        // What another OCI client sees: the stored manifest.
        let repo = img.path();
        let stored = s.sandbox.manifest(repo, &outcome_id.to_string()).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&stored.bytes).unwrap();
        assert_eq!(m["artifactType"], RECORD_ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], OCI_EMPTY);
        assert_eq!(m["config"]["digest"], OCI_EMPTY_DIGEST);
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.dsse.envelope.v1+json"
        );
        assert_eq!(m["subject"]["digest"], digest.to_string());
        assert_eq!(m["annotations"]["dev.canary.record.kind"], "outcome");
        assert_eq!(m["annotations"]["dev.canary.outcome"], "promoted");
        assert_eq!(m["annotations"]["dev.canary.run-id"], "run-42");
    }

    // The listing alone says what each record is.
    let (platform, pd) = &s.images[0];
    let listed = s
        .registry
        .referrers(platform, pd, Some(RECORD_ARTIFACT_TYPE))
        .await
        .unwrap();
    let mut kinds: Vec<&str> = listed
        .iter()
        .map(|r| r.annotations["dev.canary.record.kind"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["intent", "outcome"]);
}

#[tokio::test]
async fn records_round_trip_through_the_referrers_api() {
    round_trip(true).await;
}

#[tokio::test]
async fn records_round_trip_through_the_referrers_tag_schema() {
    round_trip(false).await;
}

#[tokio::test]
async fn unsigned_records_are_stored_and_say_so() {
    let s = setup(false).await;
    let ledger = OciLedger::new(s.registry.clone(), None, statement::verifier_id("0.1.0"));
    let (platform, pd) = &s.images[0];
    let r = record(RecordKind::Intent, &s.images);
    let id = ledger.append(platform, pd, &r).await.unwrap();
    let stored = ledger.get(platform, &id).await.unwrap();
    assert_eq!(stored.record, r);
    assert!(!stored.signed);
    let envelope = fetch_envelope(&s.registry, platform, &id).await.unwrap();
    assert!(envelope.signatures.is_empty());
    let verdict = verify_record(&s.registry, platform, &id, &s.public)
        .await
        .unwrap();
    assert_eq!(verdict.unwrap_err(), Invalid::Unsigned);
}

#[tokio::test]
async fn other_artifacts_and_other_digests_are_not_records() {
    let s = setup(true).await;
    let ledger = OciLedger::new(s.registry.clone(), None, statement::verifier_id("0.1.0"));
    let (platform, pd) = &s.images[0];
    assert!(ledger.attached(platform, pd).await.unwrap().is_empty());

    let sbom = Artifact {
        artifact_type: "application/spdx+json".into(),
        blob_media_type: "application/spdx+json".into(),
        blob: b"{}".to_vec(),
        annotations: BTreeMap::new(),
    };
    let sbom_id = s.registry.attach(platform, pd, &sbom).await.unwrap();
    let id = ledger
        .append(platform, pd, &record(RecordKind::Intent, &s.images))
        .await
        .unwrap();
    let attached = ledger.attached(platform, pd).await.unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].id, id);

    // Another image's digest has none of them.
    let (tenant, td) = &s.images[1];
    assert!(ledger.attached(tenant, td).await.unwrap().is_empty());

    // Not a record: said so; absent: not found.
    let e = ledger.get(platform, &sbom_id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("not a canary record"), "{e}");
    let e = ledger.get(platform, pd).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    let e = ledger
        .get(platform, &Digest::sha256_of(b"nothing"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
