//! Retag benchmark: canary's exact retag (`GET` staging, `PUT` latest,
//! `HEAD` verify, through `OciRegistry`) against `skopeo copy --all
//! docker://… docker://…` inside the same registry, side by side in one run,
//! for a single-arch image and a two-arch OCI index.
//!
//! ```text
//! cargo run --release -p canary-examples --bin retag_bench           # 7 rounds
//! cargo run --release -p canary-examples --bin retag_bench -- 20     # 20 rounds
//! ```
//!
//! The registry is the real CNCF distribution registry on a loopback port
//! (`canary_testkit::real_registry`, plain HTTP, no auth), started by this
//! program; requests are counted in the registry's own access log, so both
//! tools are measured the same way. Every round is cold: a fresh
//! `OciRegistry` (so its `/v2/` ping is included) and a fresh skopeo process.
//! skopeo's time includes starting its process; the `skopeo --version` row
//! shows that share. Figures are medians over the rounds.
#![allow(clippy::print_stdout)] // a report is this program's output
#![allow(clippy::cast_precision_loss)]

use std::process::Command;
use std::time::{Duration, Instant};

use canary_core::{ImageRef, Reference, Registry, Tag};
use canary_registry::{OciRegistry, RegistryOptions, RetryPolicy};
use canary_testkit::oci::{digest_of, skopeo_copy_tag, Fixture};
use canary_testkit::real_registry::{AccessEntry, RealRegistry};

struct Round {
    wall: Duration,
    requests: usize,
    auth: usize,
    manifests: usize,
    blobs: usize,
}

fn classify(log: &[AccessEntry]) -> (usize, usize, usize, usize) {
    let auth = log.iter().filter(|e| e.is_ping()).count();
    let manifests = log.iter().filter(|e| e.is_manifest()).count();
    let blobs = log.iter().filter(|e| e.path.contains("/blobs/")).count();
    (log.len(), auth, manifests, blobs)
}

async fn ours(reg: &RealRegistry, repo: &str, to: &str) -> Round {
    let image = ImageRef::parse(&format!("{}/{repo}", reg.host())).expect("image");
    let mark = reg.access_mark();
    let started = Instant::now();
    let client = OciRegistry::new(RegistryOptions {
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .expect("options");
    client.check_image(&image).expect("check_image");
    let staging = client
        .get_manifest(
            &image,
            &Reference::Tag(Tag::parse("staging-1").expect("tag")),
        )
        .await
        .expect("GET staging");
    let to = Tag::parse(to).expect("tag");
    client
        .put_manifest(&image, &to, &staging)
        .await
        .expect("PUT latest");
    let head = client
        .head_manifest(&image, &Reference::Tag(to))
        .await
        .expect("HEAD latest");
    let wall = started.elapsed();
    assert_eq!(head.as_ref(), Some(staging.digest()), "verify");
    let (requests, auth, manifests, blobs) = classify(&reg.access_since(mark));
    Round {
        wall,
        requests,
        auth,
        manifests,
        blobs,
    }
}

fn skopeo(reg: &RealRegistry, repo: &str, to: &str) -> Round {
    let mark = reg.access_mark();
    let started = Instant::now();
    skopeo_copy_tag(reg, repo, "staging-1", to);
    let wall = started.elapsed();
    let (requests, auth, manifests, blobs) = classify(&reg.access_since(mark));
    Round {
        wall,
        requests,
        auth,
        manifests,
        blobs,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, tool: &str, rounds: &[Round]) {
    let wall = median(rounds.iter().map(|r| r.wall).collect());
    let last = rounds.last().expect("rounds");
    println!(
        "| {name:<17} | {tool:<21} | {:>9} | {:>8} | {:>4} | {:>9} | {:>5} |",
        ms(wall),
        last.requests,
        last.auth,
        last.manifests,
        last.blobs
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(7, |a| a.parse().expect("rounds: a number"));
    let reg = RealRegistry::open();
    let fixtures = [
        (
            "single-arch image",
            "bench/single",
            Fixture::single("bench-single"),
        ),
        (
            "two-arch index",
            "bench/index",
            Fixture::index("bench-index"),
        ),
    ];
    let layouts: Vec<_> = fixtures
        .iter()
        .map(|(_, repo, f)| {
            let layout = f.build();
            layout.push(&reg, repo, "staging-1");
            layout
        })
        .collect();

    let mut baseline = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let out = Command::new("skopeo")
            .arg("--version")
            .output()
            .expect("skopeo");
        assert!(out.status.success());
        baseline.push(started.elapsed());
    }

    println!(
        "retag inside one registry (docker-registry {}, loopback, plain HTTP), median of {rounds} cold rounds\n",
        reg.host()
    );
    println!("| image             | tool                  | wall (ms) | requests | auth | manifests | blobs |");
    println!("|-------------------|-----------------------|-----------|----------|------|-----------|-------|");
    for ((name, repo, _), layout) in fixtures.iter().zip(&layouts) {
        let mut canary = Vec::new();
        let mut copy = Vec::new();
        // Interleaved, so drift (caches, the other load on the machine)
        // hits both tools alike.
        for i in 0..rounds {
            canary.push(ours(&reg, repo, &format!("canary-{i}")).await);
            copy.push(skopeo(&reg, repo, &format!("skopeo-{i}")));
        }
        // Both produced the staging digest.
        let want = &layout.top().digest;
        assert_eq!(&digest_of(&reg, repo, "canary-0"), want);
        assert_eq!(&digest_of(&reg, repo, "skopeo-0"), want);
        row(name, "canary (GET+PUT+HEAD)", &canary);
        row(name, "skopeo copy --all", &copy);
    }
    println!(
        "| (process start)   | skopeo --version      | {:>9} |        0 |    0 |         0 |     0 |",
        ms(median(baseline))
    );
    println!(
        "\nrequests: every request in the registry's access log during the operation \
         (auth = GET /v2/ pings; canary's HTTPS attempt on loopback never reaches the log).\n\
         Both tools left the same digest as staging-1 (checked with skopeo inspect --raw)."
    );
}
