//! Fleet benchmark: the built-in `workspace-server` suite against N
//! reference tenants on loopback, each answering with 20 ms of added
//! latency, for N = 1, 10, 100, 1000 (or the N given as arguments).
//!
//! ```text
//! cargo run --release -p canary-examples --bin fleet_bench            # 1 10 100 1000
//! cargo run --release -p canary-examples --bin fleet_bench -- 1 10    # quick
//! cargo run --release -p canary-examples --bin fleet_bench -- --full  # also measure 1000 one by one
//! ```
//!
//! This process hosts the tenants. Every measurement runs in a fresh child
//! process (this binary with `--child`), the way `canary smoke` would run:
//! it reads the fleet from `CANARY_TENANT_URLS` / `CANARY_TENANT_TOKENS`,
//! runs the suite, and reports its wall time and its own peak memory
//! (`VmHWM` from `/proc/self/status`), so the tenants' memory is not
//! counted and each figure is the peak of that one run.
//!
//! Modes: `seq` runs tenant after tenant (the original pipeline's script);
//! `c=K` runs through `canary_core::Promoter::smoke` with concurrency K
//! (256 is the default policy; 32 was the first default).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a report is this program's output
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_core::{
    GitSha, MemoryRegistry, Outcome, Policy, Promoter, RunContext, SmokeSuite, TenantFleet,
};
use canary_smoke::{fleet_from_env, HttpOptions, HttpSuite, Suite, SystemClock};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const LATENCY: Duration = Duration::from_millis(20);
const SHA: &str = "4c1d56e0123456789abcdef0123456789abcdef0";
const CONCURRENCIES: [usize; 3] = [32, 256, 1024];

/// What one child run measured.
struct Figures {
    wall_ms: f64,
    cpu_ms: f64,
    peak_kib: u64,
    checks: usize,
    passed: usize,
}

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of this process so far, in ms: with a wall
/// time close to it, the run is bound by this machine's CPU, not by the
/// tenants' latency.
fn cpu_ms() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the `(comm)`: state is field 3; utime, stime are 14, 15.
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: u64 = f.get(11)?.parse().ok()?;
            let k: u64 = f.get(12)?.parse().ok()?;
            Some(u + k)
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    ticks as f64 * 10.0
}

/// The child: run the suite on the fleet from the environment, print one
/// line `wall_ms peak_kib checks passed`. The lists arrive in files named
/// by `<VAR>_FILE` (10,000 URLs exceed the kernel's limit for one
/// environment string) and are read through the same `fleet_from_env`.
async fn child(mode: &str) {
    let fleet = fleet_from_env("CANARY_TENANT_URLS", "CANARY_TENANT_TOKENS", |k| {
        let path = std::env::var(format!("{k}_FILE")).ok()?;
        std::fs::read_to_string(path).ok()
    })
    .expect("fleet from the environment");
    let suite = HttpSuite::new(
        Suite::builtin("workspace-server").expect("built-in suite"),
        HttpOptions::default(),
    )
    .expect("suite");
    let sha: GitSha = SHA.parse().expect("sha");
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let (checks, passed) = if mode == "seq" {
        let context = RunContext {
            sha: Some(sha),
            run_id: "bench".into(),
        };
        let mut checks = 0;
        let mut passed = 0;
        for tenant in fleet.tenants().await.expect("tenants") {
            let results = suite.run(&tenant, &context).await;
            checks += results.len();
            passed += results
                .iter()
                .filter(|r| r.status == canary_core::CheckStatus::Passed)
                .count();
        }
        (checks, passed)
    } else {
        let concurrency: usize = mode
            .strip_prefix("c=")
            .and_then(|c| c.parse().ok())
            .expect("mode seq or c=K");
        let promoter = Promoter::new(
            Arc::new(MemoryRegistry::new()),
            Arc::new(fleet),
            Arc::new(suite),
            Arc::new(SystemClock),
        )
        .with_policy(Policy {
            concurrency,
            ..Policy::default()
        });
        let report = promoter.smoke(Some(sha), "bench").await;
        assert_eq!(report.outcome, Outcome::Passed, "{}", report.reason);
        report.check_counts()
    };
    let wall = started.elapsed();
    println!(
        "{:.1} {:.0} {} {checks} {passed}",
        wall.as_secs_f64() * 1000.0,
        cpu_ms() - cpu_before,
        peak_kib()
    );
}

async fn measure(urls: &str, tokens: &str, mode: &str) -> Figures {
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("temp dir");
    let (urls_file, tokens_file) = (dir.path().join("urls"), dir.path().join("tokens"));
    std::fs::write(&urls_file, urls).expect("write urls");
    std::fs::write(&tokens_file, tokens).expect("write tokens");
    let out = tokio::process::Command::new(exe)
        .args(["--child", mode])
        .env("CANARY_TENANT_URLS_FILE", &urls_file)
        .env("CANARY_TENANT_TOKENS_FILE", &tokens_file)
        .output()
        .await
        .expect("run the child");
    assert!(
        out.status.success(),
        "child {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    Figures {
        wall_ms: f[0].parse().expect("wall"),
        cpu_ms: f[1].parse().expect("cpu"),
        peak_kib: f[2].parse().expect("peak"),
        checks: f[3].parse().expect("checks"),
        passed: f[4].parse().expect("passed"),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn secs(ms: f64) -> String {
    if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(args.get(1).map_or("c=32", String::as_str)).await;
        return;
    }
    let full = args.iter().any(|a| a == "--full");
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![1, 10, 100, 1000];
    }
    println!(
        "fleet_bench: built-in workspace-server suite (6 checks), {} ms added latency per answer, tenants on loopback",
        LATENCY.as_millis()
    );
    println!(
        "each cell: wall time of the whole suite on the fleet / CPU time of the run / peak memory (VmHWM) of the run"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "cores: {}, load average at start: {}\n",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let mut header = format!("| {:>5} | {:<32} |", "N", "one by one (seed)");
    for c in CONCURRENCIES {
        let _ = std::fmt::Write::write_fmt(
            &mut header,
            format_args!(" {:<32} |", format!("concurrency {c}")),
        );
    }
    println!("{header}");
    println!("|{}", "---|".repeat(2 + CONCURRENCIES.len()));
    let mut one_tenant_ms = None;
    let mut seq_per_tenant_ms = None;
    for n in sizes {
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            servers.push(
                TenantServer::start(TenantOptions {
                    token: format!("bench-token-{i}"),
                    version: SHA.into(),
                    fault: TenantFault::Slow(LATENCY),
                })
                .await,
            );
        }
        let urls: Vec<String> = servers.iter().map(TenantServer::url).collect();
        let tokens: Vec<String> = (0..n).map(|i| format!("bench-token-{i}")).collect();
        let (urls, tokens) = (urls.join(","), tokens.join(","));

        let seq = if n <= 100 || full {
            let f = measure(&urls, &tokens, "seq").await;
            assert_eq!(f.passed, f.checks, "sequential run: every check passes");
            seq_per_tenant_ms = Some(f.wall_ms / n as f64);
            format!(
                "{} / {} / {}",
                secs(f.wall_ms),
                secs(f.cpu_ms),
                mib(f.peak_kib)
            )
        } else {
            let per = seq_per_tenant_ms.unwrap_or(6.0 * LATENCY.as_millis() as f64);
            format!("~{} (extrapolated)", secs(per * n as f64))
        };
        let mut row = format!("| {n:>5} | {seq:<32} |");
        for c in CONCURRENCIES {
            let f = measure(&urls, &tokens, &format!("c={c}")).await;
            assert_eq!(f.checks, 6 * n);
            assert_eq!(f.passed, f.checks, "every check passes");
            if n == 1 && c == 32 {
                one_tenant_ms = Some(f.wall_ms);
            }
            let ratio =
                one_tenant_ms.map_or(String::new(), |one| format!(" ({:.1}×)", f.wall_ms / one));
            let _ = std::fmt::Write::write_fmt(
                &mut row,
                format_args!(
                    " {:<32} |",
                    format!(
                        "{}{ratio} / {} / {}",
                        secs(f.wall_ms),
                        secs(f.cpu_ms),
                        mib(f.peak_kib)
                    )
                ),
            );
        }
        println!("{row}");
        drop(servers);
    }
    println!("\n(×) = wall time relative to one tenant at concurrency 32.");
}
