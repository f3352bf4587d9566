//! `canary status` in Actions mode: its outputs, annotations and summary.

use canary_core::status::{ImageState, StatusReport, TenantState};
use canary_core::{Digest, GitSha, ImageRef, Tag};
use canary_report::status::{annotations, markdown, outcome, outputs};

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn image(repo: &str, digest: Option<&str>, staging: &[&str], error: Option<&str>) -> ImageState {
    ImageState {
        image: ImageRef::parse(&format!("ghcr.io/acme/{repo}")).unwrap(),
        promoted_tag: Tag::parse("latest").unwrap(),
        digest: digest.map(|d| Digest::parse(d).unwrap()),
        staging_tags: staging.iter().map(|t| Tag::parse(t).unwrap()).collect(),
        scanned: 10,
        truncated: false,
        error: error.map(str::to_string),
        record: None,
        explained: false,
    }
}

fn report(images: Vec<ImageState>, mixed: bool, release: Option<&str>) -> StatusReport {
    StatusReport {
        images,
        tenants: vec![TenantState {
            url: "https://canary-1.example.com".into(),
            version: Some(SHA.into()),
            error: None,
        }],
        interrupted: None,
        mixed,
        release: release.map(|s| GitSha::parse(s).unwrap()),
    }
}

fn output<'a>(all: &'a [(String, String)], name: &str) -> &'a str {
    &all.iter().find(|(k, _)| k == name).unwrap().1
}

#[test]
fn a_consistent_release_names_its_sha_and_digests() {
    let tag = format!("staging-{SHA}");
    let r = report(
        vec![
            image("tenant", Some(B), &[&tag], None),
            image("platform", Some(A), &[&tag], None),
        ],
        false,
        Some(SHA),
    );
    let out = outputs(&r);
    assert_eq!(output(&out, "outcome"), "consistent");
    assert_eq!(output(&out, "exit-code"), "0");
    assert_eq!(output(&out, "sha"), SHA);
    assert_eq!(
        output(&out, "latest-digests"),
        format!(r#"{{"ghcr.io/acme/platform":"{A}","ghcr.io/acme/tenant":"{B}"}}"#)
    );
    assert!(annotations(&r).is_empty());
    let md = markdown(&r);
    assert!(md.contains("## canary status: CONSISTENT"), "{md}");
    assert!(md.contains(&format!("`{tag}`")), "{md}");
    assert!(md.contains("https://canary-1.example.com"), "{md}");
}

#[test]
fn a_mixed_release_exits_4_and_is_annotated() {
    let r = report(
        vec![
            image("platform", Some(A), &["staging-1111111"], None),
            image("tenant", Some(B), &["staging-2222222"], None),
        ],
        true,
        None,
    );
    let out = outputs(&r);
    assert_eq!(outcome(&r), "mixed");
    assert_eq!(output(&out, "exit-code"), "4");
    assert_eq!(output(&out, "sha"), "");
    let notes = annotations(&r);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(markdown(&r).contains("MIXED"));
}

#[test]
fn an_unreadable_image_exits_3_with_null_digest_and_its_error() {
    let r = report(
        vec![image("platform", None, &[], Some("connection refused"))],
        false,
        None,
    );
    let out = outputs(&r);
    assert_eq!(outcome(&r), "unreadable");
    assert_eq!(output(&out, "exit-code"), "3");
    assert_eq!(
        output(&out, "latest-digests"),
        r#"{"ghcr.io/acme/platform":null}"#
    );
    let notes = annotations(&r);
    assert_eq!(notes.len(), 1);
    assert!(markdown(&r).contains("connection refused"));
}
