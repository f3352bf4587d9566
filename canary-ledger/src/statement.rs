//! The in-toto Statement a record is written as.
//!
//! One shape for both kinds of record: an in-toto Statement v1 whose
//! subjects are every image of the release with its target digest, and
//! whose predicate is a SLSA Verification Summary (VSA v1). canary's own
//! fields (before/after digests, outcome, checks, the hash chain…) ride in
//! the VSA's extension field `canary` rather than in a second predicate:
//! one statement per record keeps one signature per record, and tools that
//! know VSAs read the summary without knowing canary.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use canary_core::ledger::Record;
use canary_core::Digest;
use serde::{Deserialize, Serialize};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a SLSA Verification Summary v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The level a verified record claims in `verifiedLevels`.
pub const CANARY_LEVEL: &str = "CANARY_SMOKE_PASSED";
/// `verificationResult` of a verified record.
pub const PASSED: &str = "PASSED";
/// `verificationResult` of every other record.
pub const FAILED: &str = "FAILED";

/// The `verifier.id` of this build of canary at `version`
/// (`https://canary.dev/canary@0.1.0`).
pub fn verifier_id(version: &str) -> String {
    format!("https://canary.dev/canary@{version}")
}

/// An in-toto Statement v1 carrying a VSA with canary's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// Every image of the release with its target digest.
    pub subject: Vec<Subject>,
    /// [`VSA_PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The summary, with the record.
    pub predicate: Vsa,
}

/// One subject: an image and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The image reference (`ghcr.io/acme/platform`).
    pub name: String,
    /// Algorithm name to lowercase hex (`{"sha256": "…"}`).
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// The subject for `image`'s `digest`.
    pub fn new(name: impl Into<String>, digest: &Digest) -> Self {
        Self {
            name: name.into(),
            digest: digest_set(digest),
        }
    }
}

/// A SLSA Verification Summary v1 predicate, plus canary's record in the
/// extension field `canary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vsa {
    /// Who verified.
    pub verifier: Verifier,
    /// When the record was made (RFC 3339, UTC).
    pub time_verified: String,
    /// `<first image>:<promoted tag>`: what the verdict is about.
    pub resource_uri: String,
    /// The suite that was run, when the record has checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Always empty: canary's evidence is its own checks.
    #[serde(default)]
    pub input_attestations: Vec<serde_json::Value>,
    /// [`PASSED`] for a verified record, else [`FAILED`].
    pub verification_result: String,
    /// `[CANARY_SMOKE_PASSED]` for a verified record, else empty.
    #[serde(default)]
    pub verified_levels: Vec<String>,
    /// canary's record, whole.
    pub canary: Record,
}

/// `verifier` of a VSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    /// [`verifier_id`].
    pub id: String,
}

/// `policy` of a VSA: the suite and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `canary-suite:<suite name>`.
    pub uri: String,
    /// The suite's digest, when known.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// The statement for `record`, as verified by `verifier_id` (see
    /// [`verifier_id`]).
    pub fn new(record: &Record, verifier_id: &str) -> Self {
        let verified = record.verified;
        let resource_uri = record
            .images
            .first()
            .map(|i| format!("{}:{}", i.image, record.promoted_tag))
            .unwrap_or_default();
        let policy = record.checks.as_ref().map(|c| Policy {
            uri: format!("canary-suite:{}", c.suite),
            digest: c.suite_digest.as_ref().map(digest_set).unwrap_or_default(),
        });
        Self {
            type_: STATEMENT_TYPE.to_string(),
            subject: record
                .images
                .iter()
                .map(|i| Subject::new(i.image.to_string(), &i.target))
                .collect(),
            predicate_type: VSA_PREDICATE_TYPE.to_string(),
            predicate: Vsa {
                verifier: Verifier {
                    id: verifier_id.to_string(),
                },
                time_verified: rfc3339_millis(record.time_ms),
                resource_uri,
                policy,
                input_attestations: Vec::new(),
                verification_result: if verified { PASSED } else { FAILED }.to_string(),
                verified_levels: if verified {
                    vec![CANARY_LEVEL.to_string()]
                } else {
                    Vec::new()
                },
                canary: record.clone(),
            },
        }
    }

    /// The statement's JSON: the bytes a DSSE envelope carries.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement always serializes")
    }

    /// The record it carries.
    pub fn record(&self) -> &Record {
        &self.predicate.canary
    }
}

fn digest_set(digest: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([(
        digest.algorithm().name().to_string(),
        digest.hex().to_string(),
    )])
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339_millis(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `ms` since the Unix epoch as RFC 3339 UTC in whole seconds.
pub(crate) fn rfc3339_seconds(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use canary_core::ledger::{Before, CheckSummary, RecordImage, RecordKind, RECORD_SCHEMA};
    use canary_core::{Command, GitSha, ImageRef};

    use super::*;

    fn record(verified: bool) -> Record {
        let d = |s: &str| Digest::sha256_of(s.as_bytes());
        Record {
            schema: RECORD_SCHEMA,
            kind: RecordKind::Intent,
            run_id: "run-1".into(),
            command: Command::Verify,
            sha: GitSha::parse("4c1d56e").unwrap(),
            promoted_tag: "latest".into(),
            time_ms: 1_700_000_000_123,
            images: vec![
                RecordImage {
                    image: ImageRef::parse("ghcr.io/acme/platform").unwrap(),
                    before: Before::At(d("p-old")),
                    target: d("p-new"),
                    after: None,
                    overwritten: None,
                },
                RecordImage {
                    image: ImageRef::parse("ghcr.io/acme/tenant").unwrap(),
                    before: Before::Absent,
                    target: d("t-new"),
                    after: None,
                    overwritten: None,
                },
            ],
            outcome: None,
            reason: String::new(),
            manual_reason: None,
            verified,
            checks: Some(CheckSummary {
                suite: "default".into(),
                suite_digest: Some(d("suite")),
                tenants: 3,
                passed: 12,
                failed: 0,
            }),
            actor: None,
            run_url: None,
            previous: None,
            analysis: None,
        }
    }

    #[test]
    fn a_verified_record_is_a_passed_vsa_over_every_image() {
        let r = record(true);
        let s = Statement::new(&r, &verifier_id("0.1.0"));
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], VSA_PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["name"], "ghcr.io/acme/platform");
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            r.images[0].target.hex()
        );
        assert_eq!(v["subject"][1]["name"], "ghcr.io/acme/tenant");
        assert_eq!(
            v["subject"][1]["digest"]["sha256"],
            r.images[1].target.hex()
        );
        let p = &v["predicate"];
        assert_eq!(p["verifier"]["id"], "https://canary.dev/canary@0.1.0");
        assert_eq!(p["timeVerified"], "2023-11-14T22:13:20.123Z");
        assert_eq!(p["resourceUri"], "ghcr.io/acme/platform:latest");
        assert_eq!(p["policy"]["uri"], "canary-suite:default");
        assert_eq!(
            p["policy"]["digest"]["sha256"],
            Digest::sha256_of(b"suite").hex()
        );
        assert_eq!(p["inputAttestations"], serde_json::json!([]));
        assert_eq!(p["verificationResult"], "PASSED");
        assert_eq!(
            p["verifiedLevels"],
            serde_json::json!(["CANARY_SMOKE_PASSED"])
        );
        assert_eq!(p["canary"], serde_json::to_value(&r).unwrap());
        let back: Statement = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.record(), &r);
    }

    #[test]
    fn an_unverified_record_without_checks_fails_and_names_no_policy() {
        let mut r = record(false);
        r.checks = None;
        let v: serde_json::Value =
            serde_json::from_slice(&Statement::new(&r, "x").to_json()).unwrap();
        assert_eq!(v["predicate"]["verificationResult"], "FAILED");
        assert_eq!(v["predicate"]["verifiedLevels"], serde_json::json!([]));
        assert!(v["predicate"].get("policy").is_none());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_seconds(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
