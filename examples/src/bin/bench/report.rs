//! The Markdown the benchmark prints, and the generated block it writes
//! into BENCHMARKS.md (between `<!-- bench:begin -->` and
//! `<!-- bench:end -->`; added after the intro paragraph the first time).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Options;

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";
const HEADING: &str = "## Issue 12 side by side (one run of scripts/bench.sh)";

/// One of the issue's targets, next to the figure measured for it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) figure: String,
    /// `None`: not measured in this run.
    pub(crate) met: Option<bool>,
}

impl Target {
    pub(crate) fn new(what: &str, figure: String, met: Option<bool>) -> Self {
        Self {
            what: what.to_string(),
            figure,
            met,
        }
    }

    pub(crate) fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "**met**",
            Some(false) => "**not met**",
            None => "not measured",
        }
    }
}

/// A part of the run: its Markdown (heading, context line, tables) and the
/// targets it decides.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub(crate) markdown: String,
    pub(crate) targets: Vec<Target>,
}

/// What the whole run was.
#[derive(Debug, Clone)]
pub(crate) struct RunHeader {
    date: String,
    load: String,
    cores: usize,
    quick: bool,
    canary: String,
}

impl RunHeader {
    pub(crate) fn now(options: &Options) -> Self {
        let canary = std::process::Command::new(&options.canary)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Self {
            date: today(),
            load: load_average(),
            cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            quick: options.quick,
            canary,
        }
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "Run of {} ({}), {} cores, load average at start {}; measured binary: `{}` (release build).",
            self.date,
            if self.quick { "`--quick`" } else { "full" },
            self.cores,
            self.load,
            self.canary
        )
    }
}

/// The context line every table starts with.
pub(crate) fn context_line(what: &str) -> String {
    format!(
        "{what} — run of {}, load average at start {}.",
        today(),
        load_average()
    )
}

/// The 1-, 5- and 15-minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Seconds with a precision that suits the size.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub(crate) fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// The targets of every section that ran, as one table.
pub(crate) fn targets_markdown(registry: Option<&Section>, fleet: Option<&Section>) -> String {
    let mut out =
        String::from("### The issue's targets\n\n| target | this run | verdict |\n|---|---|---|\n");
    for t in registry
        .into_iter()
        .chain(fleet)
        .flat_map(|s| s.targets.iter())
    {
        let _ = writeln!(out, "| {} | {} | {} |", t.what, t.figure, t.verdict());
    }
    out
}

/// The generated block: how to rerun, the run's context, every table.
pub(crate) fn block(
    header: &RunHeader,
    registry: Option<&Section>,
    fleet: Option<&Section>,
) -> String {
    let mut out = String::new();
    out.push_str(
        "```sh\n\
         scripts/bench.sh                        # full run (fleet up to 10,000 tenants), a few minutes\n\
         scripts/bench.sh --quick                # fewer rounds, fleet up to 1,000; under a minute\n\
         scripts/bench.sh --write BENCHMARKS.md  # also replace this block\n\
         ```\n\n",
    );
    let _ = writeln!(out, "{}\n", header.line());
    out.push_str(
        "Everything below comes from that one run; the machine is shared, so \
         the ratios (measured side by side, configurations taking turns) \
         matter more than the absolute times.\n\n",
    );
    for section in registry.into_iter().chain(fleet) {
        out.push_str(&section.markdown);
        out.push('\n');
    }
    out.push_str(&targets_markdown(registry, fleet));
    out
}

/// Replaces the generated block of `path`, or adds it (with its heading)
/// before the first `## ` heading, after the intro.
pub(crate) fn write_block(path: &Path, block: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let generated = format!("{BEGIN}\n{block}{END}");
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{generated}{}", &text[..b], &text[e + END.len()..])
        }
        _ => {
            let at = text.find("\n## ").map_or(text.len(), |i| i + 1);
            format!("{}{HEADING}\n\n{generated}\n\n{}", &text[..at], &text[at..])
        }
    };
    std::fs::write(path, new)
}
