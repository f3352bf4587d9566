//! Measuring one run of a command: wall time, CPU time (user + system) and
//! peak resident memory, the way `/usr/bin/time` does, through a wrapper
//! process (`bench --measure`). The wrapper's only child is the command, so
//! `getrusage(RUSAGE_CHILDREN)` after it exits is that run alone: its CPU
//! time and its high-water resident set (`ru_maxrss`, the child's VmHWM).
//! Optionally the wrapper lowers the open-files limit (soft and hard, as
//! `ulimit -n` does) before starting the command.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, setrlimit, Resource, UsageWho};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What one measured run gave.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) peak_kib: u64,
    /// The exit code (`None`: killed by a signal or at the deadline).
    pub(crate) code: Option<i32>,
    /// Killed because it ran past the deadline.
    pub(crate) timed_out: bool,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// `bench --measure OUT [--nofile N] [--deadline-ms D] -- PROGRAM ARGS…`:
/// runs the program with inherited stdio and writes `wall_us cpu_us
/// maxrss_kib code` to OUT; code `deadline` when it was killed at D.
pub(crate) fn wrapper_main(args: &[String]) -> ! {
    let mut it = args.iter();
    let out = PathBuf::from(it.next().expect("--measure OUT"));
    let mut nofile: Option<u64> = None;
    let mut deadline: Option<Duration> = None;
    let mut program = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nofile" => {
                nofile = Some(it.next().and_then(|n| n.parse().ok()).expect("--nofile N"));
            }
            "--deadline-ms" => {
                deadline = Some(Duration::from_millis(
                    it.next()
                        .and_then(|n| n.parse().ok())
                        .expect("--deadline-ms D"),
                ));
            }
            "--" => {
                program.extend(it.by_ref().cloned());
            }
            other => panic!("--measure: unexpected {other}"),
        }
    }
    if let Some(n) = nofile {
        setrlimit(Resource::RLIMIT_NOFILE, n, n).expect("setrlimit RLIMIT_NOFILE");
    }
    let (name, rest) = program
        .split_first()
        .expect("--measure: a program after --");
    let started = Instant::now();
    let mut child = std::process::Command::new(name)
        .args(rest)
        .spawn()
        .unwrap_or_else(|e| panic!("--measure: cannot run {name}: {e}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, killed) = if let Ok(status) = rx.recv_timeout(deadline.unwrap_or(Duration::MAX)) {
        (status, false)
    } else {
        let _ = kill(pid, Signal::SIGKILL);
        (rx.recv().expect("the waiting thread"), true)
    };
    let status = status.expect("wait for the program");
    let wall = started.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let us = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec()).unwrap_or(0)
    };
    let cpu_us = us(usage.user_time()) + us(usage.system_time());
    let line = format!(
        "{} {cpu_us} {} {}\n",
        wall.as_micros(),
        usage.max_rss(),
        if killed {
            "deadline".to_string()
        } else {
            status
                .code()
                .map_or_else(|| "signal".to_string(), |c| c.to_string())
        }
    );
    std::fs::write(&out, line).expect("write the measurement");
    std::process::exit(0);
}

/// A command to measure.
pub(crate) struct Run<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: Vec<String>,
    /// Working directory (an empty one, so no `canary.toml` is picked up).
    pub(crate) cwd: &'a Path,
    /// The environment: exactly these variables plus `PATH`.
    pub(crate) env: Vec<(String, String)>,
    /// Lower the open-files limit to this (soft and hard).
    pub(crate) nofile: Option<u64>,
    /// Kill the command after this long.
    pub(crate) deadline: Duration,
}

/// Runs `run` under the wrapper (this executable with `--measure`).
pub(crate) async fn measured(run: Run<'_>) -> Measured {
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("measure");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--measure").arg(&out);
    if let Some(n) = run.nofile {
        cmd.arg("--nofile").arg(n.to_string());
    }
    cmd.arg("--deadline-ms")
        .arg(run.deadline.as_millis().to_string());
    cmd.arg("--").arg(run.program).args(&run.args);
    cmd.current_dir(run.cwd).env_clear().kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(run.env);
    let output = cmd.output().await.expect("run the measuring wrapper");
    let line = std::fs::read_to_string(&out).unwrap_or_else(|_| {
        panic!(
            "the measuring wrapper wrote nothing ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> u64 { f[i].parse().expect("a measurement figure") };
    Measured {
        wall: Duration::from_micros(num(0)),
        cpu: Duration::from_micros(num(1)),
        peak_kib: num(2),
        code: f[3].parse().ok(),
        timed_out: f[3] == "deadline",
        stdout: output.stdout,
        stderr: output.stderr,
    }
}
