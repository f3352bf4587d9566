//! Two `canary verify` runs for different releases, started together
//! against the same two images, each with a green canary fleet of its own:
//! the registry has no compare-and-swap, so what canary can promise is that
//! the race ends on one release for every image (the last finisher's, after
//! it re-asserts what the other moved) and that each run's report is
//! truthful about what it saw. skopeo reads the outcome.
//!
//! Some rounds go through fault proxies that slow chosen `PUT`s, so the two
//! runs' writes interleave for sure (one writes image 1 while the other is
//! between its two writes), not only when the scheduler happens to line
//! them up.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use canary_e2e::{run, start_tenants, use_fleet, Run, World, NEW, OLD, REPOS};
use canary_testkit::fake_registry::FaultKind;
use canary_testkit::fault_proxy::FaultProxy;
use canary_testkit::tenant::TenantServer;
use reqwest::Method;
use serde_json::Value;

/// The third release, racing NEW.
const THIRD: &str = "7e57ab1e0c0ffee0ddba11deadbeefcafe123456";

const ROUNDS: usize = 12;

/// How the two runs reach the registry in a round.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// Directly, as fast as they go.
    Direct,
    /// Through proxies that slow every `PUT` by 150 ms.
    SlowWrites,
    /// NEW's second `PUT` and THIRD's first are slow: THIRD writes image 0
    /// after NEW did, and NEW writes image 1 after THIRD did.
    Crossed,
    /// The other way round.
    CrossedBack,
}

const PACES: [Pace; 4] = [
    Pace::Direct,
    Pace::SlowWrites,
    Pace::Crossed,
    Pace::CrossedBack,
];

/// One run's side of a round.
struct Side {
    sha: &'static str,
    report: String,
    fleet: Vec<TenantServer>,
}

/// What one run did.
#[derive(Debug)]
struct Done {
    sha: &'static str,
    run: Run,
    report: Value,
    finished: Instant,
    /// `PUT`s it sent (through a proxy only).
    puts: Option<usize>,
}

fn arm(pace: Pace, sha: &str, proxy: &FaultProxy) {
    let slow = |ms| FaultKind::Slow(Duration::from_millis(ms));
    match (pace, sha == NEW) {
        (Pace::Direct, _) => {}
        (Pace::SlowWrites, _) => proxy.fail_from_method(&Method::PUT, 1, &slow(150)),
        (Pace::Crossed, true) | (Pace::CrossedBack, false) => {
            proxy.fail_nth_method(&Method::PUT, 2, &slow(600));
        }
        (Pace::Crossed, false) | (Pace::CrossedBack, true) => {
            proxy.fail_nth_method(&Method::PUT, 1, &slow(300));
        }
    }
}

async fn race(world: &World, pace: Pace, sides: &[Side; 2]) -> Vec<Done> {
    let mut proxies = Vec::new();
    let mut cmds: Vec<Command> = Vec::new();
    for side in sides {
        let mut cmd = if matches!(pace, Pace::Direct) {
            world.canary()
        } else {
            let proxy = FaultProxy::in_front_of(&world.registry).await;
            arm(pace, side.sha, &proxy);
            let cmd = world.canary_via(&proxy.host());
            proxies.push(proxy);
            cmd
        };
        use_fleet(&mut cmd, &side.fleet);
        cmd.args(["verify", "--sha", side.sha, "--report", &side.report]);
        let _ = std::fs::remove_file(world.dir.path().join(&side.report));
        cmds.push(cmd);
    }
    let b = cmds.pop().unwrap();
    let a = cmds.pop().unwrap();
    let timed = |cmd: Command| async move {
        let r = run(cmd).await;
        (r, Instant::now())
    };
    let ((ra, ta), (rb, tb)) = tokio::join!(timed(a), timed(b));
    let mut done = Vec::new();
    for (i, (r, t)) in [(ra, ta), (rb, tb)].into_iter().enumerate() {
        let text = std::fs::read_to_string(world.dir.path().join(&sides[i].report))
            .unwrap_or_else(|e| panic!("{} wrote no report ({e}): {r:?}", sides[i].sha));
        done.push(Done {
            sha: sides[i].sha,
            report: serde_json::from_str(&text).expect("report is JSON"),
            run: r,
            finished: t,
            puts: proxies.get(i).map(|p| {
                p.requests()
                    .iter()
                    .filter(|q| q.method == Method::PUT)
                    .count()
            }),
        });
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_promotions_end_on_one_release_and_report_what_they_saw() {
    let t0 = Instant::now();
    let world = World::start(0).await;
    world.push_release(THIRD);
    let releases: BTreeMap<&str, Vec<String>> = [OLD, NEW, THIRD]
        .into_iter()
        .map(|sha| (sha, world.staging(sha)))
        .collect();
    let sides = [
        Side {
            sha: NEW,
            report: "new.json".into(),
            fleet: start_tenants(2, NEW).await,
        },
        Side {
            sha: THIRD,
            report: "third.json".into(),
            fleet: start_tenants(2, THIRD).await,
        },
    ];
    let name = |digests: &[String]| -> String {
        let per_image: Vec<&str> = digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                releases
                    .iter()
                    .find(|(_, r)| r[i] == *d)
                    .map_or("unknown", |(sha, _)| &sha[..7])
            })
            .collect();
        if per_image[0] != "unknown" && per_image.iter().all(|s| *s == per_image[0]) {
            per_image[0].to_string()
        } else {
            format!("MIXED {}", per_image.join("+"))
        }
    };

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut finals: BTreeMap<String, usize> = BTreeMap::new();
    let mut fights = 0;
    let mut violations = Vec::new();
    for round in 0..ROUNDS {
        let pace = PACES[round % PACES.len()];
        world.set_latest(OLD);
        let done = race(&world, pace, &sides).await;
        let latest = world.latest();
        let final_release = name(&latest);
        *finals.entry(final_release.clone()).or_default() += 1;
        let last = usize::from(done[1].finished >= done[0].finished);
        let mut said = Vec::new();
        for d in &done {
            let outcome = d.report["outcome"].as_str().unwrap_or("?").to_string();
            *tally.entry(outcome.clone()).or_default() += 1;
            said.push(format!(
                "{} {outcome} (exit {}, {} PUTs)",
                &d.sha[..7],
                d.run.code,
                d.puts.map_or("?".into(), |p| p.to_string())
            ));
            if d.puts.is_some_and(|p| p > REPOS.len()) {
                fights += 1;
            }
            let mut wrong = |what: String| {
                violations.push(format!(
                    "round {round} ({pace:?}), {} said {outcome}: {what}\n{}",
                    &d.sha[..7],
                    d.run.stdout
                ));
            };
            let expected_code = match outcome.as_str() {
                "promoted" => 0,
                "failed" => 3,
                "inconsistent" => 4,
                other => {
                    wrong(format!("a green run cannot end {other}"));
                    continue;
                }
            };
            if d.run.code != expected_code {
                wrong(format!("exit {}", d.run.code));
            }
            let images = d.report["images"].as_array().cloned().unwrap_or_default();
            for (i, image) in images.iter().enumerate() {
                let staging = image["staging_digest"].as_str();
                if staging != Some(releases[d.sha][i].as_str()) {
                    wrong(format!("image {i} staging digest {staging:?}"));
                }
                if outcome == "promoted" && image["after"].as_str() != staging {
                    wrong(format!(
                        "promoted, but image {i} is reported at {:?}",
                        image["after"]
                    ));
                }
            }
        }
        println!(
            "round {round:2} {pace:?}: {}; final {final_release} (last to finish: {})",
            said.join(", "),
            &done[last].sha[..7]
        );
        if final_release.starts_with("MIXED") {
            violations.push(format!(
                "round {round} ({pace:?}): latest is mixed: {}",
                said.join(", ")
            ));
        }
        // Last finisher wins: when one run ended clearly after the other
        // (well past the few milliseconds between its final reads and its
        // exit) and says promoted, `latest` is its release.
        let gap = done[last].finished - done[1 - last].finished;
        let winner = &done[last];
        if gap > Duration::from_millis(250)
            && winner.report["outcome"].as_str() == Some("promoted")
            && final_release != winner.sha[..7]
        {
            violations.push(format!(
                "round {round} ({pace:?}): {} finished {gap:?} after the other and said \
                 promoted, but latest is {final_release}",
                &winner.sha[..7]
            ));
        }
        // The release that ended up on `latest` was promoted by its run: a
        // run that failed or gave up does not leave its release behind.
        for d in &done {
            if final_release == d.sha[..7] && d.report["outcome"].as_str() != Some("promoted") {
                violations.push(format!(
                    "round {round} ({pace:?}): latest is {final_release}, but its run said {}",
                    d.report["outcome"]
                ));
            }
        }
    }
    println!(
        "racing promotions: {ROUNDS} rounds, {} runs, outcomes {tally:?}, final releases \
         {finals:?}, runs that re-asserted: {fights}, in {:.1?}",
        2 * ROUNDS,
        t0.elapsed()
    );
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
