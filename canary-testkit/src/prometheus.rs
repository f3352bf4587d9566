//! A real Prometheus (Debian's `prometheus`, 2.x) on `127.0.0.1` and a free
//! port, in a temporary directory, for the metric-analysis tests. Two
//! modes:
//!
//! - [`Prometheus::scraping`]: scrapes the given targets every second,
//!   each with its own labels (`release="canary"`), as a real deployment
//!   scrapes a fleet.
//! - [`Prometheus::backfilled`]: serves series loaded beforehand with
//!   `promtool tsdb create-blocks-from openmetrics`, so a test knows every
//!   number a query returns. [`Backfill`] writes the OpenMetrics text.
//!
//! [`Prometheus`] waits until `/-/ready` answers 200; dropping it stops
//! Prometheus (also when the test panics), and a watchdog stops it too if
//! the test process is killed (Prometheus's parent shell reads the test's
//! end of a pipe and kills it at end-of-file). A missing binary is a setup
//! failure: the harness panics and says how to install it, it never skips.
//!
//! # Backfilling: what works
//!
//! - `promtool` cuts the samples into blocks aligned to 2-hour boundaries
//!   (a window across one gives two blocks; Prometheus reads both).
//! - The blocks must be in the data directory before Prometheus starts; it
//!   has no scrape target in this mode, so its head stays empty and never
//!   overlaps them. Retention is set to ten years: time retention counts
//!   from the newest block, so nothing is deleted under the test.
//! - [`Backfill`] puts the samples in the recent past (the window ends at
//!   least five minutes ago, on a whole minute) and every query pins its
//!   evaluation time with the `@` modifier: `increase(x[30m] @ END)`
//!   ([`Backfill::over`] writes `[30m] @ END`). With a sample exactly at
//!   each end of the range and counters that hold at 0 for the first step,
//!   `increase` needs no extrapolation and returns the exact totals (also
//!   with Prometheus 3's left-open ranges). Queried at "now" without `@`,
//!   `increase(x[1h])` still works but extrapolates by up to half a step.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::child::{exits_after_stdin_closes, start_on_free_port, ChildServer};
use crate::real_registry::run;

const INSTALL: &str = "Prometheus is not installed: the metric-analysis tests need Debian's \
                       `prometheus` package (`/usr/bin/prometheus` and `promtool`). Run \
                       scripts/test.sh, which installs it, or `apt-get install prometheus`";

/// A scrape target: `host:port` and the labels Prometheus adds to every
/// series scraped from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Labels added to its series (`release` → `canary`).
    pub labels: Vec<(String, String)>,
}

impl Target {
    /// A target at `addr` (`host:port`, or a URL whose host and port are
    /// taken).
    pub fn new(addr: impl Into<String>) -> Self {
        let addr = addr.into();
        let addr = addr
            .strip_prefix("http://")
            .unwrap_or(&addr)
            .trim_end_matches('/')
            .to_string();
        Self {
            addr,
            labels: Vec::new(),
        }
    }

    /// Adds a label to its series.
    #[must_use]
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.labels.push((name.to_string(), value.to_string()));
        self
    }
}

/// A running Prometheus. Stopped on drop.
pub struct Prometheus {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prometheus")
            .field("addr", &self.addr)
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish()
    }
}

/// The scrape interval of [`Prometheus::scraping`].
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

impl Prometheus {
    /// Starts a Prometheus scraping `targets` every second (`/metrics`, job
    /// `tenants`), each with its labels.
    ///
    /// # Panics
    ///
    /// When `prometheus` is missing or does not come up within 20 seconds.
    pub fn scraping(targets: &[Target]) -> Self {
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tenants\n    static_configs:\n",
        );
        for t in targets {
            let _ = writeln!(config, "      - targets: [{}]", yaml_string(&t.addr));
            if !t.labels.is_empty() {
                config.push_str("        labels:\n");
                for (k, v) in &t.labels {
                    let _ = writeln!(config, "          {k}: {}", yaml_string(v));
                }
            }
        }
        Self::start(&config, None)
    }

    /// Starts a Prometheus serving the series of `openmetrics` (an
    /// OpenMetrics text ending in `# EOF`, e.g. [`Backfill::to_openmetrics`]),
    /// loaded with `promtool tsdb create-blocks-from openmetrics`. It
    /// scrapes nothing.
    ///
    /// # Panics
    ///
    /// When `prometheus` or `promtool` is missing, `promtool` refuses the
    /// text, or Prometheus does not come up within 20 seconds.
    pub fn backfilled(openmetrics: &str) -> Self {
        Self::start("global:\n  evaluation_interval: 1m\n", Some(openmetrics))
    }

    fn start(config: &str, openmetrics: Option<&str>) -> Self {
        for binary in ["prometheus", "promtool"] {
            assert!(
                which(binary).is_some(),
                "`{binary}` is not on PATH. {INSTALL}"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("canary-prometheus-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).expect("data dir");
        if let Some(text) = openmetrics {
            let input = dir.path().join("series.om");
            fs::write(&input, text).expect("write the OpenMetrics file");
            run(Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
                .arg(&input)
                .arg(&data));
        }
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config).expect("write prometheus.yml");
        let mut prometheus = Self {
            addr: ([127, 0, 0, 1], 0).into(),
            dir,
            child: None,
        };
        let started = start_on_free_port(&mut prometheus, |prometheus, addr| {
            prometheus.addr = addr;
            let _ = fs::remove_file(prometheus.log_path());
            let args = vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address={addr}"),
                "--storage.tsdb.retention.time=10y".to_string(),
                "--log.level=info".to_string(),
            ];
            prometheus.child = Some(spawn_watched(
                &prometheus.log_path(),
                &prometheus.pid_path(),
                &args,
            ));
        });
        match started {
            Ok(()) => prometheus,
            Err(why) => panic!("prometheus did not start: {why}"),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    fn pid_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.pid")
    }

    /// Stops Prometheus now (a test of an unreachable Prometheus); drop
    /// does the same.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the pipe makes the watchdog stop Prometheus (SIGTERM).
        if exits_after_stdin_closes(&mut child, Duration::from_secs(10)) {
            return;
        }
        // It did not stop in time: kill it by the id its shell wrote.
        if let Ok(pid) = fs::read_to_string(self.pid_path()) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The temporary directory (configuration, data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prometheus's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ChildServer for Prometheus {
    fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    fn log(&self) -> String {
        Prometheus::log(self)
    }

    fn stop(&mut self) {
        Prometheus::stop(self);
    }

    /// `GET /-/ready` answers 200.
    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /-/ready HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).is_ok() && buf.ends_with(b" 200")
    }
}

/// Starts `prometheus args…` under a shell that kills it when its stdin (the
/// test's end of the pipe) closes, and writes its id to `pid`.
fn spawn_watched(log: &Path, pid: &Path, args: &[String]) -> Child {
    let script = r#"log="$1"; pidfile="$2"; shift 2
exec 3<&0
prometheus "$@" >"$log" 2>&1 </dev/null &
p=$!
echo "$p" >"$pidfile"
( read -r _ <&3; kill "$p" 2>/dev/null ) </dev/null &
w=$!
wait "$p"
s=$?
kill "$w" 2>/dev/null
exit "$s""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("canary-prometheus")
        .arg(log)
        .arg(pid)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sh for prometheus: {e}"))
}

fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(binary))
            .find(|p| p.is_file())
    })
}

fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Series to backfill, written as OpenMetrics: counters and histograms
/// that grow evenly over a window (30 minutes, a sample a minute) ending at
/// least five minutes ago, on a whole minute. Each series holds at 0 for
/// its first step, then climbs to its final value, so
/// `increase(x{…}[30m] @ END)` is that value exactly.
#[derive(Debug, Clone)]
pub struct Backfill {
    end: u64,
    steps: u64,
    step: u64,
    families: BTreeMap<String, (&'static str, Vec<String>)>,
}

impl Default for Backfill {
    fn default() -> Self {
        Self::new()
    }
}

impl Backfill {
    /// An empty backfill whose window ends five to six minutes ago.
    pub fn new() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        Self {
            end: (now - 300) / 60 * 60,
            steps: 30,
            step: 60,
            families: BTreeMap::new(),
        }
    }

    /// The window's end, in Unix seconds: what `@` pins queries to.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// What follows a selector to read the whole window at its end:
    /// `[30m] @ 1700000000`.
    pub fn over(&self) -> String {
        format!("[{}m] @ {}", self.steps * self.step / 60, self.end)
    }

    fn times(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let start = self.end - self.steps * self.step;
        (0..=self.steps).map(move |i| (start + i * self.step, i))
    }

    /// The value at step `i` of a series that ends at `total`.
    fn at(&self, i: u64, total: u64) -> u64 {
        total * i.saturating_sub(1) / (self.steps - 1)
    }

    fn family(&mut self, name: &str, kind: &'static str) -> &mut Vec<String> {
        let entry = self
            .families
            .entry(name.to_string())
            .or_insert_with(|| (kind, Vec::new()));
        assert_eq!(entry.0, kind, "`{name}` is already a {}", entry.0);
        &mut entry.1
    }

    /// A counter `name` (ending in `_total`) with `labels`, reaching
    /// `total` at the window's end.
    ///
    /// # Panics
    ///
    /// When `name` does not end in `_total`.
    pub fn counter(&mut self, name: &str, labels: &[(&str, &str)], total: u64) -> &mut Self {
        let family = name
            .strip_suffix("_total")
            .unwrap_or_else(|| panic!("a counter's name ends in _total: `{name}`"));
        let labels = render_labels(labels, None);
        let lines: Vec<String> = self
            .times()
            .map(|(t, i)| format!("{name}{labels} {} {t}", self.at(i, total)))
            .collect();
        self.family(family, "counter").extend(lines);
        self
    }

    /// A histogram `name` with `labels` whose buckets reach `buckets`
    /// (`(le, cumulative count)`, ascending; a `+Inf` bucket equal to the
    /// last count is added when missing) and whose sum reaches `sum` at
    /// the window's end.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
    ) -> &mut Self {
        let mut buckets = buckets.to_vec();
        let count = buckets.last().map_or(0, |b| b.1);
        if buckets.last().is_none_or(|b| b.0.is_finite()) {
            buckets.push((f64::INFINITY, count));
        }
        let mut lines = Vec::new();
        for (t, i) in self.times() {
            for (le, n) in &buckets {
                let le = if le.is_finite() {
                    le.to_string()
                } else {
                    "+Inf".to_string()
                };
                let l = render_labels(labels, Some(&le));
                lines.push(format!("{name}_bucket{l} {} {t}", self.at(i, *n)));
            }
            let l = render_labels(labels, None);
            lines.push(format!("{name}_count{l} {} {t}", self.at(i, count)));
            // Sums grow like the counts, in the same proportion.
            #[allow(clippy::cast_precision_loss)]
            let share = self.at(i, 1_000_000) as f64 / 1e6;
            lines.push(format!("{name}_sum{l} {} {t}", sum * share));
        }
        self.family(name, "histogram").extend(lines);
        self
    }

    /// The OpenMetrics text: one family after another, each series' samples
    /// in time order, `# EOF` at the end.
    pub fn to_openmetrics(&self) -> String {
        let mut out = String::new();
        for (name, (kind, lines)) in &self.families {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for line in lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

fn render_labels(labels: &[(&str, &str)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_writes_openmetrics_that_ends_where_it_says() {
        let mut b = Backfill::new();
        b.counter("req_total", &[("release", "canary")], 59);
        b.histogram("lat", &[("release", "a\"b")], &[(0.1, 3), (1.0, 4)], 2.0);
        let text = b.to_openmetrics();
        assert!(text.starts_with("# TYPE lat histogram\n"), "{text}");
        assert!(text.contains("# TYPE req counter\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let end = b.end();
        assert!(text.contains(&format!("req_total{{release=\"canary\"}} 59 {end}\n")));
        assert!(text.contains(&format!(
            "lat_bucket{{release=\"a\\\"b\",le=\"+Inf\"}} 4 {end}\n"
        )));
        let start = end - 1800;
        assert!(text.contains(&format!("req_total{{release=\"canary\"}} 0 {start}\n")));
        assert!(text.contains(&format!(
            "req_total{{release=\"canary\"}} 0 {}\n",
            start + 60
        )));
        assert_eq!(b.over(), format!("[30m] @ {end}"));
    }

    #[test]
    fn starts_serves_and_stops() {
        let mut b = Backfill::new();
        b.counter("req_total", &[], 1);
        let mut p = Prometheus::backfilled(&b.to_openmetrics());
        let addr = p.addr();
        assert!(p.ready());
        assert!(fs::read_dir(p.dir().join("data")).unwrap().count() > 0);
        p.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
        drop(p);

        let p =
            Prometheus::scraping(&[Target::new("http://127.0.0.1:9/").label("release", "canary")]);
        let config = fs::read_to_string(p.dir().join("prometheus.yml")).unwrap();
        assert!(config.contains("- targets: [\"127.0.0.1:9\"]"), "{config}");
        assert!(config.contains("release: \"canary\""), "{config}");
        let addr = p.addr();
        drop(p);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }
}
