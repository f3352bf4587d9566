//! A tenant that refuses canary's token (401/403 on the rollout probe) is a
//! configuration error, not a rollout in progress: the wait ends at once
//! and says so. (It used to wait the whole rollout deadline, 15 minutes by
//! default, then report `inconclusive` with no word about the token.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::promoter::Rollout;
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

struct WrongToken;

#[async_trait]
impl SmokeSuite for WrongToken {
    async fn run(&self, _: &Tenant, _: &RunContext) -> Vec<CheckResult> {
        vec![CheckResult::passed("liveness")]
    }

    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        if tenant.url().contains("canary-1") {
            Err(Error::new(
                ErrorKind::Unauthorized,
                format!("probe {}/admin/liveness: status 401", tenant.url()),
            ))
        } else {
            Ok(SHA.to_string())
        }
    }
}

#[test]
fn a_refused_token_ends_the_rollout_wait_at_once() {
    let registry = MemoryRegistry::new();
    let image = ImageRef::parse("ghcr.io/acme/app").unwrap();
    let m = Manifest::new("application/vnd.oci.image.manifest.v1+json", b"{}".to_vec());
    registry.push(&image, &Tag::parse(&format!("staging-{SHA}")).unwrap(), m);
    let fleet = StaticFleet::new(
        (0..3)
            .map(|i| Tenant::new(format!("https://canary-{i}.example"), Secret::new("t0k")))
            .collect(),
    );
    let clock = Arc::new(ManualClock::new(0));
    let p = Promoter::new(
        Arc::new(registry),
        Arc::new(fleet),
        Arc::new(WrongToken),
        clock.clone(),
    )
    .with_policy(Policy {
        rollout: Rollout::Probe {
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(900),
        },
        ..Policy::default()
    });
    let release = Release::new(
        GitSha::parse(SHA).unwrap(),
        vec![image],
        TagTemplate::parse("staging-{sha}").unwrap(),
        TagTemplate::parse("latest").unwrap(),
    )
    .unwrap();
    let report = block_on(p.verify(&release, &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        clock.sleeps().is_empty(),
        "waited {:?} for a token that will never work",
        clock.sleeps()
    );
    assert!(
        report
            .reason
            .contains("https://canary-1.example refused canary's token"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("not a rollout in progress"),
        "{}",
        report.reason
    );
}
