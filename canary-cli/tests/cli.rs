//! The real `canary` binary: help text, bad input, secrets on argv.

// Counts are printed for the CI log.
#![allow(clippy::print_stdout)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;

/// A loopback listener that counts connections: bad input must be refused
/// before any request, so nothing may ever connect.
struct Tripwire {
    listener: TcpListener,
}

impl Tripwire {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    fn host(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    fn connections(&self) -> usize {
        let mut n = 0;
        loop {
            match self.listener.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

const TOKEN: &str = "tok-SECRET-5f2a9c";

fn canary(dir: &Path, wire: &Tripwire) -> Command {
    let mut cmd = Command::cargo_bin("canary").unwrap();
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env(
            "CANARY_IMAGES",
            format!("{}/acme/platform,{}/acme/tenant", wire.host(), wire.host()),
        )
        .env("CANARY_TENANT_URLS", format!("http://{}", wire.host()))
        .env("CANARY_TENANT_TOKENS", TOKEN);
    cmd
}

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static str)],
    message: &'static str,
}

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[test]
fn bad_input_is_refused_before_any_request() {
    let cases = [
        Case { name: "sha not hex", args: &["verify", "--sha", "xyz1234"], env: &[], files: &[], message: "sha `xyz1234` is not hexadecimal" },
        Case { name: "sha too short", args: &["verify", "--sha", "4c1d5"], env: &[], files: &[], message: "sha `4c1d5` has 5 characters" },
        Case { name: "sha uppercase", args: &["rollback", "4C1D56E"], env: &[], files: &[], message: "has uppercase letters" },
        Case { name: "bad tag template", args: &["verify", "--sha", SHA, "--staging-tag", "staging/{sha}"], env: &[], files: &[], message: "staging tag template `staging/{sha}` (flag --staging-tag) renders an invalid tag" },
        Case { name: "template without sha", args: &["verify", "--sha", SHA, "--staging-tag", "staging"], env: &[], files: &[], message: "does not contain `{sha}`" },
        Case { name: "unknown placeholder", args: &["verify", "--sha", SHA, "--promoted-tag", "latest-{branch}"], env: &[], files: &[], message: "unknown placeholder" },
        Case { name: "invalid image", args: &["verify", "--sha", SHA, "--image", "ghcr.io/Acme/x"], env: &[], files: &[], message: "image `ghcr.io/Acme/x` has an invalid path component" },
        Case { name: "image with tag", args: &["verify", "--sha", SHA, "--image", "ghcr.io/acme/x:latest"], env: &[], files: &[], message: "carries a tag" },
        Case { name: "no images", args: &["verify", "--sha", SHA], env: &[("CANARY_IMAGES", "")], files: &[], message: "release images are not configured" },
        Case { name: "mismatched fleet lists", args: &["verify", "--sha", SHA], env: &[("CANARY_TENANT_URLS", "https://a.example,https://b.example")], files: &[], message: "CANARY_TENANT" },
        Case { name: "non-https tenant", args: &["verify", "--sha", SHA], env: &[("CANARY_TENANT_URLS", "http://tenant.example.com")], files: &[], message: "https" },
        Case { name: "unparsable tenant url", args: &["smoke"], env: &[("CANARY_TENANT_URLS", "https://exa mple.com")], files: &[], message: "CANARY_TENANT_URLS" },
        Case { name: "unreadable config", args: &["verify", "--sha", SHA, "--config", "nope.toml"], env: &[], files: &[], message: "config file `nope.toml` cannot be read" },
        Case { name: "config unknown key", args: &["verify", "--sha", SHA, "--config", "c.toml"], env: &[], files: &[("c.toml", "[release]\nimagez = []\n")], message: "config file `c.toml` line 2 column 1 is invalid" },
        Case { name: "config bad toml", args: &["config"], env: &[], files: &[("canary.toml", "[release\n")], message: "config file `canary.toml` line 1" },
        Case { name: "config bad on_empty", args: &["verify", "--sha", SHA], env: &[], files: &[("canary.toml", "[fleet]\non_empty = \"maybe\"\n")], message: "on_empty_fleet `maybe` (file canary.toml: fleet.on_empty) is neither" },
        Case { name: "token on argv", args: &["smoke", "--token", "hunter2-argv-secret"], env: &[], files: &[], message: "--token would put a secret on the command line" },
        Case { name: "password on argv", args: &["verify", "--sha", SHA, "--registry-password", "hunter2-argv-secret"], env: &[], files: &[], message: "--registry-password would put a secret" },
        Case { name: "bad wait", args: &["verify", "--sha", SHA, "--wait", "6x"], env: &[], files: &[], message: "wait `6x` (flag --wait) is not a duration" },
        Case { name: "bad deadline env", args: &["verify", "--sha", SHA], env: &[("CANARY_ROLLOUT_DEADLINE", "soon")], files: &[], message: "rollout deadline `soon` (env CANARY_ROLLOUT_DEADLINE)" },
        Case { name: "guard without ledger or target", args: &["guard", "--sha", SHA, "--ledger", "false"], env: &[], files: &[], message: "is disabled, and the guard finds the release to revert to in it" },
        Case { name: "guard bad interval", args: &["guard", "--sha", SHA, "--interval", "0s"], env: &[], files: &[], message: "guard interval `0s` (flag --interval) is zero" },
        Case { name: "notify url unset", args: &["verify", "--sha", SHA], env: &[], files: &[("canary.toml", "[[notify]]\nurl_env = \"HOOK_URL_UNSET\"\n")], message: "notify url_env HOOK_URL_UNSET names a variable that is unset or empty" },
        Case { name: "notify bad outcome", args: &["verify", "--sha", SHA], env: &[], files: &[("canary.toml", "[[notify]]\nurl_env = \"HOOK\"\non = [\"promotd\"]\n")], message: "notify outcome `promotd`" },
        Case { name: "zero tenant deadline", args: &["verify", "--sha", SHA, "--tenant-deadline", "0s"], env: &[], files: &[], message: "tenant deadline `0s` (flag --tenant-deadline) is zero" },
        Case { name: "bad shard", args: &["verify", "--sha", SHA, "--shard", "0/4", "--report", "r.json"], env: &[], files: &[], message: "--shard `0/4` has K outside 1..=4" },
        Case { name: "decide without reports", args: &["decide", "--reports", "nowhere"], env: &[], files: &[], message: "reports directory `nowhere` cannot be read" },
        Case { name: "zero concurrency", args: &["verify", "--sha", SHA, "--concurrency", "0"], env: &[], files: &[], message: "concurrency `0` (flag --concurrency) is not a number from 1 to 10000" },
        Case { name: "bad bool", args: &["verify", "--sha", SHA, "--wait-for-rollout=perhaps"], env: &[], files: &[], message: "is not a boolean" },
        Case { name: "on_empty fail", args: &["verify", "--sha", SHA], env: &[("CANARY_TENANT_URLS", ""), ("CANARY_TENANT_TOKENS", ""), ("CANARY_ON_EMPTY_FLEET", "fail")], files: &[], message: "canary fleet is empty" },
        Case { name: "promote without no-verify", args: &["promote", "--sha", SHA, "--reason", "x"], env: &[], files: &[], message: "--no-verify" },
        Case { name: "promote without reason", args: &["promote", "--sha", SHA, "--no-verify"], env: &[], files: &[], message: "--reason is missing" },
        Case { name: "unknown builtin suite", args: &["smoke", "--suite", "nope"], env: &[], files: &[], message: "nope" },
        Case { name: "missing suite file via --suite", args: &["smoke", "--suite", "missing.toml"], env: &[], files: &[], message: "missing.toml" },
        Case { name: "missing suite file", args: &["smoke", "--suite-file", "missing.toml"], env: &[], files: &[], message: "missing.toml" },
        Case { name: "bad suite file", args: &["smoke", "--suite-file", "s.toml"], env: &[], files: &[("s.toml", "[[check]]\nname = \"x\"\nmethod = \"GET\"\npath = \"/\"\nexpect.status = \"7xx\"\n")], message: "s.toml" },
        Case { name: "report dir missing", args: &["verify", "--sha", SHA, "--report", "no/such/dir/r.json"], env: &[], files: &[], message: "--report `no/such/dir/r.json` is in a directory that does not exist" },
        Case { name: "smoke tenant without token", args: &["smoke", "--tenant", "https://t.example"], env: &[], files: &[], message: "--tenant needs the tenant's admin token" },
        Case { name: "smoke token env unset", args: &["smoke", "--tenant", "https://t.example", "--token-env", "NOPE_TOKEN"], env: &[], files: &[], message: "--token-env NOPE_TOKEN names a variable that is unset or empty" },
        Case { name: "missing ca file", args: &["verify", "--sha", SHA, "--ca-file", "ca.pem"], env: &[], files: &[], message: "CA file `ca.pem` (flag --ca-file) does not exist" },
        Case { name: "postmortem not a report", args: &["postmortem", "--report", "r.json"], env: &[], files: &[("r.json", "{\"hello\": 1}")], message: "is not a canary JSON report" },
        Case { name: "config fleet url not https", args: &["verify", "--sha", SHA], env: &[], files: &[("canary.toml", "[fleet]\nurls = [\"http://tenant.example.com\"]\n")], message: "fleet.urls" },
        Case { name: "smoke suite needs sha", args: &["smoke", "--suite-file", "s.toml"], env: &[], files: &[("s.toml", "[[check]]\nname = \"v\"\nmethod = \"GET\"\npath = \"/v/{{sha}}\"\nexpect.status = 200\n")], message: "--sha is missing and the suite uses {{sha}}" },
        Case { name: "fleet enroll bad slug", args: &["fleet", "enroll", "Acme!"], env: &[("CANARY_CONTROL_PLANE_URL", "http://127.0.0.1:9"), ("MOLECULE_STAGING_CP_SHARED_SECRET", "cp-secret")], files: &[], message: "org slug `Acme!` contains `A`" },
        Case { name: "fleet enroll without control plane", args: &["fleet", "enroll", "acme"], env: &[], files: &[], message: "control plane URL is not configured" },
        Case { name: "fleet enroll token unset", args: &["fleet", "enroll", "acme"], env: &[("CANARY_CONTROL_PLANE_URL", "https://cp.example")], files: &[], message: "MOLECULE_STAGING_CP_SHARED_SECRET (default) is unset or empty" },
        Case { name: "fleet enroll cp url not a url", args: &["fleet", "enroll", "acme"], env: &[("CANARY_CONTROL_PLANE_URL", "cp.example")], files: &[], message: "control plane URL `cp.example` (env CANARY_CONTROL_PLANE_URL) is not an http(s) URL" },
        Case { name: "fleet check lists differ", args: &["fleet", "check"], env: &[("CANARY_TENANT_TOKENS", "a,b")], files: &[], message: "CANARY_TENANT_URLS and CANARY_TENANT_TOKENS have different lengths" },
        Case { name: "fleet check bad sha", args: &["fleet", "check", "--sha", "xyz1234"], env: &[], files: &[], message: "sha `xyz1234` is not hexadecimal" },
        Case { name: "fleet check empty", args: &["fleet", "check"], env: &[("CANARY_TENANT_URLS", ""), ("CANARY_TENANT_TOKENS", "")], files: &[], message: "canary fleet enroll SLUG" },
        Case { name: "urls_env not a name", args: &["verify", "--sha", SHA, "--urls-env", "https://x"], env: &[], files: &[], message: "is not an environment variable name" },
    ];
    let mut tried = 0;
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in case.files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let wire = Tripwire::new();
        let mut cmd = canary(dir.path(), &wire);
        for (k, v) in case.env {
            cmd.env(k, v);
        }
        let out = cmd.args(case.args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: exit code\nstdout: {stdout}\nstderr: {stderr}",
            case.name
        );
        assert!(
            stderr.contains(case.message),
            "{}: stderr lacks {:?}:\n{stderr}",
            case.name,
            case.message
        );
        assert!(
            stderr.starts_with("error: "),
            "{}: one clear message:\n{stderr}",
            case.name
        );
        assert!(
            stderr.contains("fix: ") || stderr.contains("Usage:"),
            "{}: a fix is offered:\n{stderr}",
            case.name
        );
        assert_eq!(
            stderr.matches("error: ").count(),
            1,
            "{}: exactly one error:\n{stderr}",
            case.name
        );
        for secret in [TOKEN, "hunter2-argv-secret"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{}: secret printed",
                case.name
            );
        }
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{}: panic",
            case.name
        );
        assert_eq!(wire.connections(), 0, "{}: a request was sent", case.name);
        tried += 1;
    }
    println!("bad inputs tried: {tried}, each exit 2, one message, no request");
}

#[test]
fn usage_errors_go_to_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let wire = Tripwire::new();
    let out = canary(dir.path(), &wire)
        .args(["verify", "--sha", "nothex!", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Usage errors are reported on stderr; --json does not apply to them.
    assert!(stdout.is_empty(), "{stdout}");
}

fn help(args: &[&str]) -> String {
    let out = Command::cargo_bin("canary")
        .unwrap()
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", help(&[]));
    for sub in [
        "verify",
        "decide",
        "guard",
        "promote",
        "rollback",
        "repair",
        "history",
        "verify-record",
        "smoke",
        "status",
        "analyze",
        "postmortem",
        "config",
        "completions",
        "man",
        "demo",
        "fleet",
        "fleet check",
        "fleet enroll",
    ] {
        let text = help(&sub.split(' ').collect::<Vec<_>>());
        assert!(text.contains(&format!("Usage: canary {sub}")), "{text}");
        insta::assert_snapshot!(format!("help_{}", sub.replace(' ', "-")), text);
    }
}

/// Completions and the man page are generated from the command line's own
/// definition, so every command is in them.
#[test]
fn completions_and_man_page_name_every_command() {
    let commands = [
        "verify",
        "decide",
        "guard",
        "promote",
        "rollback",
        "repair",
        "history",
        "verify-record",
        "smoke",
        "status",
        "postmortem",
        "config",
        "fleet",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::cargo_bin("canary")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for c in commands {
            assert!(text.contains(c), "{shell} completions lack {c}");
        }
    }
    let out = Command::cargo_bin("canary")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH canary 1"), "{page}");
    for c in commands {
        assert!(
            page.contains(&format!(".SH \"canary {c}\"")),
            "man page lacks {c}"
        );
    }
    let out = Command::cargo_bin("canary")
        .unwrap()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn version() {
    let out = Command::cargo_bin("canary")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("canary {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_shows_sources_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("canary.toml"),
        "[release]\nimages = [\"ghcr.io/acme/platform\"]\nstaging_tag = \"stage-{sha}\"\n[suite]\nconcurrency = 8\ntenant_deadline = \"90s\"\n[rollout]\nwait = \"6m\"\n",
    )
    .unwrap();
    let wire = Tripwire::new();
    let out = canary(dir.path(), &wire)
        .env_remove("CANARY_IMAGES")
        .env("CANARY_CONCURRENCY", "16")
        .args(["config", "--staging-tag", "flag-{sha}"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .to_string()
    };
    assert!(
        line("release.images").contains("(file canary.toml: release.images)"),
        "{text}"
    );
    assert!(
        line("release.staging_tag").contains("flag-{sha}")
            && line("release.staging_tag").contains("(flag --staging-tag)"),
        "{text}"
    );
    assert!(
        line("release.promoted_tag").contains("latest")
            && line("release.promoted_tag").contains("(default)"),
        "{text}"
    );
    assert!(
        line("suite.concurrency").contains("16")
            && line("suite.concurrency").contains("(env CANARY_CONCURRENCY)"),
        "{text}"
    );
    assert!(
        line("suite.tenant_deadline").contains("1m 30s")
            && line("suite.tenant_deadline").contains("(file canary.toml: suite.tenant_deadline)"),
        "{text}"
    );
    assert!(
        line("rollout ").contains("fixed wait 6m")
            && line("rollout ").contains("file canary.toml: rollout.wait"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
}

#[test]
fn postmortem_from_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = r#"{"schema":1,"command":"verify","sha":"4c1d56e","outcome":"rejected","exit_code":1,
      "reason":"check `memories-search` failed","dry_run":false,"manual_reason":null,"staging_tag":"staging-4c1d56e",
      "promoted_tag":"latest","images":[],"tenants":[{"url":"https://t1.example","version":"4c1d56e","checks":[
      {"name":"memories-search","status":"failed","expected":"body contains x","actual":"[]","duration_ms":3,"attempts":1}]}],
      "states":["planned","prechecked","verifying","rejected"],"timings":{"started_ms":0,"finished_ms":1,"rollout_ms":null,"checks_ms":null,"moves_ms":null},"error":null}"#;
    std::fs::write(dir.path().join("r.json"), report).unwrap();
    let wire = Tripwire::new();
    let out = canary(dir.path(), &wire)
        .args(["postmortem", "--report", "r.json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("# Post-mortem: release `4c1d56e`"), "{md}");
    assert!(
        md.contains("| https://t1.example | memories-search | Failed | body contains x | [] |"),
        "{md}"
    );
    assert!(md.contains("Why didn't canary catch it?"), "{md}");
    assert!(
        md.contains("Which check should the smoke suite grow"),
        "{md}"
    );
}
