//! Fleet part: `canary smoke` (the released binary, a fresh process per
//! run, the fleet from `--urls-file` / `--tokens-file`, default
//! concurrency) on 1 → 10,000 tenants of the virtual fleet, which is served
//! by separate processes (`bench --fleet-host`, at most 5,000 tenants each
//! so listeners and connections stay within one process's open-files
//! limit). Each run goes through the measuring wrapper: wall time, CPU time
//! and peak memory are canary's alone. Then the edge cases: 10 dead tenants
//! out of 1,000, 5,000 tenants under `ulimit -n 1024`, and the fleet-list
//! check at 10,000 tenants timed in-process.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::guard::ChildGuard;
use crate::measure::{measured, Measured, Run};
use crate::report::{context_line, median, mib, ratio, secs, Section, Target};
use crate::{Options, LATENCY};

/// No single `canary smoke` run may take longer than this.
const DEADLINE: Duration = Duration::from_secs(180);
/// Tenants per fleet-host process.
const PER_HOST: usize = 5_000;
/// The short-timeout suite for the dead-tenant runs: per attempt, retries
/// and the pause between attempts (the built-in suite's are 10 s, 2, 1 s).
const SHORT_TIMEOUT: Duration = Duration::from_secs(1);
const SHORT_RETRIES: u32 = 1;
const SHORT_INTERVAL: Duration = Duration::from_millis(200);

/// Fleet-host processes and the tenants they serve.
struct Fleet {
    hosts: Vec<ChildGuard>,
    urls: Vec<String>,
    tokens: Vec<String>,
}

/// Starts `count` tenants (`dead` are local indices that never answer).
fn start_fleet(count: usize, dead: &[usize]) -> Fleet {
    let exe = std::env::current_exe().expect("own path");
    let mut hosts = Vec::new();
    let mut urls = Vec::with_capacity(count);
    let mut first = 0;
    while first < count {
        let n = PER_HOST.min(count - first);
        let dead_here: Vec<String> = dead
            .iter()
            .filter(|&&d| d >= first && d < first + n)
            .map(|d| (d - first).to_string())
            .collect();
        let child = Command::new(&exe)
            .args([
                "--fleet-host",
                "--count",
                &n.to_string(),
                "--first",
                &first.to_string(),
                "--latency-ms",
                &LATENCY.as_millis().to_string(),
                "--dead",
                &dead_here.join(","),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a fleet host");
        let mut guard = ChildGuard::new(child);
        let stdout = guard.child_mut().stdout.take().expect("host stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("the fleet host ended before `ready`")
                .expect("read the fleet host");
            if line == "ready" {
                break;
            }
            urls.push(line);
        }
        hosts.push(guard);
        first += n;
    }
    let tokens = (0..count).map(|i| format!("tok-{i}")).collect();
    Fleet {
        hosts,
        urls,
        tokens,
    }
}

impl Fleet {
    /// CPU time the fleet hosts have used so far (user + system, from
    /// `/proc/<pid>/stat`, in clock ticks of 10 ms).
    fn cpu(&mut self) -> Duration {
        let mut ticks = 0u64;
        for host in &mut self.hosts {
            let pid = host.child_mut().id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after `(comm)`: utime and stime are the 12th and 13th.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            for i in [11, 12] {
                ticks += fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Duration::from_millis(ticks * 10)
    }
}

/// What one `canary smoke` run gave.
struct Smoke {
    m: Measured,
    /// CPU time the tenants' processes used meanwhile.
    host_cpu: Duration,
    outcome: String,
    checks: usize,
    passed: usize,
}

impl Smoke {
    fn passed_all(&self) -> bool {
        self.outcome == "passed" && self.checks > 0 && self.passed == self.checks
    }

    fn outcome_cell(&self) -> String {
        if self.m.timed_out {
            return format!("did not finish within {} (killed)", secs(self.m.wall));
        }
        let code = self
            .m
            .code
            .map_or_else(|| "killed".to_string(), |c| c.to_string());
        format!(
            "{} (exit {code}), {}/{} checks passed",
            self.outcome, self.passed, self.checks
        )
    }
}

async fn smoke(
    canary: &Path,
    fleet: &mut Fleet,
    n: usize,
    suite: Option<&Path>,
    nofile: Option<u64>,
    deadline: Duration,
) -> Smoke {
    let dir = tempfile::tempdir().expect("temp dir");
    let (urls, tokens) = (dir.path().join("urls"), dir.path().join("tokens"));
    std::fs::write(&urls, fleet.urls[..n].join("\n")).expect("urls file");
    std::fs::write(&tokens, fleet.tokens[..n].join("\n")).expect("tokens file");
    let mut args = vec![
        "smoke".to_string(),
        "--urls-file".into(),
        urls.display().to_string(),
        "--tokens-file".into(),
        tokens.display().to_string(),
        "--json".into(),
        "--quiet".into(),
    ];
    if let Some(s) = suite {
        args.extend(["--suite-file".into(), s.display().to_string()]);
    }
    let host_cpu_before = fleet.cpu();
    let m = measured(Run {
        program: canary,
        args,
        cwd: dir.path(),
        env: vec![("HOME".into(), dir.path().display().to_string())],
        nofile,
        deadline,
    })
    .await;
    let host_cpu = fleet.cpu().saturating_sub(host_cpu_before);
    let report: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap_or_default();
    let outcome = report["outcome"]
        .as_str()
        .map_or_else(|| "no report".to_string(), str::to_string);
    let statuses: Vec<&str> = report["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["checks"].as_array().into_iter().flatten())
        .filter_map(|c| c["status"].as_str())
        .collect();
    let passed = statuses.iter().filter(|s| **s == "passed").count();
    if outcome == "no report" && !m.timed_out {
        eprintln!(
            "bench: canary smoke on {n} tenants wrote no report: {}",
            String::from_utf8_lossy(&m.stderr)
        );
    }
    Smoke {
        m,
        host_cpu,
        outcome,
        checks: statuses.len(),
        passed,
    }
}

/// The built-in suite with short timeouts, for the dead-tenant runs.
fn short_suite(dir: &Path) -> PathBuf {
    let text = canary_smoke::WORKSPACE_SERVER
        .replace("retries = 2", &format!("retries = {SHORT_RETRIES}"))
        .replace(
            "interval = \"1s\"",
            &format!("interval = \"{}ms\"", SHORT_INTERVAL.as_millis()),
        )
        .replace(
            "timeout = \"10s\"",
            &format!("timeout = \"{}ms\"", SHORT_TIMEOUT.as_millis()),
        );
    let path = dir.join("short-timeouts.toml");
    std::fs::write(&path, text).expect("suite file");
    path
}

/// One tenant's timeout budget under the short suite: every check timing
/// out on every attempt, with the pauses between attempts.
fn tenant_budget() -> Duration {
    let checks = canary_smoke::Suite::builtin("workspace-server")
        .expect("built-in suite")
        .checks()
        .len();
    let per_check = SHORT_TIMEOUT * (SHORT_RETRIES + 1) + SHORT_INTERVAL * SHORT_RETRIES;
    per_check * u32::try_from(checks).unwrap_or(u32::MAX)
}

/// The fleet-list check (parse, validate, duplicates) at `n` tenants,
/// in-process, median of 5.
fn list_check(n: usize) -> Duration {
    let urls: Vec<String> = (0..n)
        .map(|i| format!("http://127.0.0.1:{}", 10_000 + i))
        .collect();
    let tokens: Vec<String> = (0..n).map(|i| format!("tok-{i:020}")).collect();
    let (urls, tokens) = (urls.join("\n"), tokens.join("\n"));
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let fleet =
            canary_smoke::fleet_from_named_lists(&urls, "urls file", &tokens, "tokens file")
                .expect("a valid fleet");
        times.push(started.elapsed());
        drop(fleet);
    }
    median(times)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The suite as Hurl files, one per tenant; run with `--parallel --jobs
/// 256` (Hurl's answer to a fleet). Only when `hurl` is on PATH.
async fn hurl(hurl: &Path, fleet: &Fleet, n: usize) -> Option<Duration> {
    let dir = tempfile::tempdir().ok()?;
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let (url, token) = (&fleet.urls[i], &fleet.tokens[i]);
        let text = format!(
            "GET {url}/admin/liveness\nAuthorization: Bearer {token}\nHTTP 200\n[Asserts]\njsonpath \"$.subsystems\" isCollection\n\n\
             GET {url}/workspaces\nAuthorization: Bearer {token}\nHTTP 200\n[Asserts]\njsonpath \"$\" isCollection\n\n\
             POST {url}/memories/commit\nAuthorization: Bearer {token}\n{{\"content\": \"canary-smoke-hurl-{i}\"}}\nHTTP 201\n\n\
             GET {url}/memories/search?q=canary-smoke-hurl-{i}\nAuthorization: Bearer {token}\nHTTP 200\n[Asserts]\nbody contains \"canary-smoke-hurl-{i}\"\n\n\
             GET {url}/events\nAuthorization: Bearer {token}\nHTTP 200\n[Asserts]\njsonpath \"$\" isCollection\n\n\
             GET {url}/admin/liveness\nHTTP 401\n"
        );
        let path = dir.path().join(format!("t{i}.hurl"));
        std::fs::write(&path, text).ok()?;
        files.push(path);
    }
    let started = Instant::now();
    let out = tokio::process::Command::new(hurl)
        .args(["--test", "--parallel", "--jobs", "256"])
        .args(&files)
        .output()
        .await
        .ok()?;
    let wall = started.elapsed();
    out.status.success().then_some(wall)
}

pub(crate) async fn run(options: &Options) -> Section {
    let sizes: &[usize] = if options.quick {
        &[1, 10, 100, 1000]
    } else {
        &[1, 10, 100, 1000, 10_000]
    };
    let rounds = if options.quick { 2 } else { 3 };
    let context = context_line("Fleet");
    let largest = sizes.iter().copied().max().unwrap_or(1).max(5_000);
    eprintln!("bench: fleet: starting {largest} virtual tenants");
    let mut fleet = tokio::task::block_in_place(|| start_fleet(largest, &[]));
    let hurl_bin = which("hurl");

    // Fleet sizes, in turns: every round runs every size once, so drift
    // reaches every size alike; 10,000 runs once (it takes the longest).
    let mut runs: Vec<(usize, Vec<Smoke>)> = sizes.iter().map(|&n| (n, Vec::new())).collect();
    for round in 0..rounds {
        for (n, samples) in &mut runs {
            if *n > 1000 && round > 0 {
                continue;
            }
            eprintln!("bench: fleet: round {} of {rounds}, {n} tenants", round + 1);
            samples.push(smoke(&options.canary, &mut fleet, *n, None, None, DEADLINE).await);
        }
    }
    let one = median(runs[0].1.iter().map(|s| s.m.wall).collect());
    let mut md = String::from("### Fleet: `canary smoke` from 1 to 10,000 tenants\n\n");
    let _ = writeln!(
        md,
        "{context} Every tenant adds {} ms per request; the built-in six-check \
         `workspace-server` suite, default concurrency ({}), the fleet from \
         `--urls-file`/`--tokens-file`. The tenants are served by separate processes \
         (a minimal HTTP/1.1 server on one thread, at most {PER_HOST} tenants each, one \
         port per tenant), so CPU time and peak memory are canary's alone (the tenants' CPU \
         time has its own column, in 10 ms ticks); they still share the machine's cores \
         with canary. Wall and CPU: median of {rounds} runs (10,000: one \
         run); peak memory: the largest of them.\n",
        LATENCY.as_millis(),
        canary_core::promoter::DEFAULT_CONCURRENCY,
    );
    md.push_str(
        "| tenants | canary smoke wall: median (min–max) | × one tenant | canary CPU time | canary peak memory (VmHWM) | outcome | tenants' CPU time | Hurl `--parallel --jobs 256` |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut targets = Vec::new();
    for (n, samples) in &runs {
        let wall = median(samples.iter().map(|s| s.m.wall).collect());
        let cpu = median(samples.iter().map(|s| s.m.cpu).collect());
        let host_cpu = median(samples.iter().map(|s| s.host_cpu).collect());
        let peak = samples.iter().map(|s| s.m.peak_kib).max().unwrap_or(0);
        let last = samples.last().expect("a run");
        let walls: Vec<Duration> = samples.iter().map(|s| s.m.wall).collect();
        let range = if walls.len() > 1 {
            format!(
                " ({}–{})",
                secs(walls.iter().copied().min().unwrap_or_default()),
                secs(walls.iter().copied().max().unwrap_or_default())
            )
        } else {
            String::new()
        };
        let hurl_cell = match &hurl_bin {
            None => "not installed".to_string(),
            Some(h) if *n <= 1000 => hurl(h, &fleet, *n)
                .await
                .map_or_else(|| "failed".into(), secs),
            Some(_) => "not run".to_string(),
        };
        let _ = writeln!(
            md,
            "| {n} | {}{range} | {:.1}× | {} | {} | {} | {} | {hurl_cell} |",
            secs(wall),
            ratio(wall, one),
            secs(cpu),
            mib(peak),
            last.outcome_cell(),
            secs(host_cpu)
        );
        if *n == 1000 {
            targets.push(Target::new(
                "1,000 tenants ≤ 3× one tenant",
                format!("{} vs {} = {:.1}×", secs(wall), secs(one), ratio(wall, one)),
                Some(ratio(wall, one) <= 3.0),
            ));
        }
        if *n == 10_000 {
            targets.push(Target::new(
                "10,000 tenants < 200 MB",
                format!("peak {}", mib(peak)),
                Some(peak * 1024 < 200 * 1000 * 1000),
            ));
            targets.push(Target::new(
                "10,000 tenants from files pass",
                last.outcome_cell(),
                Some(samples.iter().all(Smoke::passed_all)),
            ));
        }
    }
    if !sizes.contains(&10_000) {
        targets.push(Target::new(
            "10,000 tenants < 200 MB",
            "not run (`--quick`)".into(),
            None,
        ));
    }

    // Edge cases.
    eprintln!("bench: fleet: 1,000 healthy vs 1,000 with 10 dead (short timeouts)");
    let suite_dir = tempfile::tempdir().expect("temp dir");
    let suite = short_suite(suite_dir.path());
    let dead: Vec<usize> = (0..10).map(|k| 50 + 100 * k).collect();
    let mut with_dead = tokio::task::block_in_place(|| start_fleet(1000, &dead));
    let healthy = smoke(
        &options.canary,
        &mut fleet,
        1000,
        Some(&suite),
        None,
        DEADLINE,
    )
    .await;
    let deadly = smoke(
        &options.canary,
        &mut with_dead,
        1000,
        Some(&suite),
        None,
        DEADLINE,
    )
    .await;
    drop(with_dead);
    let budget = tenant_budget();
    let extra = deadly.m.wall.saturating_sub(healthy.m.wall);
    eprintln!("bench: fleet: 5,000 tenants under ulimit -n 1024");
    // Before per-tenant connections were released this ran for minutes
    // (retries of "Too many open files"): cap it.
    let cap = if options.quick {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(60)
    };
    let limited = smoke(&options.canary, &mut fleet, 5000, None, Some(1024), cap).await;
    let list = list_check(10_000);

    let mut edge = String::from(
        "| scenario | wall | canary CPU time | canary peak memory | outcome |\n|---|---|---|---|---|\n",
    );
    for (name, s) in [
        (
            "1,000 healthy tenants, short-timeout suite".to_string(),
            &healthy,
        ),
        (
            format!(
                "1,000 tenants of which 10 dead (accept, never answer), same suite: {} more, one tenant's budget {}",
                secs(extra),
                secs(budget)
            ),
            &deadly,
        ),
        (
            "5,000 tenants under `ulimit -n 1024` (soft and hard)".to_string(),
            &limited,
        ),
    ] {
        let _ = writeln!(
            edge,
            "| {name} | {} | {} | {} | {} |",
            secs(s.m.wall),
            secs(s.m.cpu),
            mib(s.m.peak_kib),
            s.outcome_cell()
        );
    }
    let _ = writeln!(
        edge,
        "| fleet-list check at 10,000 tenants (`fleet_from_named_lists`, in-process, median of 5) | {} | – | – | – |",
        secs(list)
    );
    let _ = write!(
        md,
        "\nEdge cases. The short-timeout suite is the built-in one with `timeout = \"{}ms\"`, \
         `retries = {SHORT_RETRIES}`, `interval = \"{}ms\"`: one tenant's timeout budget is \
         6 checks × ({} attempts × {} + {} pause) = {}.\n\n{edge}",
        SHORT_TIMEOUT.as_millis(),
        SHORT_INTERVAL.as_millis(),
        SHORT_RETRIES + 1,
        secs(SHORT_TIMEOUT),
        secs(SHORT_INTERVAL),
        secs(budget)
    );
    targets.push(Target::new(
        "10,000-tenant list check < 0.1 s",
        secs(list),
        Some(list < Duration::from_millis(100)),
    ));
    targets.push(Target::new(
        "10 dead of 1,000 within one tenant-timeout budget of a healthy 1,000",
        format!(
            "{} vs {}: +{} (budget {})",
            secs(deadly.m.wall),
            secs(healthy.m.wall),
            secs(extra),
            secs(budget)
        ),
        Some(healthy.passed_all() && extra <= budget),
    ));
    targets.push(Target::new(
        "5,000 tenants pass under `ulimit -n 1024`",
        limited.outcome_cell(),
        Some(limited.passed_all()),
    ));
    drop(fleet);
    Section {
        markdown: md,
        targets,
    }
}
