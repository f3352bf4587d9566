//! Registry part: a manual promote of a two-image release (an OCI index and
//! a Docker manifest list, two platforms each, real blobs) on the real CNCF
//! distribution registry 2.8 behind a proxy adding 20 ms per request —
//! `canary promote --no-verify` (ledger off) against `skopeo copy --all` ×2
//! and `crane tag` ×2, each a fresh process per measurement, taking turns
//! round after round; medians.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use canary_testkit::oci::{Fixture, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use canary_testkit::real_registry::RealRegistry;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use crate::proxy::{self, DelayProxy, Seen};
use crate::report::{context_line, median, ratio, secs, Section, Target};
use crate::{Options, LATENCY};

/// The build `latest` holds before the first measurement.
const OLD: &str = "0ld0000000000000000000000000000000000000";
/// The two builds every measurement alternates between, so each moves
/// `latest` to a build it does not hold.
const BUILDS: [&str; 2] = [
    "1111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222",
];
const REPOS: [&str; 2] = ["bench/a", "bench/b"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tool {
    Canary,
    Skopeo,
    Crane,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Self::Canary => "canary `promote --no-verify` (ledger off), one process",
            Self::Skopeo => "`skopeo copy --all` ×2 (one per image, sequential)",
            Self::Crane => "`crane tag` ×2 (one per image, sequential)",
        }
    }
}

struct Sample {
    wall: Duration,
    seen: Vec<Seen>,
}

struct Tools {
    canary: PathBuf,
    skopeo: Option<PathBuf>,
    crane: Option<PathBuf>,
    /// An empty HOME and working directory: no user config, credentials or
    /// `canary.toml` leak in.
    home: tempfile::TempDir,
    policy: PathBuf,
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// `crane` from PATH, or from the shared tools folder beside the clone.
fn find_crane() -> Option<PathBuf> {
    which("crane").or_else(|| {
        let install = crate::workspace_root().join("../shared/tools/install.sh");
        let out = std::process::Command::new("bash")
            .arg(&install)
            .output()
            .ok()?;
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(dir.join("crane")).filter(|p| p.is_file())
    })
}

async fn run_tool(tools: &Tools, tool: Tool, host: &str, sha: &str) -> Duration {
    let mut commands: Vec<(PathBuf, Vec<String>)> = Vec::new();
    match tool {
        Tool::Canary => {
            let mut args: Vec<String> = [
                "promote",
                "--sha",
                sha,
                "--no-verify",
                "--reason",
                "bench",
                "--ledger=false",
                "--quiet",
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            for repo in REPOS {
                args.extend(["--image".to_string(), format!("{host}/{repo}")]);
            }
            commands.push((tools.canary.clone(), args));
        }
        Tool::Skopeo => {
            let skopeo = tools.skopeo.clone().expect("skopeo");
            for repo in REPOS {
                commands.push((
                    skopeo.clone(),
                    vec![
                        "--policy".into(),
                        tools.policy.display().to_string(),
                        "copy".into(),
                        "--quiet".into(),
                        "--all".into(),
                        "--src-tls-verify=false".into(),
                        "--dest-tls-verify=false".into(),
                        format!("docker://{host}/{repo}:staging-{sha}"),
                        format!("docker://{host}/{repo}:latest"),
                    ],
                ));
            }
        }
        Tool::Crane => {
            let crane = tools.crane.clone().expect("crane");
            for repo in REPOS {
                commands.push((
                    crane.clone(),
                    vec![
                        "tag".into(),
                        "--insecure".into(),
                        format!("{host}/{repo}:staging-{sha}"),
                        "latest".into(),
                    ],
                ));
            }
        }
    }
    let started = Instant::now();
    for (program, args) in commands {
        let out = tokio::process::Command::new(&program)
            .args(&args)
            .current_dir(tools.home.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", tools.home.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} {} failed ({}): {}{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    started.elapsed()
}

/// The digest `latest` has, asked of the registry directly (not through
/// the proxy, so the check is not counted).
async fn latest_digest(registry: &RealRegistry, repo: &str) -> String {
    let mut stream = BufReader::new(
        TcpStream::connect(registry.addr())
            .await
            .expect("connect to the registry"),
    );
    let accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
    let (status, headers) = proxy::exchange(
        &mut stream,
        "HEAD",
        &format!("/v2/{repo}/manifests/latest"),
        &[("Accept", &accept)],
    )
    .await
    .expect("HEAD latest");
    assert_eq!(status, 200, "HEAD {repo}:latest");
    headers
        .into_iter()
        .find(|(k, _)| k == "docker-content-digest")
        .map(|(_, v)| v)
        .expect("Docker-Content-Digest")
}

/// Median of a fresh process's start-up (`--version`), for context.
async fn start_up(program: &Path, arg: &str, rounds: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let out = tokio::process::Command::new(program)
            .arg(arg)
            .output()
            .await
            .expect("run --version");
        assert!(out.status.success(), "{} {arg}", program.display());
        times.push(started.elapsed());
    }
    median(times)
}

fn breakdown(seen: &[Seen]) -> String {
    let tls = seen.iter().filter(|s| s.is_tls()).count();
    let http: Vec<&Seen> = seen.iter().filter(|s| !s.is_tls()).collect();
    let ping = http.iter().filter(|s| s.is_ping()).count();
    let manifests = http.iter().filter(|s| s.is_manifest()).count();
    let blobs = http.iter().filter(|s| s.is_blob()).count();
    let other = http.len() - ping - manifests - blobs;
    let mut by_method: HashMap<&str, usize> = HashMap::new();
    for s in &http {
        if s.is_manifest() {
            *by_method.entry(s.method.as_str()).or_default() += 1;
        }
    }
    let mut methods: Vec<_> = by_method.into_iter().collect();
    methods.sort_unstable();
    let methods = methods
        .iter()
        .map(|(m, n)| format!("{n} {m}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} | {tls} | {ping} | {manifests} ({methods}) | {blobs} | {other}",
        http.len()
    )
}

pub(crate) async fn run(options: &Options) -> Section {
    let rounds = if options.quick { 3 } else { 7 };
    let context = context_line("Registry");
    eprintln!("bench: registry: starting docker-registry 2.8 and seeding two images × 3 builds");
    let registry = tokio::task::block_in_place(RealRegistry::open);
    let mut expected: HashMap<(&str, &str), String> = HashMap::new();
    tokio::task::block_in_place(|| {
        for sha in [OLD, BUILDS[0], BUILDS[1]] {
            let a = Fixture::index(&format!("bench-a-{sha}")).build();
            let b = Fixture::index(&format!("bench-b-{sha}")).docker().build();
            for (repo, layout) in REPOS.iter().zip([&a, &b]) {
                layout.push(&registry, repo, &format!("staging-{sha}"));
                if sha == OLD {
                    layout.push(&registry, repo, "latest");
                }
                expected.insert((repo, sha), layout.top().digest.clone());
            }
        }
    });
    let proxy = DelayProxy::start(registry.addr(), LATENCY).await;
    let host = proxy.host();
    let rtt = proxy::round_trip(proxy.addr(), 15).await;
    let floor = rtt * 5;

    let home = tempfile::tempdir().expect("temp dir");
    let policy = home.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy.json");
    let tools = Tools {
        canary: options.canary.clone(),
        skopeo: which("skopeo"),
        crane: find_crane(),
        home,
        policy,
    };
    let mut order = vec![Tool::Canary];
    if tools.skopeo.is_some() {
        order.push(Tool::Skopeo);
    }
    if tools.crane.is_some() {
        order.push(Tool::Crane);
    }

    eprintln!(
        "bench: registry: {rounds} rounds of {} tools through the proxy",
        order.len()
    );
    let mut samples: HashMap<Tool, Vec<Sample>> = HashMap::new();
    let mut holds = OLD;
    for round in 0..rounds {
        for k in 0..order.len() {
            // Each round starts with the next tool, so drift (caches, the
            // other load on the machine) reaches every tool alike.
            let tool = order[(round + k) % order.len()];
            let sha = if holds == BUILDS[0] {
                BUILDS[1]
            } else {
                BUILDS[0]
            };
            let mark = proxy.mark();
            let wall = run_tool(&tools, tool, &host, sha).await;
            let seen = proxy.since(mark);
            for repo in REPOS {
                assert_eq!(
                    latest_digest(&registry, repo).await,
                    expected[&(repo, sha)],
                    "{tool:?} left {repo}:latest on the staging digest"
                );
            }
            holds = sha;
            samples.entry(tool).or_default().push(Sample { wall, seen });
        }
    }

    let canary_start = start_up(&tools.canary, "--version", 5).await;
    let skopeo_start = match &tools.skopeo {
        Some(p) => Some(start_up(p, "--version", 5).await),
        None => None,
    };
    let crane_start = match &tools.crane {
        Some(p) => Some(start_up(p, "version", 5).await),
        None => None,
    };

    let wall = |tool: Tool| {
        samples
            .get(&tool)
            .map(|s| median(s.iter().map(|x| x.wall).collect()))
    };
    let canary = wall(Tool::Canary).expect("canary measured");
    let mut md = String::from("### Registry: manual promote of a two-image release\n\n");
    let _ = writeln!(
        md,
        "{context} The real CNCF distribution registry 2.8 (Debian `docker-registry`) on \
         loopback behind a proxy that holds every HTTP request {} ms and counts it (every tool first \
         tries HTTPS on the plain-HTTP port; that attempt is held and counted too); \
         image A an OCI index, image B a Docker manifest list, two platforms each, real \
         blobs. Each cell is the median of {rounds} cold runs (a fresh process each), the \
         tools taking turns; every run moves `latest` of both images to a build it does not \
         hold, and the result is checked against the staging digests.\n",
        LATENCY.as_millis()
    );
    md.push_str(
        "| tool | wall: median (min–max) | × floor | canary faster by | requests | HTTPS attempts | pings | manifests | blobs | other |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        md,
        "| floor: ping + 4 round trips (5 × {} measured `GET /v2/` through the proxy) | {} | 1.00× | – | 5 | – | – | – | – | – |",
        secs(rtt),
        secs(floor)
    );
    for tool in [Tool::Canary, Tool::Skopeo, Tool::Crane] {
        let Some(w) = wall(tool) else {
            let _ = writeln!(md, "| {} | not installed | | | | | | | | |", tool.label());
            continue;
        };
        let last = samples[&tool].last().expect("a sample");
        let faster = if tool == Tool::Canary {
            "–".to_string()
        } else {
            format!("{:.1}×", ratio(w, canary))
        };
        let _ = writeln!(
            md,
            "| {} | {} ({}–{}) | {:.2}× | {faster} | {} |",
            tool.label(),
            secs(w),
            secs(
                samples[&tool]
                    .iter()
                    .map(|x| x.wall)
                    .min()
                    .unwrap_or_default()
            ),
            secs(
                samples[&tool]
                    .iter()
                    .map(|x| x.wall)
                    .max()
                    .unwrap_or_default()
            ),
            ratio(w, floor),
            breakdown(&last.seen)
        );
    }
    let _ = writeln!(
        md,
        "\nProcess start (`--version`, median of 5, included in the rows above): canary {}, skopeo {}, crane {}.",
        secs(canary_start),
        skopeo_start.map_or_else(|| "not installed".into(), secs),
        crane_start.map_or_else(|| "not installed".into(), secs),
    );

    let mut targets = vec![Target::new(
        "2-image manual promote ≤ 1.5× floor",
        format!(
            "{} vs floor {} = {:.2}×",
            secs(canary),
            secs(floor),
            ratio(canary, floor)
        ),
        Some(ratio(canary, floor) <= 1.5),
    )];
    targets.push(match wall(Tool::Skopeo) {
        Some(s) => Target::new(
            "≥ 4× faster than `skopeo copy --all` ×2",
            format!("{} vs {} = {:.1}×", secs(canary), secs(s), ratio(s, canary)),
            Some(ratio(s, canary) >= 4.0),
        ),
        None => Target::new(
            "≥ 4× faster than `skopeo copy --all` ×2",
            "skopeo not installed".into(),
            None,
        ),
    });
    targets.push(match wall(Tool::Crane) {
        Some(c) => Target::new(
            "faster than two `crane tag`s",
            format!("{} vs {} = {:.1}×", secs(canary), secs(c), ratio(c, canary)),
            Some(canary < c),
        ),
        None => Target::new(
            "faster than two `crane tag`s",
            "crane not found".into(),
            None,
        ),
    });
    drop(proxy);
    drop(registry);
    Section {
        markdown: md,
        targets,
    }
}
