//! Decision latency: the adaptive rollout probe vs the original pipeline's fixed 6-minute
//! wait, simulated with the promoter's own clock (`ManualClock`), so the
//! figures are exact and the run takes milliseconds.
//!
//! Each scenario is a canary fleet whose tenants start running the release
//! at known times after the push (their auto-updaters' cycles). The probe
//! polls every 10 s with a 15 min deadline; the fixed wait sleeps 6 min and
//! then verifies whatever the tenants run. "stale" counts tenants the fixed
//! wait verified before they ran the release: evidence about the previous
//! release, which is how the original pipeline could promote a build nobody tested.
//! Times exclude the suite's own run time (the same for both, about a second
//! for the built-in suite), so they measure waiting alone.
//!
//! `cargo run --release -p canary-examples --bin decision_latency`

#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::promoter::{Policy, Rollout, VerifyOptions};
use canary_core::{
    CheckResult, Clock, Error, GitSha, ImageRef, Manifest, ManualClock, MemoryRegistry, Promoter,
    Release, RunContext, Secret, SmokeSuite, StaticFleet, Tag, TagTemplate, Tenant,
};

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// Tenants that switch to the release at a given time; checks fail on a
/// tenant that does not run it yet (it answers for the old build).
struct Fleet {
    clock: Arc<ManualClock>,
    converge_at_ms: Vec<(String, u64)>,
    stale: Mutex<usize>,
}

impl Fleet {
    fn runs_release(&self, url: &str) -> bool {
        let now = self.clock.now_ms();
        self.converge_at_ms
            .iter()
            .any(|(u, t)| u == url && now >= *t)
    }
}

#[async_trait]
impl SmokeSuite for Fleet {
    async fn run(&self, tenant: &Tenant, _: &RunContext) -> Vec<CheckResult> {
        if self.runs_release(tenant.url()) {
            vec![CheckResult::passed("suite")]
        } else {
            *self.stale.lock().expect("lock") += 1;
            vec![CheckResult::passed("suite (against the old build)")]
        }
    }

    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        Ok(if self.runs_release(tenant.url()) {
            SHA.to_string()
        } else {
            "old".to_string()
        })
    }
}

struct Decision {
    decided_after: Duration,
    stale: usize,
    outcome: String,
}

async fn simulate(converge_s: &[u64], rollout: Rollout) -> Decision {
    let clock = Arc::new(ManualClock::new(0));
    let tenants: Vec<Tenant> = (0..converge_s.len())
        .map(|i| Tenant::new(format!("https://canary-{i}.example"), Secret::new("t")))
        .collect();
    let suite = Arc::new(Fleet {
        clock: clock.clone(),
        converge_at_ms: tenants
            .iter()
            .zip(converge_s)
            .map(|(t, s)| (t.url().to_string(), s * 1000))
            .collect(),
        stale: Mutex::new(0),
    });
    let registry = MemoryRegistry::new();
    let image = ImageRef::parse("ghcr.io/acme/platform").expect("image");
    registry.push(
        &image,
        &Tag::parse(&format!("staging-{SHA}")).expect("tag"),
        Manifest::new("application/vnd.oci.image.manifest.v1+json", b"{}".to_vec()),
    );
    let promoter = Promoter::new(
        Arc::new(registry),
        Arc::new(StaticFleet::new(tenants)),
        suite.clone(),
        clock.clone(),
    )
    .with_policy(Policy {
        rollout,
        ..Policy::default()
    });
    let release = Release::new(
        GitSha::parse(SHA).expect("sha"),
        vec![image],
        TagTemplate::parse("staging-{sha}").expect("template"),
        TagTemplate::parse("latest").expect("template"),
    )
    .expect("release");
    let report = promoter.verify(&release, &VerifyOptions::default()).await;
    let stale = *suite.stale.lock().expect("lock");
    Decision {
        decided_after: Duration::from_millis(clock.now_ms()),
        stale,
        outcome: report.outcome.to_string(),
    }
}

fn fmt(d: Duration) -> String {
    let s = d.as_secs_f64();
    format!("{}m{:04.1}s", (s / 60.0).floor(), s % 60.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let scenarios: [(&str, Vec<u64>); 4] = [
        ("fleet already on the release", vec![0, 0, 0]),
        ("fast updaters (within 1 min)", vec![20, 35, 55]),
        (
            "5-min updater cycle (the original pipeline)",
            vec![40, 130, 210, 280, 295],
        ),
        ("one slow tenant (7 min)", vec![60, 120, 420]),
    ];
    let probe = Rollout::Probe {
        interval: Duration::from_secs(10),
        deadline: Duration::from_secs(15 * 60),
    };
    let fixed = Rollout::Fixed(Duration::from_secs(6 * 60));
    println!("| scenario | tenants converge at (s) | probe: decided after | probe: stale | fixed 6m: decided after | fixed 6m: stale | speed-up |");
    println!("|---|---|---|---|---|---|---|");
    for (name, converge) in &scenarios {
        let p = simulate(converge, probe).await;
        let f = simulate(converge, fixed).await;
        println!(
            "| {name} | {} | {} ({}) | {} | {} ({}) | {} | {} |",
            converge
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            fmt(p.decided_after),
            p.outcome,
            p.stale,
            fmt(f.decided_after),
            f.outcome,
            f.stale,
            if p.decided_after.is_zero() {
                "no wait".to_string()
            } else {
                format!(
                    "{:.1}×",
                    f.decided_after.as_secs_f64() / p.decided_after.as_secs_f64()
                )
            }
        );
        assert_eq!(
            p.stale, 0,
            "the probe never verifies a tenant that doesn't run the release"
        );
    }
}
