//! Release-ledger benchmark: what the records cost a two-image `promote
//! --no-verify`, side by side in one run with the ledger off, on
//! (unsigned) and on (signed with an Ed25519 key), and how long `canary
//! history` takes on a ledger of N promotions.
//!
//! ```text
//! cargo run --release -p canary-examples --bin ledger_bench              # 50 promotions, 9 rounds
//! cargo run --release -p canary-examples --bin ledger_bench -- 50 15     # promotions, rounds
//! CANARY_BIN=target/release/canary cargo run --release -p canary-examples --bin ledger_bench
//! ```
//!
//! The registry is the real CNCF distribution 2.8 (Debian `docker-registry`,
//! plain HTTP on loopback, no referrers API: records go through the
//! referrers tag schema), started by this program. Each configuration has
//! its own two repositories (a single-arch image and a two-arch index), and
//! every promotion moves `latest` to a release it never held (a build per
//! promotion, as in CI). Promotions go through the `canary` facade — the
//! call `canary promote` makes, without the process start — with a fresh
//! gate (and so a fresh registry client, `/v2/` ping included) each time.
//! Requests are counted in the registry's access log; ledger requests are
//! those touching blobs, the referrers API or tag schema, or a manifest by
//! digest (a plain promotion only reads and writes tags).
//!
//! Phase 1 promotes the three configurations in turn, `rounds` times, on a
//! fresh ledger; phase 2 fills the ledger-on repositories up to N
//! promotions, timing the last `rounds` of them against the ledger off
//! again; phase 3 promotes two releases in turn N times on repositories of
//! their own (records pile up on the same two digests, and every precheck
//! reads the records of the digest it replaces); phase 4 times `history` on
//! the N promotions of phase 2 (in-process, and the binary named by
//! `CANARY_BIN` when set). Figures are medians.
#![allow(clippy::print_stdout)] // a report is this program's output
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use canary::{Env, Gate, Overrides, Settings};
use canary_core::Outcome;
use canary_testkit::oci::{skopeo_copy_tag, Fixture};
use canary_testkit::real_registry::{AccessEntry, RealRegistry};

/// One configuration of the ledger.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ledger {
    Off,
    On,
    Signed,
    /// Ledger on (unsigned), on repositories where two releases take
    /// turns on `latest`: records pile up on the same two digests.
    Repeat,
}

impl Ledger {
    fn name(self) -> &'static str {
        match self {
            Self::Off => "ledger off",
            Self::On => "ledger on, unsigned",
            Self::Signed => "ledger on, Ed25519",
            Self::Repeat => "ledger on, two releases taking turns",
        }
    }

    fn repos(self) -> [String; 2] {
        let slug = match self {
            Self::Off => "off",
            Self::On => "on",
            Self::Signed => "signed",
            Self::Repeat => "repeat",
        };
        [
            format!("bench-{slug}/platform"),
            format!("bench-{slug}/tenant"),
        ]
    }
}

/// The sha of release `i` (40 hex).
fn sha(i: usize) -> String {
    format!("{i:08x}{}", "b".repeat(32))
}

/// One promotion, measured.
#[derive(Clone)]
struct Sample {
    breakdown: BTreeMap<String, usize>,
    wall: Duration,
    moves_ms: u64,
    requests: usize,
    ledger: usize,
    puts: usize,
}

/// What a request touched, for the breakdown.
fn kind(e: &AccessEntry) -> &'static str {
    if e.is_ping() {
        "/v2/ ping"
    } else if e.path.contains("/referrers/") {
        "referrers API"
    } else if e.path.contains("/manifests/sha256-") {
        "referrers tag (index)"
    } else if e.path.contains("/manifests/sha256:") {
        "manifest by digest (record)"
    } else if e.path.contains("/manifests/") {
        "manifest by tag"
    } else if e.path.contains("/blobs/uploads/") {
        "blob upload"
    } else if e.path.contains("/blobs/") {
        "blob"
    } else {
        "other"
    }
}

fn is_ledger(e: &AccessEntry) -> bool {
    e.path.contains("/blobs/")
        || e.path.contains("/referrers/")
        || e.path.contains("/manifests/sha256-")
        || e.path.contains("/manifests/sha256:")
}

struct World {
    reg: RealRegistry,
    signing_key: String,
}

impl World {
    fn gate(&self, ledger: Ledger) -> Gate {
        let overrides = Overrides {
            images: ledger
                .repos()
                .iter()
                .map(|r| format!("{}/{r}", self.reg.host()))
                .collect(),
            ledger: Some((ledger != Ledger::Off).to_string()),
            ..Overrides::default()
        };
        let mut vars = vec![("CANARY_ROLLOUT_INTERVAL", "100ms".to_string())];
        if ledger == Ledger::Signed {
            vars.push(("CANARY_SIGNING_KEY", self.signing_key.clone()));
        }
        let env = Env::from_pairs(vars);
        let settings = Settings::resolve(&overrides, &env, None).expect("settings");
        Gate::new(settings, env)
    }

    /// Pushes release `i` of `ledger`'s two images.
    fn push(&self, ledger: Ledger, i: usize) {
        let s = sha(i);
        let [platform, tenant] = ledger.repos();
        let salt = |repo: &str| format!("{repo}-{s}");
        Fixture::single(&salt(&platform)).build().push(
            &self.reg,
            &platform,
            &format!("staging-{s}"),
        );
        Fixture::index(&salt(&tenant))
            .build()
            .push(&self.reg, &tenant, &format!("staging-{s}"));
    }

    async fn promote(&self, ledger: Ledger, i: usize) -> Sample {
        let gate = self.gate(ledger);
        let mark = self.reg.access_mark();
        let started = Instant::now();
        let report = gate
            .promote(&sha(i), "ledger benchmark")
            .await
            .expect("valid input");
        let wall = started.elapsed();
        assert_eq!(
            report.outcome,
            Outcome::Promoted,
            "{}: {}",
            ledger.name(),
            report.reason
        );
        let ledger_report = report.ledger.clone().unwrap_or_default();
        assert!(
            ledger_report.warnings.is_empty(),
            "{:?}",
            ledger_report.warnings
        );
        if ledger != Ledger::Off {
            assert_eq!(ledger_report.intent.len(), 2, "one intent per image");
        }
        let log = self.reg.access_since(mark);
        let mut breakdown = BTreeMap::new();
        for e in &log {
            *breakdown
                .entry(format!("{} {}", e.method, kind(e)))
                .or_default() += 1;
        }
        Sample {
            breakdown,
            wall,
            moves_ms: report.timings.moves_ms.unwrap_or(0),
            requests: log.len(),
            ledger: log.iter().filter(|e| is_ledger(e)).count(),
            puts: log.iter().filter(|e| e.method == "PUT").count(),
        }
    }
}

fn median<T: Ord + Copy>(mut xs: Vec<T>) -> T {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(phase: &str, ledger: Ledger, samples: &[Sample], baseline: &[Sample]) {
    let wall = median(samples.iter().map(|s| s.wall).collect());
    let base = median(baseline.iter().map(|s| s.wall).collect());
    println!(
        "| {phase} | {} | {:.1} | {:.2}× | {} | {} | {} | {} |",
        ledger.name(),
        ms(wall),
        ms(wall) / ms(base),
        median(samples.iter().map(|s| s.moves_ms).collect()),
        median(samples.iter().map(|s| s.requests).collect()),
        median(samples.iter().map(|s| s.ledger).collect()),
        median(samples.iter().map(|s| s.puts).collect()),
    );
}

fn ed25519_key(dir: &std::path::Path) -> String {
    let path = dir.join("bench-signing.pem");
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl genpkey failed");
    std::fs::read_to_string(&path).expect("read the key")
}

/// `history` through the facade: (wall, records, requests).
async fn history_in_process(world: &World, limit: usize) -> (Duration, usize, usize) {
    let gate = world.gate(Ledger::On);
    let mark = world.reg.access_mark();
    let started = Instant::now();
    let history = gate.history(None, limit).await.expect("valid input");
    let wall = started.elapsed();
    assert!(history.error.is_none(), "{:?}", history.error);
    (
        wall,
        history.records.len(),
        world.reg.access_since(mark).len(),
    )
}

/// `$CANARY_BIN history --limit N`: (wall, records).
fn history_binary(world: &World, bin: &PathBuf, limit: usize) -> (Duration, usize) {
    let images: Vec<String> = Ledger::On
        .repos()
        .iter()
        .map(|r| format!("{}/{r}", world.reg.host()))
        .collect();
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["history", "--json", "--limit", &limit.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CANARY_IMAGES", images.join(","))
        .env("NO_COLOR", "1")
        .output()
        .expect("run CANARY_BIN");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // One `"id"` per record in the JSON listing.
    (wall, text.matches("\"id\"").count())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let promotions: usize = args
        .next()
        .map_or(50, |a| a.parse().expect("promotions: a number"));
    let rounds: usize = args
        .next()
        .map_or(9, |a| a.parse().expect("rounds: a number"));
    assert!(
        rounds >= 2 && promotions > rounds,
        "need promotions > rounds ≥ 2"
    );
    let reg = RealRegistry::open();
    let signing_key = ed25519_key(reg.dir());
    let world = World { reg, signing_key };
    let all = [Ledger::Off, Ledger::On, Ledger::Signed, Ledger::Repeat];

    // Release 0 is on `latest` everywhere, by skopeo (no record).
    let setup = Instant::now();
    for ledger in all {
        let last = match ledger {
            Ledger::On => promotions,
            Ledger::Repeat => 2,
            Ledger::Off | Ledger::Signed => rounds,
        };
        for i in 0..=last {
            world.push(ledger, i);
        }
        for repo in ledger.repos() {
            skopeo_copy_tag(&world.reg, &repo, &format!("staging-{}", sha(0)), "latest");
        }
    }
    println!(
        "setup: {} releases pushed in {:.1} s (docker-registry {}, loopback, plain HTTP)\n",
        promotions + 2 * rounds + 6,
        setup.elapsed().as_secs_f64(),
        world.reg.host()
    );

    // Phase 1: a fresh ledger, the three configurations in turn (the
    // order rotates each round, so drift hits all alike).
    let mut fresh: [Vec<Sample>; 3] = Default::default();
    for i in 1..=rounds {
        for k in 0..3 {
            let which = (i + k) % 3;
            fresh[which].push(world.promote(all[which], i).await);
        }
    }
    // Phase 2: the ledger-on repositories up to `promotions`; the last
    // `rounds` of them timed against the ledger off (cycling its releases).
    // The release on the ledger-off `latest`; the next one differs.
    let mut off_at = rounds;
    let mut late_on = Vec::new();
    let mut late_off = Vec::new();
    for i in rounds + 1..=promotions {
        let on = world.promote(Ledger::On, i).await;
        if i + rounds > promotions {
            late_on.push(on);
            off_at = off_at % rounds + 1;
            late_off.push(world.promote(Ledger::Off, off_at).await);
        }
    }
    println!("### promote --no-verify, two images (median of {rounds})\n");
    println!("| ledger state | configuration | wall (ms) | × off | moves_ms (intent + moves) | requests | ledger requests | PUTs |");
    println!("|---|---|---|---|---|---|---|---|");
    row("fresh", Ledger::Off, &fresh[0], &fresh[0]);
    row("fresh", Ledger::On, &fresh[1], &fresh[0]);
    row("fresh", Ledger::Signed, &fresh[2], &fresh[0]);
    let at = format!(
        "{}–{} promotions",
        promotions + 1 - late_on.len(),
        promotions
    );
    row(&at, Ledger::Off, &late_off, &late_off);
    row(&at, Ledger::On, &late_on, &late_off);

    // Phase 3: the same two releases promoted in turn, `promotions` times,
    // against the ledger off (cycling its releases) in the last rounds.
    let mut repeat_first = Vec::new();
    let mut repeat_last = Vec::new();
    let mut repeat_off = Vec::new();
    for i in 1..=promotions {
        let sample = world.promote(Ledger::Repeat, 1 + i % 2).await;
        if i <= rounds {
            repeat_first.push(sample);
        } else if i + rounds > promotions {
            repeat_last.push(sample);
            off_at = off_at % rounds + 1;
            repeat_off.push(world.promote(Ledger::Off, off_at).await);
        }
    }
    row(
        &format!("1–{rounds} promotions"),
        Ledger::Repeat,
        &repeat_first,
        &fresh[0],
    );
    row(&at, Ledger::Repeat, &repeat_last, &repeat_off);

    println!("\n### requests of the last fresh promotion, by kind\n");
    println!("| request | ledger off | ledger on |");
    println!("|---|---|---|");
    let (off, on) = (
        &fresh[0].last().expect("rounds").breakdown,
        &fresh[1].last().expect("rounds").breakdown,
    );
    let keys: std::collections::BTreeSet<&String> = off.keys().chain(on.keys()).collect();
    for k in keys {
        println!(
            "| {k} | {} | {} |",
            off.get(k).copied().unwrap_or(0),
            on.get(k).copied().unwrap_or(0)
        );
    }

    // Phase 4: history on `promotions` promotions.
    println!("\n### history on {promotions} promotions (median of 7)\n");
    println!("| how | --limit | wall (ms) | records | requests |");
    println!("|---|---|---|---|---|");
    for limit in [20, promotions] {
        let mut runs = Vec::new();
        for _ in 0..7 {
            runs.push(history_in_process(&world, limit).await);
        }
        let (_, records, requests) = runs[0];
        let wall = median(runs.iter().map(|r| r.0).collect());
        println!(
            "| in-process (Gate::history) | {limit} | {:.1} | {records} | {requests} |",
            ms(wall)
        );
        assert!(
            wall < Duration::from_secs(1),
            "history took {wall:?}: over the 1 s target"
        );
    }
    if let Some(bin) = std::env::var_os("CANARY_BIN").map(PathBuf::from) {
        for limit in [20, promotions] {
            let runs: Vec<(Duration, usize)> = (0..7)
                .map(|_| history_binary(&world, &bin, limit))
                .collect();
            let wall = median(runs.iter().map(|r| r.0).collect());
            println!(
                "| `canary history --json` (process) | {limit} | {:.1} | {} | – |",
                ms(wall),
                runs[0].1
            );
            assert!(
                wall < Duration::from_secs(1),
                "canary history took {wall:?}: over the 1 s target"
            );
        }
    } else {
        println!("(set CANARY_BIN=target/release/canary to time the binary too)");
    }
    println!(
        "\nrequests: every request in the registry's access log during the call; ledger \
         requests touch blobs, the referrers API or tag schema, or a manifest by digest."
    );
}
