//! The kill matrix: the real `canary` binary, a two-image release on the
//! real distribution registry, a [`FaultProxy`] in front of it that holds
//! one request of the run, and a real signal at that exact point — for
//! every request of a clean run.
//!
//! Per request index `n` of a clean run, three ways to stop the run:
//!
//! - **SIGTERM** while request `n` waits at the proxy (then it goes on):
//!   canary exits `interrupted` (5) or its true outcome, writes its
//!   report, records its end, and leaves no mixed release; `status` then
//!   exits 0.
//! - **SIGKILL** while request `n` waits at the proxy (it never reaches the
//!   registry), and **SIGKILL** once the registry answered it (it took
//!   effect; canary never learnt it): then `canary status` exits 4 exactly
//!   when the registry — read directly, not through canary — holds a mixed
//!   release or a pending run (an intent record without its outcome, see
//!   [`Direct::pending`]); one `canary repair`
//!   exits 0 (`repaired` when a run was pending, undone back to where it
//!   started; `skipped` when none was); no mixed release is left, nothing
//!   is pending, and a following `canary promote` succeeds, after which
//!   `status` exits 0.
//!
//! Each scenario gets two fresh repositories (the releases' blobs are
//! mounted from template repositories, so staging one costs a few
//! requests) and its own proxy, so every run starts from the same state and
//! request `n` is the same request as in the clean run (up to the order of
//! requests canary sends in parallel). Scenarios run on a few lanes at
//! once. `KILL_FILTER=<text>` runs only the scenarios whose description
//! contains the text and prints every canary run of each (a repro).
//!
//! The first test is the finding 1 on its own: PUTs slowed, SIGTERM
//! right after the first write of `latest` reached the registry.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canary_e2e::kill::{Direct, Spawned};
use canary_e2e::{images_on, release_layouts, run, use_fleet, Run, World, NEW, OLD, REPOS};
use canary_testkit::fake_registry::FaultKind;
use canary_testkit::fault_proxy::{Arrival, FaultProxy, HoldAt};
use canary_testkit::oci::Blob;
use canary_testkit::real_registry::RealRegistry;
use canary_testkit::tenant::TenantServer;
use reqwest::Method;
use serde_json::Value;

/// Scenarios running at once.
const LANES: usize = 4;
/// What canary's signal handler prints when the first signal arrives.
const SIGNAL_SEEN: &str = "SIGTERM received";
/// How long a signalled run may take: the 5 s grace period, and margin.
const SIGNALLED_RUN: Duration = Duration::from_secs(20);
/// How long any other run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The template repositories every scenario's releases are mounted from.
const TEMPLATE: [&str; 2] = ["template/platform", "template/tenant"];

// ---------------------------------------------------------------------------
// Finding 1.

/// Issue 11, finding 1: two images, PUTs slowed by a proxy, SIGTERM right
/// after the first write of `latest` reached the registry. canary used to
/// exit 143 at once and leave `platform:latest` on the new release and
/// `tenant:latest` on the old one, with no report and a `status` that saw
/// nothing wrong.
///
/// The images move together now: when the signal comes, the second write
/// is already on its way, so the run finishes it, verifies both and ends
/// `interrupted` with the release whole. (A signal before a write starts is
/// put back: the kill matrix below and `canary-core/tests/interrupt.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_between_two_writes_leaves_one_release_reports_and_records_the_run() {
    let world = World::start(2).await;
    let proxy = FaultProxy::in_front_of(&world.registry).await;
    proxy.fail_from_method(
        &Method::PUT,
        1,
        &FaultKind::Slow(Duration::from_millis(300)),
    );
    // The images move together: hold the second image's write before the
    // registry sees it, and let the first land.
    let mut held = proxy.hold_when(HoldAt::Arrival, |a| {
        a.method == Method::PUT
            && a.path.ends_with("/manifests/latest")
            && a.path.contains(REPOS[1])
    });
    let mut cmd = world.canary_via(&proxy.host());
    cmd.args(["verify", "--sha", NEW, "--report", "r.json"]);
    let mut canary = Spawned::start(cmd);
    let second_write = tokio::select! {
        a = held.reached() => a.expect("the proxy runs"),
        status = canary.exited() => panic!("canary ended ({status}) before writing latest:\n{}", canary.stderr()),
    };
    assert!(second_write.path.contains(REPOS[1]), "{second_write}");
    let old = world.staging(OLD);
    let new = world.staging(NEW);
    let landed = Instant::now() + Duration::from_secs(10);
    while world.latest()[0] != new[0] && Instant::now() < landed {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first image's `latest` is on the new release now; the second's
    // is not.
    assert_eq!(world.latest(), [new[0].clone(), old[1].clone()]);
    canary.signal("TERM");
    let seen = canary
        .wait_for_stderr(SIGNAL_SEEN, Duration::from_secs(5))
        .await;
    held.release();
    let r = canary.finish(SIGNALLED_RUN).await;
    assert!(seen, "canary did not acknowledge SIGTERM: {r:#?}");
    println!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 5, "interrupted during the moves: {r:#?}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(world.dir.path().join("r.json")).expect("--report written"),
    )
    .expect("the report is JSON");
    assert_eq!(report["outcome"], "interrupted", "{report:#}");
    assert_eq!(report["exit_code"], 5);
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("after every image had moved"), "{reason}");
    // Never platform new + tenant old: both moved, and were verified.
    assert_eq!(world.latest(), new, "skopeo reads latest");
    for (i, image) in report["images"]
        .as_array()
        .expect("images")
        .iter()
        .enumerate()
    {
        assert_eq!(image["before"], old[i].as_str(), "{image:#}");
        assert_eq!(image["after"], new[i].as_str(), "{image:#}");
    }

    // `status` sees nothing wrong because nothing is: exit 0.
    let mut cmd = world.canary_via(&proxy.host());
    cmd.args(["status", "--json"]);
    let status = run(cmd).await;
    assert_eq!(status.code, 0, "{status:#?}");
    let json: Value = serde_json::from_str(&status.stdout).expect("status --json");
    assert_eq!(json["mixed"], false);
    assert!(json["interrupted"].is_null(), "{json:#}");

    // `history` lists the run: its outcome record is the newest.
    let mut cmd = world.canary_via(&proxy.host());
    cmd.args(["history", "--json"]);
    let history = run(cmd).await;
    assert_eq!(history.code, 0, "{history:#?}");
    let json: Value = serde_json::from_str(&history.stdout).expect("history --json");
    let records = json["records"].as_array().expect("records");
    let outcome_ids: Vec<&Value> = report["ledger"]["outcome"]
        .as_array()
        .expect("the report names its outcome records")
        .iter()
        .collect();
    let listed = records
        .first()
        .filter(|r| outcome_ids.contains(&&r["id"]))
        .unwrap_or_else(|| panic!("history does not start with the run: {json:#}"));
    assert_eq!(listed["kind"], "outcome");
    assert_eq!(listed["outcome"], "interrupted");
    let mut text = world.canary_via(&proxy.host());
    text.arg("history");
    let text = run(text).await;
    assert_eq!(text.code, 0, "{text:#?}");
    println!("{}", text.stdout);
}

// ---------------------------------------------------------------------------
// The matrix.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// `canary promote --sha NEW --no-verify --reason x`.
    Promote,
    /// `canary verify --sha NEW`, the tenants already on NEW.
    Verify,
}

impl Op {
    fn args(self) -> Vec<&'static str> {
        match self {
            Op::Promote => vec!["promote", "--sha", NEW, "--no-verify", "--reason", "x"],
            Op::Verify => vec!["verify", "--sha", NEW],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Promote => "promote",
            Op::Verify => "verify",
        }
    }
}

/// How the run is stopped at request `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Blow {
    /// SIGTERM while request `n` waits on arrival; then it goes on.
    Term,
    /// SIGKILL while request `n` waits on arrival; it never arrives.
    KillBefore,
    /// SIGKILL once the registry answered request `n`.
    KillAfter,
}

const BLOWS: [Blow; 3] = [Blow::Term, Blow::KillBefore, Blow::KillAfter];

#[derive(Clone, Copy, Debug)]
struct Scenario {
    op: Op,
    blow: Blow,
    n: usize,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.blow {
            Blow::Term => "SIGTERM at",
            Blow::KillBefore => "SIGKILL on arrival of",
            Blow::KillAfter => "SIGKILL after the answer to",
        };
        write!(f, "{}: {how} request #{}", self.op.name(), self.n)
    }
}

/// Where an image's `latest` is, read directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum At {
    Old,
    New,
    Other,
}

/// What the lanes share.
struct Setup {
    registry: RealRegistry,
    direct: Direct,
    tenants: Vec<TenantServer>,
    /// Per image: OLD's and NEW's top manifest and image manifests.
    old: Vec<(Blob, Vec<Blob>)>,
    new: Vec<(Blob, Vec<Blob>)>,
    scenarios: AtomicUsize,
    canary_runs: AtomicUsize,
}

impl Setup {
    async fn start() -> Self {
        let registry = RealRegistry::open();
        let mut releases = Vec::new();
        for sha in [OLD, NEW] {
            let layouts = release_layouts(&REPOS, sha);
            for (layout, repo) in layouts.iter().zip(TEMPLATE) {
                layout.push(&registry, repo, &format!("staging-{sha}"));
            }
            releases.push(
                layouts
                    .iter()
                    .map(|l| (l.top().clone(), l.children().to_vec()))
                    .collect::<Vec<_>>(),
            );
        }
        let new = releases.pop().expect("NEW");
        let old = releases.pop().expect("OLD");
        Self {
            direct: Direct::new(&registry),
            tenants: canary_e2e::start_tenants(2, NEW).await,
            registry,
            old,
            new,
            scenarios: AtomicUsize::new(0),
            canary_runs: AtomicUsize::new(0),
        }
    }

    /// Two fresh repositories holding both releases, `latest` on OLD.
    async fn fresh_repos(&self) -> [String; 2] {
        let k = self.scenarios.fetch_add(1, Ordering::SeqCst);
        let repos = [format!("k{k}/platform"), format!("k{k}/tenant")];
        for (i, repo) in repos.iter().enumerate() {
            for (sha, release) in [(OLD, &self.old), (NEW, &self.new)] {
                let (top, children) = &release[i];
                self.direct
                    .stage(TEMPLATE[i], repo, top, children, &format!("staging-{sha}"))
                    .await;
            }
            self.direct.put(repo, "latest", &self.old[i].0).await;
        }
        repos
    }

    fn at(&self, i: usize, digest: Option<&String>) -> At {
        match digest {
            Some(d) if *d == self.old[i].0.digest => At::Old,
            Some(d) if *d == self.new[i].0.digest => At::New,
            _ => At::Other,
        }
    }

    /// Every image's `latest`, read directly, and where each one is.
    async fn latest(&self, repos: &[String; 2]) -> Result<(Vec<Option<String>>, Vec<At>), String> {
        let mut digests = Vec::new();
        for repo in repos {
            digests.push(self.direct.digest(repo, "latest").await?);
        }
        let at = digests
            .iter()
            .enumerate()
            .map(|(i, d)| self.at(i, d.as_ref()))
            .collect();
        Ok((digests, at))
    }

    /// `canary args…` against `repos` through `host`, in `dir`.
    fn canary(
        &self,
        host: &str,
        repos: &[String; 2],
        dir: &std::path::Path,
        args: &[&str],
    ) -> Command {
        self.canary_runs.fetch_add(1, Ordering::SeqCst);
        let mut cmd = Command::new(canary_e2e::canary_bin());
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("NO_COLOR", "1")
            .env("CANARY_IMAGES", images_on(host, repos))
            .env("CANARY_ROLLOUT_INTERVAL", "100ms")
            .env("CANARY_ROLLOUT_DEADLINE", "10s")
            .args(args);
        use_fleet(&mut cmd, &self.tenants);
        cmd
    }
}

/// The release `at` is on, or `None` when the images are not on one.
fn one_release(at: &[At]) -> Option<At> {
    let first = *at.first()?;
    (first != At::Other && at.iter().all(|a| *a == first)).then_some(first)
}

/// What one scenario showed, for the summary.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// The killed or signalled run's exit code and outcome.
    exit: String,
    /// After a SIGKILL: the release was mixed / a run was pending.
    mixed: bool,
    pending: bool,
    /// The repair's outcome.
    repair: Option<String>,
}

/// One scenario's result.
struct Ran {
    scenario: Scenario,
    held: String,
    verdict: Result<Tally, String>,
    transcript: String,
}

/// The runs of one scenario, for a repro.
struct Transcript {
    text: String,
    started: Instant,
}

impl Transcript {
    fn new() -> Self {
        Self {
            text: String::new(),
            started: Instant::now(),
        }
    }

    fn add(&mut self, what: &str, r: &Run) {
        let _ = write!(
            self.text,
            "--- {what}: exit {} (at {:?})\n{}{}",
            r.code,
            self.started.elapsed(),
            r.stdout,
            r.stderr
        );
    }
}

async fn run_scenario(setup: &Arc<Setup>, scenario: Scenario) -> Ran {
    let repos = setup.fresh_repos().await;
    let proxy = FaultProxy::in_front_of(&setup.registry).await;
    proxy.forward_detached();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = Transcript::new();
    let mut held_at = String::from("(never reached)");
    let mut cx = Ctx {
        setup,
        repos: &repos,
        proxy: &proxy,
        dir: dir.path(),
        t: &mut t,
    };
    let verdict = judge(&mut cx, scenario, &mut held_at).await;
    Ran {
        scenario,
        held: held_at,
        verdict,
        transcript: t.text,
    }
}

/// One scenario's context: where it runs and what it has seen so far.
struct Ctx<'a> {
    setup: &'a Setup,
    repos: &'a [String; 2],
    proxy: &'a FaultProxy,
    dir: &'a std::path::Path,
    t: &'a mut Transcript,
}

impl Ctx<'_> {
    fn canary(&self, args: &[&str]) -> Command {
        self.setup
            .canary(&self.proxy.host(), self.repos, self.dir, args)
    }

    /// Runs `canary args…` to its end and adds it to the transcript.
    async fn run(&mut self, what: &str, args: &[&str]) -> Run {
        let r = run(self.canary(args)).await;
        self.t.add(what, &r);
        r
    }

    fn report(&self, file: &str) -> Option<Value> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
    }
}

async fn judge(cx: &mut Ctx<'_>, s: Scenario, held_at: &mut String) -> Result<Tally, String> {
    let at = if s.blow == Blow::KillAfter {
        HoldAt::Answer
    } else {
        HoldAt::Arrival
    };
    let mut held = cx.proxy.hold_nth(s.n, at);
    let mut args = s.op.args();
    args.extend(["--report", "r.json"]);
    let mut child = Spawned::start(cx.canary(&args));
    let reached = tokio::select! {
        a = held.reached() => a,
        _ = child.exited() => None,
    };
    let Some(arrival) = reached else {
        let r = child.finish(RUN_LIMIT).await;
        cx.t.add("the run", &r);
        return Err(format!(
            "request #{} never came: the run made {} requests",
            s.n,
            cx.proxy.arrivals().len()
        ));
    };
    *held_at = format!("{} {}", arrival.method, arrival.path);
    if s.blow == Blow::Term {
        child.signal("TERM");
        let seen = child
            .wait_for_stderr(SIGNAL_SEEN, Duration::from_secs(5))
            .await;
        held.release();
        let r = child.finish(SIGNALLED_RUN).await;
        cx.t.add("signalled run", &r);
        if !seen {
            return Err(format!("no \"{SIGNAL_SEEN}\" on stderr (exit {})", r.code));
        }
        return judge_signalled(cx, &r).await;
    }
    child.kill().await;
    match s.blow {
        Blow::KillBefore => held.refuse(),
        _ => held.release(),
    }
    let r = child.finish(RUN_LIMIT).await;
    cx.t.add("killed run", &r);
    // Requests the killed run had sent are finished (the proxy forwards
    // detached): from here on the registry holds what the run left.
    if !cx.proxy.settled(Duration::from_secs(30)).await {
        return Err(format!("{} requests still in flight", cx.proxy.in_flight()));
    }
    judge_killed(cx).await
}

/// SIGTERM: exit 5 or the true outcome, a report that says so and where
/// every image is, one release on `latest`, the run's end recorded.
async fn judge_signalled(cx: &mut Ctx<'_>, r: &Run) -> Result<Tally, String> {
    let Some(report) = cx.report("r.json") else {
        return Err(format!("exit {}, no report written", r.code));
    };
    let outcome = report["outcome"].as_str().unwrap_or("?").to_string();
    let tally = Tally {
        exit: format!("{} {outcome}", r.code),
        ..Tally::default()
    };
    let (digests, at) = cx.setup.latest(cx.repos).await?;
    let Some(release) = one_release(&at) else {
        return Err(format!("exit {} ({outcome}): MIXED release {at:?}", r.code));
    };
    if report["exit_code"] != r.code {
        return Err(format!(
            "exit {} but the report says {}",
            r.code, report["exit_code"]
        ));
    }
    match (r.code, outcome.as_str(), release) {
        (0, "promoted", At::New) | (5, "interrupted", At::Old | At::New) => {}
        (code, outcome, release) => {
            return Err(format!(
                "exit {code} ({outcome}) with latest on {release:?}"
            ));
        }
    }
    let images = report["images"].as_array().cloned().unwrap_or_default();
    for (i, image) in images.iter().enumerate() {
        let old = &cx.setup.old[i].0.digest;
        if let Some(before) = image["before"].as_str() {
            if before != old {
                return Err(format!(
                    "the report says image {i} was at {before}, it was at {old}"
                ));
            }
        }
        if let Some(after) = image["after"].as_str() {
            if Some(after) != digests[i].as_deref() {
                return Err(format!(
                    "the report says image {i} is at {after}, the registry has {:?}",
                    digests[i]
                ));
            }
        }
    }
    if let Some(run) = cx.setup.direct.pending(cx.repos, &digests).await? {
        return Err(format!("the signalled run {run} never recorded its end"));
    }
    let status = cx.run("status", &["status"]).await;
    if status.code != 0 {
        return Err(format!(
            "status exits {} after the signalled run",
            status.code
        ));
    }
    Ok(tally)
}

/// SIGKILL: `status` tells the truth, one `repair` settles it, the next
/// promotion lands, and nothing is left pending.
async fn judge_killed(cx: &mut Ctx<'_>) -> Result<Tally, String> {
    let mut tally = Tally {
        exit: "killed".to_string(),
        ..Tally::default()
    };
    let (digests, at) = cx.setup.latest(cx.repos).await?;
    tally.mixed = one_release(&at).is_none();
    let pending = cx.setup.direct.pending(cx.repos, &digests).await?;
    tally.pending = pending.is_some();
    let status = cx.run("status", &["status", "--json"]).await;
    let expected = if tally.mixed || tally.pending { 4 } else { 0 };
    let json: Value = serde_json::from_str(&status.stdout).unwrap_or(Value::Null);
    if status.code != expected
        || json["mixed"] != tally.mixed
        || json["interrupted"].is_null() == tally.pending
    {
        return Err(format!(
            "status exits {} (mixed: {}, interrupted: {}); the registry holds {at:?}, \
             pending run: {pending:?} (expected exit {expected})",
            status.code, json["mixed"], json["interrupted"]["run_id"]
        ));
    }
    let repair = cx
        .run("repair", &["repair", "--report", "repair.json"])
        .await;
    let outcome = cx
        .report("repair.json")
        .and_then(|r| r["outcome"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string());
    tally.repair = Some(outcome.clone());
    let wanted = if tally.pending { "repaired" } else { "skipped" };
    if repair.code != 0 || outcome != wanted {
        return Err(format!(
            "repair exits {} ({outcome}); expected 0 ({wanted})",
            repair.code
        ));
    }
    let (digests, at) = cx.setup.latest(cx.repos).await?;
    match one_release(&at) {
        None => return Err(format!("MIXED after repair: {at:?}")),
        Some(At::New) if tally.pending => {
            return Err("repair (undo) left the interrupted run's release on latest".into())
        }
        Some(_) => {}
    }
    if let Some(run) = cx.setup.direct.pending(cx.repos, &digests).await? {
        return Err(format!("run {run} still pending after repair"));
    }
    // The next promotion is not refused, lands, and leaves nothing pending.
    let next = cx
        .run(
            "next promote",
            &["promote", "--sha", NEW, "--no-verify", "--reason", "after"],
        )
        .await;
    let (digests, at) = cx.setup.latest(cx.repos).await?;
    if next.code != 0 || one_release(&at) != Some(At::New) {
        return Err(format!(
            "the next promote exits {} with latest {at:?}",
            next.code
        ));
    }
    let pending = cx.setup.direct.pending(cx.repos, &digests).await?;
    let status = cx.run("status after the next promote", &["status"]).await;
    if status.code != 0 || pending.is_some() {
        // For the repro: what a `repair` now does to the good release.
        let repair = cx
            .run("(diagnostic) repair after the next promote", &["repair"])
            .await;
        let (_, after) = cx.setup.latest(cx.repos).await?;
        return Err(format!(
            "after the next promote, status exits {} (pending run: {pending:?}); \
             a repair then exits {} and leaves latest on {after:?}",
            status.code, repair.code
        ));
    }
    Ok(tally)
}

/// A clean run of `op` through a fresh proxy: the requests it makes, in
/// arrival order.
async fn clean_run(setup: &Arc<Setup>, op: Op) -> Vec<Arrival> {
    let repos = setup.fresh_repos().await;
    let proxy = FaultProxy::in_front_of(&setup.registry).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let t0 = Instant::now();
    let r = run(setup.canary(&proxy.host(), &repos, dir.path(), &op.args())).await;
    let took = t0.elapsed();
    assert_eq!(r.code, 0, "clean {}: {r:#?}", op.name());
    let (_, at) = setup.latest(&repos).await.expect("read latest");
    assert_eq!(at, [At::New, At::New], "clean {}", op.name());
    let requests = proxy.arrivals();
    let status = run(setup.canary(&proxy.host(), &repos, dir.path(), &["status"])).await;
    assert_eq!(
        status.code,
        0,
        "status after a clean {}: {status:#?}",
        op.name()
    );
    println!(
        "clean {}: {} requests in {took:.0?}",
        op.name(),
        requests.len()
    );
    for arrival in &requests {
        println!("  {arrival}");
    }
    requests
}

/// Whether the matrix stops `op` with `blow` at `arrival`.
///
/// - A read changes nothing in the registry: killed after its answer, the
///   registry is as killed on its arrival, so `KillAfter` is for writes.
/// - `verify` sends the requests `promote` sends, plus a read of `latest`
///   before the move (the checks run against the tenants, not through the
///   proxy). To keep the matrix within a few minutes on two cores, it gets
///   SIGTERM at every request (the grace period after the checks) and
///   SIGKILL after every write; `KILL_FULL=1` adds SIGKILL on the arrival
///   of every request.
fn wanted(op: Op, blow: Blow, arrival: &Arrival, full: bool) -> bool {
    let read = arrival.method == Method::GET || arrival.method == Method::HEAD;
    match (op, blow) {
        (_, Blow::KillAfter) => !read,
        (Op::Verify, Blow::KillBefore) => full,
        _ => true,
    }
}

async fn run_all(setup: &Arc<Setup>, scenarios: Vec<Scenario>) -> Vec<Ran> {
    let queue = Arc::new(Mutex::new(VecDeque::from(scenarios)));
    let mut lanes = Vec::new();
    for _ in 0..LANES {
        let queue = Arc::clone(&queue);
        let setup = Arc::clone(setup);
        lanes.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().expect("queue").pop_front();
                let Some(scenario) = next else { break };
                done.push(run_scenario(&setup, scenario).await);
            }
            done
        }));
    }
    let mut all = Vec::new();
    for lane in lanes {
        all.extend(lane.await.expect("lane"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_every_request_then_one_repair_never_leaves_a_mixed_release() {
    let started = Instant::now();
    let setup = Arc::new(Setup::start().await);
    let filter = std::env::var("KILL_FILTER").ok();
    let full = std::env::var_os("KILL_FULL").is_some();
    let mut requests = BTreeMap::new();
    let mut scenarios = Vec::new();
    for op in [Op::Promote, Op::Verify] {
        let clean = clean_run(&setup, op).await;
        for arrival in &clean {
            for blow in BLOWS {
                if wanted(op, blow, arrival, full) {
                    scenarios.push(Scenario {
                        op,
                        blow,
                        n: arrival.index,
                    });
                }
            }
        }
        requests.insert(op.name(), clean.len());
    }
    if let Some(f) = &filter {
        scenarios.retain(|s| s.to_string().contains(f.as_str()));
    }
    let ran = run_all(&setup, scenarios).await;

    let mut failures = Vec::new();
    let mut exits: BTreeMap<String, usize> = BTreeMap::new();
    let mut repairs: BTreeMap<String, usize> = BTreeMap::new();
    let (mut terms, mut kills, mut mixed, mut pending) = (0, 0, 0, 0);
    for r in &ran {
        if r.scenario.blow == Blow::Term {
            terms += 1;
        } else {
            kills += 1;
        }
        if filter.is_some() {
            println!("=== {} (held {})\n{}", r.scenario, r.held, r.transcript);
        }
        match &r.verdict {
            Ok(tally) => {
                if r.scenario.blow == Blow::Term {
                    *exits.entry(tally.exit.clone()).or_default() += 1;
                }
                mixed += usize::from(tally.mixed);
                pending += usize::from(tally.pending);
                if let Some(repair) = &tally.repair {
                    *repairs.entry(repair.clone()).or_default() += 1;
                }
            }
            Err(e) => failures.push((
                format!("{} (held {}): {e}", r.scenario, r.held),
                &r.transcript,
            )),
        }
    }
    let fmt_map = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "kill matrix: requests per clean run {requests:?}; {} scenarios ({terms} SIGTERM, {kills} SIGKILL), \
         {} canary runs, {:.0?}; SIGTERM exits [{}]; after SIGKILL: {mixed} mixed, {pending} pending; \
         repair [{}]; {} failed",
        ran.len(),
        setup.canary_runs.load(Ordering::SeqCst),
        started.elapsed(),
        fmt_map(&exits),
        fmt_map(&repairs),
        failures.len()
    );
    // Every failure in a line, and the runs of the first few (KILL_FILTER
    // with a failure's description shows the runs of any one).
    let lines: Vec<&str> = failures.iter().map(|(line, _)| line.as_str()).collect();
    let shown: Vec<String> = failures
        .iter()
        .take(3)
        .map(|(line, transcript)| format!("=== {line}\n{transcript}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios broke a promise:\n{}\n\n{}",
        failures.len(),
        ran.len(),
        lines.join("\n"),
        shown.join("\n")
    );
}
