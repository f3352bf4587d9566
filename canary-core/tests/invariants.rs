//! Property test: for random fleets, random check results and faults
#![allow(clippy::needless_range_loop)]
//! injected at random registry calls, the invariants listed in ARCHITECTURE.md hold.

use std::sync::Arc;

use canary_core::registry::{FaultTiming, Op};
use canary_core::*;
use futures::executor::block_on;
use proptest::prelude::*;

mod common;
use common::*;

/// This file's images live on `registry.example` (the shared fixtures'
/// on `ghcr.io`): this definition shadows `common::image`.
fn image(n: usize) -> ImageRef {
    ImageRef::parse(&format!("registry.example/acme/image{n}")).unwrap()
}

fn status() -> impl Strategy<Value = CheckStatus> {
    prop_oneof![
        6 => Just(CheckStatus::Passed),
        1 => Just(CheckStatus::Failed),
        1 => Just(CheckStatus::Error),
    ]
}

fn kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::Transient),
        Just(ErrorKind::Denied),
        Just(ErrorKind::Unauthorized),
        Just(ErrorKind::Integrity),
    ]
}

#[derive(Debug, Clone)]
struct FaultSpec {
    call: usize,
    kind: ErrorKind,
    after: bool,
}

fn fault() -> impl Strategy<Value = FaultSpec> {
    (1usize..20, kind(), any::<bool>()).prop_map(|(call, kind, after)| FaultSpec {
        call,
        kind,
        after,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invariants_hold(
        images in 1usize..4,
        had_latest in proptest::collection::vec(any::<bool>(), 3),
        results in proptest::collection::vec(proptest::collection::vec(status(), 1..4), 0..5),
        faults in proptest::collection::vec(fault(), 0..3),
    ) {
        let registry = MemoryRegistry::new();
        let mut staged = Vec::new();
        let mut before = Vec::new();
        for i in 0..images {
            let new = Manifest::new("application/vnd.oci.image.index.v1+json", format!("{{\"new\":{i}}}").into_bytes());
            registry.push(&image(i), &tag(&format!("staging-{SHA}")), new.clone());
            staged.push(new.digest().clone());
            if had_latest[i] {
                let old = Manifest::new("application/vnd.oci.image.manifest.v1+json", format!("{{\"old\":{i}}}").into_bytes());
                registry.push(&image(i), &tag("latest"), old.clone());
                before.push(Some(old.digest().clone()));
            } else {
                before.push(None);
            }
        }
        for f in &faults {
            let timing = if f.after { FaultTiming::After } else { FaultTiming::Before };
            registry.fail_nth_call(f.call, f.kind, timing);
        }
        let mut suite = ScriptedSuite::new();
        let mut tenants = Vec::new();
        for (t, statuses) in results.iter().enumerate() {
            let url = format!("https://t{t}.example");
            let checks = statuses
                .iter()
                .enumerate()
                .map(|(c, s)| match s {
                    CheckStatus::Passed => CheckResult::passed(format!("c{c}")),
                    CheckStatus::Failed => CheckResult::failed(format!("c{c}"), "x", "y"),
                    _ => CheckResult::error(format!("c{c}"), "timeout"),
                })
                .collect();
            suite = suite.results(&url, checks);
            tenants.push(Tenant::new(url, Secret::new("s3cr3t-token")));
        }
        let all_passed = !results.is_empty() && results.iter().flatten().all(|s| *s == CheckStatus::Passed);
        let promoter = Promoter::new(
            Arc::new(registry.clone()),
            Arc::new(StaticFleet::new(tenants)),
            Arc::new(suite),
            Arc::new(ManualClock::new(0)),
        );
        let release = Release::new(
            GitSha::parse(SHA).unwrap(),
            (0..images).map(image).collect(),
            TagTemplate::parse("staging-{sha}").unwrap(),
            TagTemplate::parse("latest").unwrap(),
        ).unwrap();
        let report = block_on(promoter.verify(&release, &VerifyOptions::default()));
        let now: Vec<Option<Digest>> = (0..images).map(|i| registry.tag_digest(&image(i), &tag("latest"))).collect();

        // 1. latest moves only when every check passed on every tenant.
        if !all_passed {
            prop_assert_eq!(registry.count(Op::Put), 0);
            prop_assert_eq!(&now, &before);
            prop_assert!(!report.outcome.moved());
        }
        match report.outcome {
            // 2. after promoted, every latest equals its staging digest.
            Outcome::Promoted => {
                prop_assert!(all_passed);
                for i in 0..images {
                    prop_assert_eq!(now[i].as_ref(), Some(&staged[i]));
                    prop_assert_eq!(report.images[i].after.as_ref(), Some(&staged[i]));
                }
            }
            // 4. never mixed unless inconsistent, and then the report is exact.
            Outcome::Inconsistent => {
                for i in 0..images {
                    let img = &report.images[i];
                    if img.error.as_deref().is_some_and(|e| e.starts_with("state unknown")) {
                        continue;
                    }
                    prop_assert_eq!(&img.after, &now[i], "image {} misreported", i);
                }
            }
            Outcome::Rejected | Outcome::Inconclusive | Outcome::Skipped | Outcome::Failed => {
                prop_assert_eq!(&now, &before, "latest changed on {:?}: {}", report.outcome, report.reason);
            }
            other => prop_assert!(false, "unexpected outcome {other:?}"),
        }
        prop_assert_eq!(report.exit_code, report.outcome.exit_code());
        // 5. no secret in the report.
        let json = serde_json::to_string(&report).unwrap();
        prop_assert!(!json.contains("s3cr3t-token"));
    }
}
