//! The fleet check's and the enrolment's renderings: every tenant and its
//! verdict in the table, the JSON reads back, untrusted text stays inert in
//! Markdown, outputs leave the details out.

use canary_core::fleet::check::{
    FleetCheckReport, FleetOutcome, Health, TenantCheck, FLEET_CHECK_SCHEMA,
};
use canary_core::fleet::enroll::{EnrollReport, EnrollResult, FleetLists, OrgSlug};
use canary_core::GitSha;
use canary_report::fleet;

fn tenant(position: usize, health: Health, detail: &str) -> TenantCheck {
    TenantCheck {
        position,
        url: format!("https://t{position}.example"),
        health,
        version: (health == Health::Healthy).then(|| "4c1d56e".to_string()),
        response_ms: Some(12),
        status_with_token: Some(if health == Health::Healthy { 200 } else { 401 }),
        status_without_token: Some(401),
        token_belongs_to: (health == Health::Misaligned).then_some(3),
        detail: detail.to_string(),
    }
}

fn report() -> FleetCheckReport {
    FleetCheckReport {
        schema: FLEET_CHECK_SCHEMA,
        outcome: FleetOutcome::Unhealthy,
        exit_code: 1,
        reason: "1 of 2 tenants unhealthy: …".to_string(),
        urls_from: "MOLECULE_STAGING_TENANT_URLS".to_string(),
        tokens_from: "MOLECULE_STAGING_ADMIN_TOKENS".to_string(),
        expected_version: Some(GitSha::parse("4c1d56e").unwrap()),
        tenants: vec![
            tenant(1, Health::Healthy, ""),
            tenant(
                2,
                Health::Misaligned,
                "the token in position 2 belongs to tenant 3 (https://t3.example) | <b>",
            ),
        ],
        notes: vec!["a note".to_string()],
    }
}

#[test]
fn the_table_names_every_tenant_and_what_is_wrong() {
    let text = fleet::check_text(&report());
    assert!(
        text.starts_with("canary fleet check: 2 tenants (URLs from MOLECULE_STAGING_TENANT_URLS, tokens from MOLECULE_STAGING_ADMIN_TOKENS), expected version 4c1d56e\n"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("https://t2.example"))
        .unwrap();
    assert!(row.contains("misaligned") && row.contains("12 ms"), "{row}");
    assert!(
        text.contains("\n       the token in position 2 belongs to tenant 3"),
        "{text}"
    );
    assert!(text.contains("note: a note\n"), "{text}");
    assert!(
        text.ends_with("outcome: unhealthy (exit 1): 1 of 2 tenants unhealthy\n"),
        "{text}"
    );
}

#[test]
fn the_json_reads_back() {
    let r = report();
    let json = fleet::check_json(&r);
    let back: FleetCheckReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["tenants"][1]["health"], "misaligned");
    assert_eq!(v["tenants"][1]["token_belongs_to"], 3);
    assert_eq!(v["outcome"], "unhealthy");
}

#[test]
fn markdown_and_outputs_keep_tenant_text_inert() {
    let md = fleet::check_markdown(&report());
    assert!(md.starts_with("## canary fleet check: UNHEALTHY\n"), "{md}");
    assert!(md.contains("\\| &lt;b&gt;"), "{md}");
    let outputs = fleet::check_outputs(&report());
    assert_eq!(outputs[0], ("outcome".into(), "unhealthy".into()));
    assert_eq!(
        outputs[3].1,
        r#"[{"health":"misaligned","position":2,"tenant":"https://t2.example"}]"#
    );
    let annotations = fleet::check_annotations(&report());
    assert_eq!(
        annotations.len(),
        2,
        "one per unhealthy tenant, one per note"
    );
}

#[test]
fn an_enrolment_lists_its_next_steps() {
    let lists = FleetLists {
        urls: "MOLECULE_STAGING_TENANT_URLS".into(),
        tokens: "MOLECULE_STAGING_ADMIN_TOKENS".into(),
        tenants: Some(0),
    };
    let r = EnrollReport::new(
        OrgSlug::parse("acme").unwrap(),
        "https://cp.example",
        EnrollResult::AlreadyProvisioned,
        "status 409: org already provisioned",
        "CP_SECRET",
        &lists,
    );
    let text = fleet::enroll_text(&r);
    assert!(
        text.starts_with("canary fleet enroll acme: already_provisioned (exit 1)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  1. re-provision the org, or delete and recreate it"),
        "{text}"
    );
    assert!(text.contains("(entry 1 of each)"), "{text}");
    let back: EnrollReport = serde_json::from_str(&fleet::enroll_json(&r)).unwrap();
    assert_eq!(back, r);
    assert_eq!(fleet::enroll_annotations(&r).len(), 1);
    assert!(fleet::enroll_markdown(&r).contains("ALREADY_PROVISIONED"));
}
