//! Issue 16: keeping the canary fleet with the real binary — `canary fleet
//! check` against reference tenants (a swapped token pair, a wrong token, an
//! unreachable tenant and one on an old version, each named), `canary fleet
//! enroll` against the reference control plane (enrolled, already canary,
//! refused because provisioned, not found, unauthorized), and a verify
//! with no fleet that says how to stand one up. No token appears in any
//! output.

use std::path::Path;
use std::process::Command;

use canary_e2e::{canary_bin, run, Run, World, NEW, OLD};
use canary_sandbox::control_plane::{ControlPlaneServer, Org};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};
use serde_json::Value;

/// Tenant tokens, one per tenant: a swap is only visible with distinct ones.
const TOKENS: [&str; 5] = [
    "fleet-tok-ONE-8c1f",
    "fleet-tok-TWO-27ad",
    "fleet-tok-THREE-e90b",
    "fleet-tok-FOUR-4b62",
    "fleet-tok-FIVE-d03c",
];
const WRONG_TOKEN: &str = "fleet-tok-WRONG-5a5a";
const CP_TOKEN: &str = "cp-admin-SECRET-71f3";
const URLS_VAR: &str = "MOLECULE_STAGING_TENANT_URLS";
const TOKENS_VAR: &str = "MOLECULE_STAGING_ADMIN_TOKENS";

/// `canary` with a clean environment, the seed's variable names for the
/// fleet, in `dir`.
fn canary(dir: &Path) -> Command {
    let mut cmd = Command::new(canary_bin());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("CANARY_URLS_ENV", URLS_VAR)
        .env("CANARY_TOKENS_ENV", TOKENS_VAR);
    cmd
}

async fn tenant(token: &str, version: &str, fault: TenantFault) -> TenantServer {
    TenantServer::start(TenantOptions {
        token: token.to_string(),
        version: version.to_string(),
        fault,
    })
    .await
}

/// Every secret of these tests, searched for in every output.
fn assert_no_token(label: &str, text: &str) {
    for secret in TOKENS.iter().chain(&[WRONG_TOKEN, CP_TOKEN]) {
        assert!(!text.contains(secret), "{label}: a token appears:\n{text}");
    }
}

fn assert_no_token_in(label: &str, r: &Run) {
    assert_no_token(&format!("{label} stdout"), &r.stdout);
    assert_no_token(&format!("{label} stderr"), &r.stderr);
}

/// The row of the tenant at `position` in the table.
fn row<'a>(text: &'a str, position: usize, url: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{position} ")) && l.contains(url))
        .unwrap_or_else(|| panic!("no row {position} for {url} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_check_names_each_broken_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = tenant(TOKENS[0], NEW, TenantFault::None).await;
    let second = tenant(TOKENS[1], NEW, TenantFault::None).await;
    let third = tenant(TOKENS[2], NEW, TenantFault::None).await;
    let wrong = tenant(TOKENS[3], NEW, TenantFault::None).await;
    let old = tenant(TOKENS[4], OLD, TenantFault::None).await;
    let gone = tenant("unused", NEW, TenantFault::None).await;
    let gone_url = gone.url();
    drop(gone);
    let urls = [
        healthy.url(),
        second.url(),
        third.url(),
        wrong.url(),
        old.url(),
        gone_url.clone(),
    ];
    // Tokens 2 and 3 swapped, a wrong token for tenant 4.
    let tokens = [
        TOKENS[0],
        TOKENS[2],
        TOKENS[1],
        WRONG_TOKEN,
        TOKENS[4],
        "unused",
    ];
    let configure = |cmd: &mut Command| {
        cmd.env(URLS_VAR, urls.join(","))
            .env(TOKENS_VAR, tokens.join(","));
    };

    let mut cmd = canary(dir.path());
    configure(&mut cmd);
    cmd.args(["fleet", "check", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_no_token_in("check", &r);
    let text = &r.stdout;
    assert!(
        text.starts_with(&format!(
            "canary fleet check: 6 tenants (URLs from {URLS_VAR}, tokens from {TOKENS_VAR}), expected version {NEW}"
        )),
        "{text}"
    );
    assert!(row(text, 1, &urls[0]).contains("healthy"), "{text}");
    assert!(row(text, 1, &urls[0]).contains(NEW), "{text}");
    assert!(row(text, 2, &urls[1]).contains("misaligned"), "{text}");
    assert!(
        text.contains(&format!(
            "the token in position 2 belongs to tenant 3 ({})",
            urls[2]
        )),
        "{text}"
    );
    assert!(row(text, 3, &urls[2]).contains("misaligned"), "{text}");
    assert!(
        text.contains(&format!(
            "the token in position 3 belongs to tenant 2 ({})",
            urls[1]
        )),
        "{text}"
    );
    assert!(row(text, 4, &urls[3]).contains("wrong_token"), "{text}");
    assert!(
        text.contains("refuses the token in position 4 (status 401), and no other tenant of the list takes it"),
        "{text}"
    );
    assert!(row(text, 5, &urls[4]).contains("old_version"), "{text}");
    assert!(text.contains(&format!("runs {OLD}, not {NEW}")), "{text}");
    assert!(row(text, 6, &gone_url).contains("unreachable"), "{text}");
    assert!(
        text.ends_with("outcome: unhealthy (exit 1): 5 of 6 tenants unhealthy\n"),
        "{text}"
    );

    // The same, as JSON.
    let mut cmd = canary(dir.path());
    configure(&mut cmd);
    cmd.args(["fleet", "check", "--sha", NEW, "--json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_no_token_in("check --json", &r);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["outcome"], "unhealthy");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["urls_from"], URLS_VAR);
    assert_eq!(v["tokens_from"], TOKENS_VAR);
    assert_eq!(v["expected_version"], NEW);
    let t = v["tenants"].as_array().unwrap();
    let health: Vec<&str> = t.iter().map(|t| t["health"].as_str().unwrap()).collect();
    assert_eq!(
        health,
        [
            "healthy",
            "misaligned",
            "misaligned",
            "wrong_token",
            "old_version",
            "unreachable"
        ]
    );
    assert_eq!(t[0]["position"], 1);
    assert_eq!(t[0]["url"], urls[0].as_str());
    assert_eq!(t[0]["version"], NEW);
    assert_eq!(t[0]["status_with_token"], 200);
    assert_eq!(t[0]["status_without_token"], 401);
    assert!(t[0]["response_ms"].is_u64(), "{}", t[0]);
    assert_eq!(t[1]["token_belongs_to"], 3);
    assert_eq!(t[2]["token_belongs_to"], 2);
    assert_eq!(t[3]["status_with_token"], 401);
    assert!(t[3]["token_belongs_to"].is_null());
    assert_eq!(t[4]["version"], OLD);
    assert!(t[5]["response_ms"].is_null() && t[5]["status_with_token"].is_null());

    // In Actions mode: the summary and the outputs name the tenants, and
    // hold no token either.
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let mut cmd = canary(dir.path());
    configure(&mut cmd);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .args(["fleet", "check", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    let visible: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_token("actions stdout", &visible);
    assert_no_token("actions stderr", &r.stderr);
    assert!(
        r.stdout.contains("::error title=tenant 4"),
        "an annotation per unhealthy tenant: {}",
        r.stdout
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_no_token("summary", &summary);
    assert!(
        summary.starts_with("## canary fleet check: UNHEALTHY"),
        "{summary}"
    );
    assert!(summary.contains("| misaligned |"), "{summary}");
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    assert_no_token("outputs", &outputs);
    assert!(outputs.contains("unhealthy"), "{outputs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fleet_exits_zero_and_bad_lists_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant(TOKENS[0], NEW, TenantFault::None).await;
    let b = tenant(TOKENS[1], NEW, TenantFault::None).await;
    let urls = format!("{} {}", a.url(), b.url());

    let mut cmd = canary(dir.path());
    cmd.env(URLS_VAR, &urls)
        .env(TOKENS_VAR, format!("{},{}", TOKENS[0], TOKENS[1]))
        .args(["fleet", "check"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_no_token_in("healthy", &r);
    assert!(
        r.stdout
            .contains("outcome: healthy (exit 0): all 2 tenants are healthy"),
        "{}",
        r.stdout
    );

    // An open admin endpoint is not healthy.
    b.set_fault(TenantFault::AuthBypass);
    let mut cmd = canary(dir.path());
    cmd.env(URLS_VAR, &urls)
        .env(TOKENS_VAR, format!("{},{}", TOKENS[0], TOKENS[1]))
        .args(["fleet", "check"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        row(&r.stdout, 2, &b.url()).contains("unprotected"),
        "{}",
        r.stdout
    );
    b.set_fault(TenantFault::None);

    // One token for two URLs: both variables named, nothing sent.
    let served = a.requests() + b.requests();
    let mut cmd = canary(dir.path());
    cmd.env(URLS_VAR, &urls)
        .env(TOKENS_VAR, TOKENS[0])
        .args(["fleet", "check"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{URLS_VAR} and {TOKENS_VAR} have different lengths"
        )),
        "{}",
        r.stderr
    );
    assert_no_token_in("misaligned lists", &r);
    assert_eq!(a.requests() + b.requests(), served, "a request was sent");

    // No fleet at all: say how to stand one up.
    let mut cmd = canary(dir.path());
    cmd.args(["fleet", "check"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is empty"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "`canary fleet enroll SLUG` for each canary org, then append its tenant's URL to {URLS_VAR} and its admin token to {TOKENS_VAR}, in the same position"
        )),
        "{}",
        r.stderr
    );

    // Nobody answers: nothing could be checked.
    let (a_url, b_url) = (a.url(), b.url());
    drop((a, b));
    let mut cmd = canary(dir.path());
    cmd.env(URLS_VAR, format!("{a_url},{b_url}"))
        .env(TOKENS_VAR, format!("{},{}", TOKENS[0], TOKENS[1]))
        .args(["fleet", "check"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout
            .contains("outcome: unreachable (exit 3): no tenant answered"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_enroll_against_the_reference_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlaneServer::start(CP_TOKEN).await;
    cp.create_org("acme-canary");
    cp.provision("acme-prod");
    cp.set_org(
        "acme-done",
        Org {
            is_canary: true,
            provisioned: true,
        },
    );
    // The fleet holds two tenants already: the new one is the third.
    let enroll = |slug: &str, token: &str| {
        let mut cmd = canary(dir.path());
        cmd.env("CANARY_CONTROL_PLANE_URL", cp.url())
            .env("MOLECULE_STAGING_CP_SHARED_SECRET", token)
            .env(URLS_VAR, "https://a.example,https://b.example")
            .env(TOKENS_VAR, format!("{},{}", TOKENS[0], TOKENS[1]))
            .args(["fleet", "enroll", slug]);
        cmd
    };
    let secrets = format!(
        "append the tenant's URL to {URLS_VAR} and its admin token to {TOKENS_VAR}, in the same position (entry 3 of each)"
    );

    let r = run(enroll("acme-canary", CP_TOKEN)).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_no_token_in("enrolled", &r);
    assert!(
        r.stdout
            .starts_with("canary fleet enroll acme-canary: enrolled (exit 0)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nnext:\n"), "{}", r.stdout);
    assert!(r.stdout.contains(&secrets), "{}", r.stdout);
    assert!(cp.org("acme-canary").unwrap().is_canary);

    let r = run(enroll("acme-canary", CP_TOKEN)).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(": already_canary (exit 0)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("nothing changed"), "{}", r.stdout);
    let r = run(enroll("acme-done", CP_TOKEN)).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(": already_canary (exit 0)"),
        "{}",
        r.stdout
    );

    let r = run(enroll("acme-prod", CP_TOKEN)).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_no_token_in("provisioned", &r);
    assert!(
        r.stdout.contains(": already_provisioned (exit 1)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("re-provision the org, or delete and recreate it, so the new instance lands in the canary account"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&secrets), "{}", r.stdout);
    assert!(
        !cp.org("acme-prod").unwrap().is_canary,
        "refused: unchanged"
    );

    let r = run(enroll("nobody", CP_TOKEN)).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(": not_found (exit 1)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("the control plane has no org nobody"),
        "{}",
        r.stdout
    );

    let r = run(enroll("acme-canary", WRONG_TOKEN)).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_no_token_in("unauthorized", &r);
    assert!(r.stdout.contains(": unauthorized (exit 1)"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("refused the admin token in MOLECULE_STAGING_CP_SHARED_SECRET"),
        "{}",
        r.stdout
    );

    // JSON: the result word, the exit code, the steps.
    let mut cmd = enroll("acme-prod", CP_TOKEN);
    cmd.arg("--json");
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_no_token_in("enroll --json", &r);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["slug"], "acme-prod");
    assert_eq!(v["control_plane"], cp.url().as_str());
    assert_eq!(v["result"], "already_provisioned");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["next_steps"].as_array().unwrap().len(), 3);

    // Bad input: refused before any request, exit 2.
    let sent = cp.requests();
    let r = run(enroll("Acme/../admin", CP_TOKEN)).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("org slug `Acme/../admin`"),
        "{}",
        r.stderr
    );
    let r = run(enroll("acme-canary", "")).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("MOLECULE_STAGING_CP_SHARED_SECRET")
            && r.stderr.contains("is unset or empty"),
        "{}",
        r.stderr
    );
    let mut cmd = enroll("acme-canary", CP_TOKEN);
    cmd.env_remove("CANARY_CONTROL_PLANE_URL");
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("control plane URL is not configured"),
        "{}",
        r.stderr
    );
    let mut cmd = enroll("acme-canary", CP_TOKEN);
    cmd.env("CANARY_CONTROL_PLANE_URL", "http://cp.example.com");
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("plain HTTP"), "{}", r.stderr);
    assert_eq!(cp.requests(), sent, "a request was sent");

    // The token variable and URL from the config file.
    std::fs::write(
        dir.path().join("canary.toml"),
        format!(
            "[control_plane]\nurl = \"{}\"\ntoken_env = \"CP_ADMIN\"\n",
            cp.url()
        ),
    )
    .unwrap();
    cp.create_org("from-file");
    let mut cmd = canary(dir.path());
    cmd.env("CP_ADMIN", CP_TOKEN)
        .args(["fleet", "enroll", "from-file"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(cp.org("from-file").unwrap().is_canary);
    // No fleet yet: the new tenant is the first of each list.
    assert!(
        r.stdout.contains(&format!(
            "append the tenant's URL to {URLS_VAR} and its admin token to {TOKENS_VAR}, in the same position (entry 1 of each)"
        )),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_without_a_fleet_says_how_to_stand_one_up() {
    let world = World::start(0).await;
    let hint = "`canary fleet enroll SLUG` for each canary org, then append its tenant's URL to CANARY_TENANT_URLS and its admin token to CANARY_TENANT_TOKENS, in the same position";
    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_URLS", "")
        .env("CANARY_TENANT_TOKENS", "")
        .args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    // As before: skipped, exit 0, latest unchanged; and now the fix.
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("outcome: skipped (exit 0)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.matches(hint).count(),
        1,
        "once in the output:\n{}",
        r.stdout
    );
    assert_eq!(world.latest(), world.staging(OLD));

    // In Actions mode, once in the step summary.
    let summary = world.dir.path().join("summary.md");
    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_URLS", "")
        .env("CANARY_TENANT_TOKENS", "")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        summary.matches(hint).count(),
        1,
        "once in the summary:\n{summary}"
    );

    // With on_empty = "fail": a usage error, its fix the same.
    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_URLS", "")
        .env("CANARY_TENANT_TOKENS", "")
        .env("CANARY_ON_EMPTY_FLEET", "fail")
        .args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("canary fleet is empty"), "{}", r.stderr);
    assert!(r.stderr.contains(hint), "{}", r.stderr);
}
