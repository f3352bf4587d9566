//! One benchmark command for the speed-and-scale work: the side-by-side
//! table of registry moves (canary vs `skopeo copy --all` vs `crane tag` on
//! the real CNCF distribution registry 2.8 behind a 20 ms-per-request proxy)
//! and of fleet smoke runs (`canary smoke` on 1 → 10,000 tenants of a light
//! virtual fleet served from separate processes), in one run, as ratios.
//!
//! ```text
//! scripts/bench.sh                       # full run, ~2–5 minutes
//! scripts/bench.sh --quick               # fewer rounds, fleet up to 1,000
//! scripts/bench.sh --write BENCHMARKS.md # also replace the generated block
//! ```
//!
//! What is measured is the released binary (`target/release/canary`, or
//! `--canary PATH` / `CANARY_BIN`), a fresh process per measurement, since
//! that is what users run. The program also serves two hidden roles for
//! itself: `--fleet-host` (the virtual fleet, in a child process so the
//! tenants' CPU is not charged to canary) and `--measure` (a wrapper that
//! runs one command and reports its wall time, CPU time and peak memory
//! from `getrusage`).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a report is this program's output
#![allow(clippy::cast_precision_loss)]

mod fleet;
mod fleet_host;
mod guard;
mod measure;
mod proxy;
mod registry;
mod report;

use std::path::PathBuf;
use std::time::Duration;

/// Latency each request gets, at the registry proxy and at every tenant.
pub(crate) const LATENCY: Duration = Duration::from_millis(20);

/// Command-line options of a benchmark run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Fewer rounds, fleet up to 1,000 tenants.
    pub(crate) quick: bool,
    /// Replace the generated block of this file.
    pub(crate) write: Option<PathBuf>,
    /// The canary binary measured.
    pub(crate) canary: PathBuf,
    /// Run only one part (`registry` or `fleet`); both by default.
    pub(crate) only: Option<String>,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf)
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--quick] [--write FILE] [--canary PATH] [--only registry|fleet]\n\
         (build the binary first: cargo build --release -p canary-cli; scripts/bench.sh does)"
    );
    std::process::exit(2);
}

fn parse_options(args: &[String]) -> Options {
    let mut quick = false;
    let mut write = None;
    let mut canary = std::env::var_os("CANARY_BIN").map(PathBuf::from);
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--write" => write = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--canary" => canary = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--only" => only = Some(it.next().unwrap_or_else(|| usage()).clone()),
            _ => usage(),
        }
    }
    let canary = canary.unwrap_or_else(|| workspace_root().join("target/release/canary"));
    // Absolute: every tool runs in an empty directory of its own.
    let Ok(canary) = canary.canonicalize() else {
        eprintln!(
            "bench: {} does not exist; build it with `cargo build --release -p canary-cli`",
            canary.display()
        );
        std::process::exit(2);
    };
    Options {
        quick,
        write,
        canary,
        only,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--fleet-host") => fleet_host::main(&args[1..]),
        Some("--measure") => measure::wrapper_main(&args[1..]),
        _ => {}
    }
    let options = parse_options(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = std::time::Instant::now();
    let header = report::RunHeader::now(&options);
    println!("{}\n", header.line());
    let want = |part: &str| options.only.as_deref().is_none_or(|o| o == part);
    let registry = want("registry").then(|| runtime.block_on(registry::run(&options)));
    if let Some(section) = &registry {
        println!("{}", section.markdown);
    }
    let fleet = want("fleet").then(|| runtime.block_on(fleet::run(&options)));
    if let Some(section) = &fleet {
        println!("{}", section.markdown);
    }
    let block = report::block(&header, registry.as_ref(), fleet.as_ref());
    println!(
        "{}",
        report::targets_markdown(registry.as_ref(), fleet.as_ref())
    );
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    if let Some(path) = &options.write {
        report::write_block(path, &block).unwrap_or_else(|e| {
            eprintln!("bench: cannot write {}: {e}", path.display());
            std::process::exit(1);
        });
        eprintln!("bench: wrote the generated block of {}", path.display());
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
}
