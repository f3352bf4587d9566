//! The `canary` binary: parses, calls one library function, prints.
//!
//! Exit codes are the outcomes' (README, "Outcomes and exit codes"):
//! 0 promoted / rolled back / passed / skipped / repaired, 1 rejected or
//! inconclusive, 2 usage, 3 failed, 4 inconsistent, 5 interrupted.

// This crate is the CLI's output code: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod app;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod github;
mod output;
mod signals;

use clap::{CommandFactory as _, FromArgMatches as _};

/// mimalloc, not the system allocator, on x86_64 Linux: a fleet run
/// allocates and frees per request on every worker thread, and glibc's
/// arena locks, consolidation and heap growth took about a fifth of
/// canary's CPU at 1,000 tenants (BENCHMARKS.md, "Fleet"). Other targets
/// keep the system allocator (canary-cli/Cargo.toml says why).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let matches = cli::Cli::command().get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing();
    raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(3);
        }
    };
    let code = runtime.block_on(app::run(cli, &matches));
    // Don't wait for lingering connections.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// A fleet of thousands of tenants needs a socket each for a moment: the
/// soft limit on open files (often 1,024) is raised to the hard limit at
/// start-up, as most servers do. Failing that is not fatal: a run that then
/// hits the limit reports those tenants as unreachable.
fn raise_open_files_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!("could not raise the open-files limit: {e}");
    }
}

/// Logs go to stderr, off unless RUST_LOG is set.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}
