//! Fault injection at every step: the real `canary` binary against the real
//! distribution registry through a [`FaultProxy`], with one fault (or a
//! burst that exhausts the retries, or a registry that stops answering, or
//! one method that stops working) at every request of a clean run, for
//! `verify` and for `rollback`. skopeo reads the registry directly
//! afterwards and judges what canary did and what it said.
//!
//! The promise under test, for every scenario:
//!
//! - exit 0: every image's `latest` is at the new release, the report says so;
//! - exit 1 or 3: every image's `latest` is where it was before the run;
//! - exit 4 (`inconsistent`): the report's per-image `after` digest is what
//!   skopeo reads, or, only when the registry stopped answering canary
//!   altogether, the report says the state is unknown; and the state is
//!   not simply unchanged (that is `failed`, exit 3);
//! - nothing else (no other exit code, no mixed state under another code);
//! - the report's `before` digests are where `latest` was.
//!
//! One exception: after a HEAD answered with a wrong `Docker-Content-Digest`
//! canary can only repeat the registry's claim (a HEAD has no body to
//! check), so then only `latest` and the exit code are judged.
//!
//! Scenarios run on a few "lanes" at once (each its own pair of
//! repositories in one registry, its own working directory), so that the
//! faults that cost time (slow answers, retried resets) overlap.
//! `FAULTS_FILTER=<text>` runs only the scenarios whose description
//! contains the text and prints canary's output for each (a repro).
//!
//! A second test kills a canary tenant at every point of the suite.

#![allow(clippy::print_stdout)]

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canary_e2e::{images_on, release_layouts, run, start_tenants, use_fleet, Run, NEW, OLD};
use canary_testkit::fake_registry::FaultKind;
use canary_testkit::fault_proxy::FaultProxy;
use canary_testkit::oci::{self, Blob};
use canary_testkit::real_registry::RealRegistry;
use canary_testkit::tenant::{TenantFault, TenantServer};
use reqwest::Method;
use serde_json::Value;

/// Scenarios running at once.
const LANES: usize = 6;
/// canary-registry's default attempts per request (the first included): a
/// burst this long makes one request fail for good.
const ATTEMPTS: usize = 4;
/// The slow fault's delay.
const SLOW: Duration = Duration::from_secs(2);

/// The two repositories of lane `i`.
fn lane_repos(i: usize) -> [String; 2] {
    [format!("lane{i}/platform"), format!("lane{i}/tenant")]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// `canary verify --sha NEW`, from `latest` = OLD.
    Verify,
    /// `canary rollback <OLD short>`, from `latest` = NEW.
    Rollback,
}

impl Op {
    fn start_sha(self) -> &'static str {
        match self {
            Op::Verify => OLD,
            Op::Rollback => NEW,
        }
    }

    fn target_sha(self) -> &'static str {
        match self {
            Op::Verify => NEW,
            Op::Rollback => OLD,
        }
    }

    fn args(self) -> Vec<String> {
        let mut args: Vec<String> = match self {
            Op::Verify => vec!["verify".into(), "--sha".into(), NEW.into()],
            Op::Rollback => vec!["rollback".into(), OLD[..7].into()],
        };
        args.extend(["--report".into(), "r.json".into()]);
        args
    }

    fn success(self) -> &'static str {
        match self {
            Op::Verify => "promoted",
            Op::Rollback => "rolled_back",
        }
    }
}

#[derive(Clone, Debug)]
enum Scenario {
    /// No fault: learns the request sequence.
    Clean,
    /// The nth request fails once.
    Nth(usize, FaultKind),
    /// `ATTEMPTS` requests from the nth fail: one request fails for good.
    Burst(usize, FaultKind),
    /// Every request from the nth fails: the registry goes down.
    From(usize, FaultKind),
    /// Every request of a method from its nth fails (e.g. writes break).
    FromMethod(Method, usize, FaultKind),
    /// Two scenarios at once.
    Both(Box<Scenario>, Box<Scenario>),
}

impl Scenario {
    fn arm(&self, proxy: &FaultProxy) {
        match self {
            Scenario::Clean => {}
            Scenario::Nth(n, kind) => proxy.fail_nth(*n, kind),
            Scenario::Burst(n, kind) => proxy.fail_range(*n, ATTEMPTS, kind),
            Scenario::From(n, kind) => proxy.fail_from(*n, kind),
            Scenario::FromMethod(method, n, kind) => proxy.fail_from_method(method, *n, kind),
            Scenario::Both(a, b) => {
                a.arm(proxy);
                b.arm(proxy);
            }
        }
    }

    /// Whether canary may have lost the registry entirely by the end: then
    /// it cannot know where `latest` is, and may say so.
    fn registry_gone(&self) -> bool {
        match self {
            Scenario::From(..) => true,
            Scenario::FromMethod(m, ..) => *m == Method::HEAD,
            Scenario::Both(a, b) => a.registry_gone() || b.registry_gone(),
            _ => false,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::Clean => write!(f, "clean"),
            Scenario::Nth(n, k) => write!(f, "request #{n} fails once with {k:?}"),
            Scenario::Burst(n, k) => {
                write!(f, "requests #{n}..#{} fail with {k:?}", n + ATTEMPTS - 1)
            }
            Scenario::From(n, k) => write!(f, "every request from #{n} fails with {k:?}"),
            Scenario::FromMethod(m, n, k) => {
                write!(f, "every {m} from the {n}th {m} fails with {k:?}")
            }
            Scenario::Both(a, b) => write!(f, "{a}, and {b}"),
        }
    }
}

/// How a scenario ended, when canary kept its promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Class {
    /// Exit 0, every image at the target.
    Moved,
    /// Exit 1 or 3, every image where it was.
    Unchanged,
    /// Exit 4, the report says where every image is.
    InconsistentTruthful,
    /// Exit 4, the registry was gone and the report says so.
    InconsistentUnknown,
}

/// What the lanes share.
struct Setup {
    registry: RealRegistry,
    tenants: Vec<TenantServer>,
    /// The top manifests of OLD and NEW, per image.
    old: Vec<Blob>,
    new: Vec<Blob>,
    http: reqwest::Client,
}

impl Setup {
    /// A registry with OLD and NEW staged on `lanes` lanes (`latest` not
    /// set), and two healthy tenants running NEW.
    async fn start(lanes: usize) -> Self {
        let registry = RealRegistry::open();
        let generic = ["acme/platform", "acme/tenant"];
        let old = release_layouts(&generic, OLD);
        let new = release_layouts(&generic, NEW);
        for lane in 0..lanes {
            for (i, repo) in lane_repos(lane).iter().enumerate() {
                old[i].push(&registry, repo, &format!("staging-{OLD}"));
                new[i].push(&registry, repo, &format!("staging-{NEW}"));
            }
        }
        let setup = Self {
            tenants: start_tenants(2, NEW).await,
            old: old.iter().map(|l| l.top().clone()).collect(),
            new: new.iter().map(|l| l.top().clone()).collect(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            registry,
        };
        // skopeo agrees with the layouts about what the registry holds.
        let repos = lane_repos(0);
        assert_eq!(
            oci::digest_of(&setup.registry, &repos[1], &format!("staging-{NEW}")),
            setup.new[1].digest
        );
        setup
    }

    fn blobs(&self, sha: &str) -> &[Blob] {
        if sha == OLD {
            &self.old
        } else {
            &self.new
        }
    }

    fn digests(&self, sha: &str) -> Vec<String> {
        self.blobs(sha).iter().map(|b| b.digest.clone()).collect()
    }

    /// Puts `latest` of `repos` on release `sha`, directly (not through any
    /// proxy and not with canary): a PUT of the exact bytes.
    async fn set_latest(&self, repos: &[String; 2], sha: &str) {
        for (repo, blob) in repos.iter().zip(self.blobs(sha)) {
            let r = self
                .http
                .put(format!(
                    "{}/v2/{repo}/manifests/latest",
                    self.registry.base_url()
                ))
                .header("content-type", &blob.media_type)
                .body(blob.bytes.clone())
                .send()
                .await
                .expect("PUT to the registry");
            assert_eq!(r.status(), 201, "reset {repo}:latest");
            assert_eq!(r.headers()["docker-content-digest"], blob.digest.as_str());
        }
    }

    /// Every image's `latest`, read by skopeo directly from the registry.
    async fn latest(self: &Arc<Self>, repos: &[String; 2]) -> Vec<String> {
        let setup = self.clone();
        let repos = repos.clone();
        tokio::task::spawn_blocking(move || {
            repos
                .iter()
                .map(|r| oci::digest_of(&setup.registry, r, "latest"))
                .collect()
        })
        .await
        .expect("skopeo")
    }
}

/// One lane: its repositories, its working directory, and what skopeo last
/// read of its `latest` tags.
struct Lane {
    repos: [String; 2],
    dir: tempfile::TempDir,
    known: Option<Vec<String>>,
}

/// The result of one scenario.
struct Ran {
    scenario: Scenario,
    op: Op,
    verdict: Result<Class, String>,
    /// The run's stdout.
    stdout: String,
    /// Requests the proxy saw, and faults that struck.
    requests: Vec<(Method, String)>,
    struck: usize,
    /// A HEAD was answered with a wrong digest.
    lied: bool,
}

async fn run_scenario(setup: &Arc<Setup>, lane: &mut Lane, op: Op, scenario: Scenario) -> Ran {
    let start = setup.digests(op.start_sha());
    let target = setup.digests(op.target_sha());
    if lane.known.as_ref() != Some(&start) {
        setup.set_latest(&lane.repos, op.start_sha()).await;
        lane.known = Some(start.clone());
    }
    let proxy = FaultProxy::in_front_of(&setup.registry).await;
    scenario.arm(&proxy);
    let report_path = lane.dir.path().join("r.json");
    let _ = std::fs::remove_file(&report_path);
    let mut cmd = std::process::Command::new(canary_e2e::canary_bin());
    cmd.current_dir(lane.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", lane.dir.path())
        .env("NO_COLOR", "1")
        .env("CANARY_IMAGES", images_on(&proxy.host(), &lane.repos))
        // The moves' matrix: every fault lands on a request of the moves, as
        // it always did. Faults on the ledger's own requests, and kills at
        // every request with the ledger on, are `ledger_kill.rs`'s matrix.
        .env("CANARY_LEDGER", "false")
        .env("CANARY_ROLLOUT_INTERVAL", "100ms")
        .env("CANARY_ROLLOUT_DEADLINE", "10s")
        .args(op.args());
    use_fleet(&mut cmd, &setup.tenants);
    let r = run(cmd).await;
    let requests = proxy
        .requests()
        .into_iter()
        .map(|q| (q.method, q.path))
        .collect();
    let struck = proxy.struck();
    // canary reads digests with HEAD and cannot check them (there is no
    // body): after a HEAD answered with a wrong `Docker-Content-Digest`, its
    // report can only repeat the registry's claim. Then what is judged is
    // where `latest` ends up and the exit code, not the report's digests.
    let lied = proxy
        .requests()
        .iter()
        .any(|q| q.method == Method::HEAD && q.fault == Some(FaultKind::WrongDigestHeader));
    drop(proxy);
    let latest = setup.latest(&lane.repos).await;
    lane.known = Some(latest.clone());
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let verdict = judge(
        op,
        &scenario,
        lied,
        &start,
        &target,
        &latest,
        &r,
        report.as_ref(),
    );
    Ran {
        scenario,
        op,
        verdict,
        stdout: r.stdout,
        requests,
        struck,
        lied,
    }
}

/// Whether canary kept its promise; the error says how it did not.
#[allow(clippy::too_many_arguments)]
fn judge(
    op: Op,
    scenario: &Scenario,
    lied: bool,
    start: &[String],
    target: &[String],
    latest: &[String],
    r: &Run,
    report: Option<&Value>,
) -> Result<Class, String> {
    let Some(report) = report else {
        return Err(format!("exit {}, no report written", r.code));
    };
    let outcome = report["outcome"].as_str().unwrap_or("?");
    let images = report["images"].as_array().cloned().unwrap_or_default();
    if images.len() != latest.len() {
        return Err(format!("report lists {} images", images.len()));
    }
    let after = |i: usize| images[i]["after"].as_str().map(str::to_string);
    let lie = |i: usize| -> Option<String> {
        if lied {
            return None;
        }
        match after(i) {
            Some(a) if a != latest[i] => Some(format!(
                "report says image {i} is at {a}, skopeo reads {}",
                latest[i]
            )),
            _ => None,
        }
    };
    if !lied {
        for (i, image) in images.iter().enumerate() {
            if let Some(before) = image["before"].as_str() {
                if before != start[i] {
                    return Err(format!(
                        "report says image {i} was at {before}, it was at {}",
                        start[i]
                    ));
                }
            }
        }
    }
    let named = |d: &[String]| -> String {
        d.iter()
            .map(|x| {
                if start.contains(x) {
                    "start"
                } else if target.contains(x) {
                    "target"
                } else {
                    "other"
                }
            })
            .collect::<Vec<_>>()
            .join("+")
    };
    match r.code {
        0 => {
            if latest != target {
                return Err(format!(
                    "exit 0 ({outcome}) but latest is {}",
                    named(latest)
                ));
            }
            if outcome != op.success() {
                return Err(format!("exit 0 with outcome {outcome}"));
            }
            if let Some(l) = (0..latest.len()).find_map(lie) {
                return Err(l);
            }
            if (0..latest.len()).any(|i| after(i).is_none()) {
                return Err("exit 0 but the report has no `after` digest".into());
            }
            Ok(Class::Moved)
        }
        1 | 3 => {
            if latest != start {
                return Err(format!(
                    "exit {} ({outcome}) but latest is {}",
                    r.code,
                    named(latest)
                ));
            }
            let expected: &[&str] = if r.code == 1 {
                &["rejected", "inconclusive"]
            } else {
                &["failed"]
            };
            if !expected.contains(&outcome) {
                return Err(format!("exit {} with outcome {outcome}", r.code));
            }
            if let Some(l) = (0..latest.len()).find_map(lie) {
                return Err(l);
            }
            Ok(Class::Unchanged)
        }
        4 => {
            if outcome != "inconsistent" {
                return Err(format!("exit 4 with outcome {outcome}"));
            }
            if let Some(l) = (0..latest.len()).find_map(lie) {
                return Err(l);
            }
            let unknown: Vec<usize> = (0..latest.len()).filter(|&i| after(i).is_none()).collect();
            if unknown.is_empty() {
                // `inconsistent` promises a mixed state; when canary knows
                // every image is where it was, that is `failed` (exit 3).
                if latest == start && !lied {
                    return Err(format!(
                        "exit 4 (inconsistent) but every image is where it was, and the \
                         report knows it: expected `failed`, exit 3 (reason: {})",
                        report["reason"].as_str().unwrap_or("")
                    ));
                }
                return Ok(Class::InconsistentTruthful);
            }
            for &i in &unknown {
                let said = images[i]["error"].as_str().unwrap_or("");
                if !said.contains("unknown") {
                    return Err(format!(
                        "exit 4: image {i} has no `after` and no word on why (error: {said:?})"
                    ));
                }
            }
            if scenario.registry_gone() || lied {
                Ok(Class::InconsistentUnknown)
            } else {
                Err(format!(
                    "exit 4: images {unknown:?} reported unknown though the registry answered"
                ))
            }
        }
        code => Err(format!(
            "exit {code} ({outcome}), latest is {}",
            named(latest)
        )),
    }
}

/// Runs `scenarios` on the lanes, at most one per lane at a time.
async fn run_all(setup: &Arc<Setup>, lanes: Vec<Lane>, scenarios: Vec<(Op, Scenario)>) -> Vec<Ran> {
    let queue = Arc::new(Mutex::new(VecDeque::from(scenarios)));
    let mut workers = Vec::new();
    for mut lane in lanes {
        let queue = queue.clone();
        let setup = setup.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop_front();
                let Some((op, scenario)) = next else { break };
                done.push(run_scenario(&setup, &mut lane, op, scenario).await);
            }
            done
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("lane worker"));
    }
    all
}

/// Every scenario for `op`, given the clean run's requests.
fn matrix(op: Op, clean: &[(Method, String)]) -> Vec<(Op, Scenario)> {
    let len = clean.len();
    let mut out = Vec::new();
    let once = [
        FaultKind::Status(503),
        FaultKind::Status(429),
        FaultKind::ResetConnection,
        FaultKind::TruncatedBody,
        FaultKind::WrongDigestHeader,
        FaultKind::HtmlBody,
        FaultKind::Slow(SLOW),
    ];
    for n in 1..=len {
        for kind in &once {
            out.push((op, Scenario::Nth(n, kind.clone())));
        }
        out.push((op, Scenario::Burst(n, FaultKind::Status(503))));
        out.push((op, Scenario::Burst(n, FaultKind::ResetConnection)));
        out.push((op, Scenario::From(n, FaultKind::Status(503))));
        out.push((op, Scenario::From(n, FaultKind::WrongDigestHeader)));
        out.push((op, Scenario::From(n, FaultKind::HtmlBody)));
        out.push((op, Scenario::Burst(n, FaultKind::TruncatedBody)));
    }
    for method in [Method::GET, Method::HEAD, Method::PUT] {
        let count = clean.iter().filter(|(m, _)| *m == method).count();
        for n in 1..=count {
            out.push((
                op,
                Scenario::FromMethod(method.clone(), n, FaultKind::Status(500)),
            ));
        }
    }
    // Writes that break by resets (retried with backoff) while reads work:
    // the restore path must be tried and reported.
    let puts = clean.iter().filter(|(m, _)| *m == Method::PUT).count();
    for n in 1..=puts {
        out.push((
            op,
            Scenario::FromMethod(Method::PUT, n, FaultKind::ResetConnection),
        ));
        // Writes refused (a token without push rights): not retried.
        out.push((
            op,
            Scenario::FromMethod(Method::PUT, n, FaultKind::Status(403)),
        ));
    }
    // A wrong digest on a precheck read of `latest`, then a failed move:
    // the restore goes by the digest canary was told.
    let first_put = clean
        .iter()
        .position(|(m, _)| *m == Method::PUT)
        .unwrap_or(len);
    for (i, (m, path)) in clean.iter().enumerate().take(first_put) {
        if *m == Method::HEAD && path.ends_with("/manifests/latest") {
            out.push((
                op,
                Scenario::Both(
                    Box::new(Scenario::Nth(i + 1, FaultKind::WrongDigestHeader)),
                    Box::new(Scenario::FromMethod(Method::PUT, 2, FaultKind::Status(500))),
                ),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_at_every_step_keeps_latest_whole_and_the_report_truthful() {
    let t0 = Instant::now();
    let setup = Arc::new(Setup::start(LANES).await);
    let mut lanes: Vec<Lane> = (0..LANES)
        .map(|i| Lane {
            repos: lane_repos(i),
            dir: tempfile::tempdir().unwrap(),
            known: None,
        })
        .collect();

    // Clean runs: green, and the request sequences to break.
    let mut clean = Vec::new();
    for op in [Op::Verify, Op::Rollback] {
        let ran = run_scenario(&setup, &mut lanes[0], op, Scenario::Clean).await;
        assert_eq!(ran.verdict, Ok(Class::Moved), "clean {op:?} must succeed");
        assert_eq!(ran.struck, 0);
        println!("clean {op:?}: {} requests", ran.requests.len());
        for (m, p) in &ran.requests {
            println!("  {m} {p}");
        }
        clean.push((op, ran.requests));
    }
    let setup_time = t0.elapsed();

    let mut scenarios = Vec::new();
    for (op, requests) in &clean {
        scenarios.extend(matrix(*op, requests));
    }
    // `FAULTS_FILTER=403` runs only the scenarios whose description
    // contains it (for reproducing one case), and prints their output.
    let filter = std::env::var("FAULTS_FILTER").ok();
    if let Some(f) = &filter {
        scenarios.retain(|(op, s)| format!("{op:?}, {s}").contains(f.as_str()));
    }
    let total = scenarios.len();
    assert!(total > 0, "no scenario matches FAULTS_FILTER={filter:?}");
    let results = run_all(&setup, lanes, scenarios).await;
    assert_eq!(results.len(), total);

    let faults: usize = results.iter().map(|r| r.struck).sum();
    let mut classes = std::collections::BTreeMap::new();
    let mut violations = Vec::new();
    for r in &results {
        if filter.is_some() {
            println!(
                "--- {:?}, {}: {:?}\n{}",
                r.op, r.scenario, r.verdict, r.stdout
            );
        }
        match &r.verdict {
            Ok(class) => *classes.entry((r.op, *class)).or_insert(0usize) += 1,
            Err(e) => violations.push(format!("{:?}, {}: {e}", r.op, r.scenario)),
        }
        if matches!(
            r.verdict,
            Ok(Class::InconsistentTruthful | Class::InconsistentUnknown)
        ) || matches!(r.scenario, Scenario::Both(..))
        {
            let lied = if r.lied { " (a HEAD lied)" } else { "" };
            println!("  {:?}, {}: {:?}{lied}", r.op, r.scenario, r.verdict);
        }
    }
    println!(
        "faults injected: {faults}, runs: {} (+2 clean), in {:.1?} (setup {:.1?})",
        results.len(),
        t0.elapsed(),
        setup_time
    );
    for ((op, class), n) in &classes {
        println!("  {op:?} {class:?}: {n}");
    }
    for v in &violations {
        println!("VIOLATION {v}");
    }
    assert!(
        violations.is_empty(),
        "{} of {} runs broke the promise:\n{}",
        violations.len(),
        results.len(),
        violations.join("\n")
    );
    // Every fault struck somewhere: the matrix did test something.
    assert!(faults >= results.len(), "faults injected: {faults}");
}

/// The commonest registry failure in CI: pushing is not allowed (a token
/// without write access), so the very first write is refused and nothing
/// moves. That is `failed` (exit 3, `latest` unchanged), not
/// `inconsistent`: exit 4 promises a mixed state and pages someone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_write_is_failed_not_inconsistent() {
    let setup = Arc::new(Setup::start(1).await);
    let mut lane = Lane {
        repos: lane_repos(0),
        dir: tempfile::tempdir().unwrap(),
        known: None,
    };
    for op in [Op::Verify, Op::Rollback] {
        let scenario = Scenario::FromMethod(Method::PUT, 1, FaultKind::Status(403));
        let ran = run_scenario(&setup, &mut lane, op, scenario).await;
        assert_eq!(
            lane.known.as_deref(),
            Some(setup.digests(op.start_sha()).as_slice()),
            "nothing moved"
        );
        assert_eq!(
            ran.verdict,
            Ok(Class::Unchanged),
            "{op:?} with every PUT refused:\n{}",
            ran.stdout
        );
    }
}

/// A canary tenant that goes away while the suite runs on it (after its
/// k-th request, for every k of a green run): never `promoted`, `latest`
/// never moves. One lane per k, all at once (a dead tenant costs each
/// remaining check its retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_dying_mid_suite_never_promotes() {
    // A green run makes 1 probe + 6 checks on the tenant: killed after its
    // k-th request arrived (that one is answered: shutdown is graceful),
    // the next finds nobody; k = 0 is dead before the run.
    const DEATHS: usize = 7;
    let setup = Arc::new(Setup::start(DEATHS).await);
    let start = setup.digests(OLD);
    let mut runs = Vec::new();
    for k in 0..DEATHS {
        let setup = setup.clone();
        let start = start.clone();
        runs.push(tokio::spawn(async move {
            let repos = lane_repos(k);
            setup.set_latest(&repos, OLD).await;
            let dir = tempfile::tempdir().unwrap();
            let mut fleet = start_tenants(2, NEW).await;
            fleet[1].set_fault(TenantFault::Slow(Duration::from_millis(150)));
            let mut cmd = std::process::Command::new(canary_e2e::canary_bin());
            cmd.current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .env("NO_COLOR", "1")
                .env("CANARY_IMAGES", images_on(&setup.registry.host(), &repos))
                .env("CANARY_ROLLOUT_INTERVAL", "100ms")
                .env("CANARY_ROLLOUT_DEADLINE", "2s")
                .args(["verify", "--sha", NEW, "--report", "r.json"]);
            use_fleet(&mut cmd, &fleet);
            let dying = fleet.pop().unwrap();
            let handle = tokio::spawn(run(cmd));
            let deadline = Instant::now() + Duration::from_secs(30);
            while dying.requests() < k as u64 && Instant::now() < deadline && !handle.is_finished()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let served = dying.requests();
            drop(dying);
            let r = handle.await.unwrap();
            let report: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("r.json")).expect("report written"),
            )
            .unwrap();
            let outcome = report["outcome"].as_str().unwrap().to_string();
            let latest = setup.latest(&repos).await;
            let what = format!("tenant killed after {served} requests ({outcome})");
            assert!(served >= k as u64, "{what}: the run ended first: {r:?}");
            assert_eq!(latest, start, "{what}: latest moved: {r:?}");
            assert_eq!(r.code, 1, "{what}: {r:?}");
            assert!(
                outcome == "inconclusive" || outcome == "rejected",
                "{what}: {r:?}"
            );
            for (i, image) in report["images"].as_array().unwrap().iter().enumerate() {
                assert_eq!(image["after"].as_str(), Some(start[i].as_str()), "{what}");
            }
            drop(fleet);
            outcome
        }));
    }
    let mut outcomes = std::collections::BTreeMap::new();
    for run in runs {
        *outcomes.entry(run.await.unwrap()).or_insert(0) += 1;
    }
    println!("tenant deaths: runs: {DEATHS}, outcomes: {outcomes:?}");
}
