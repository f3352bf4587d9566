//! Golden tests: the exact bytes canary hands the GitHub runner for a
//! report (outputs, annotations, per-tenant groups), written through
//! `canary-gha`, and what the runner reads back from them. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p canary-report --test github` and review
//! the diff.

use std::path::PathBuf;

use canary_core::machine::{Outcome, State};
use canary_core::report::{Command, ErrorReport, ImageReport, ImageStatus, TenantReport};
use canary_core::suite::{CheckResult, CheckStatus};
use canary_core::{Digest, GitSha, ImageRef, PromotionReport, Secret, Tag};
use canary_gha::{format_output, parse_file_commands, Annotation, Commands, GithubEnv, StopToken};
use canary_report::github::{outputs as outputs_for, publish, write_tenant_groups};

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if expected != actual {
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            assert!(
                e == a,
                "{name} differs at line {}:\nexpected: {e}\nactual:   {a}",
                i + 1
            );
        }
        panic!(
            "{name} differs in length: expected {} lines, got {}",
            expected.lines().count(),
            actual.lines().count()
        );
    }
}

fn digest(seed: &str) -> Digest {
    Digest::sha256_of(seed.as_bytes())
}

fn check(name: &str, status: CheckStatus, expected: &str, actual: &str) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        status,
        expected: expected.to_string(),
        actual: actual.to_string(),
        duration_ms: 12,
        attempts: u32::from(status != CheckStatus::NotRun),
    }
}

/// A rejected verify with awkward text everywhere: newlines, `%`, `:`,
/// `,`, command look-alikes, a delimiter look-alike.
fn rejected_report() -> PromotionReport {
    let mut r = PromotionReport::new(Command::Verify, Some(GitSha::parse(SHA).unwrap()));
    r.set_outcome(
        Outcome::Rejected,
        "2 checks failed on 1 of 2 tenants; latest unchanged",
    );
    r.staging_tag = Some(Tag::parse(&format!("staging-{SHA}")).unwrap());
    r.promoted_tag = Some(Tag::parse("latest").unwrap());
    r.states = vec![
        State::Planned,
        State::Prechecked,
        State::Verifying,
        State::Rejected,
    ];
    for (repo, seed) in [("platform", "p"), ("tenant", "t")] {
        r.images.push(ImageReport {
            image: ImageRef::parse(&format!("ghcr.io/acme/{repo}")).unwrap(),
            before_read: true,
            overwritten: None,
            staging_digest: Some(digest(&format!("{seed}-new"))),
            before: Some(digest(&format!("{seed}-old"))),
            after: Some(digest(&format!("{seed}-old"))),
            status: ImageStatus::Unchanged,
            error: None,
        });
    }
    r.tenants.push(TenantReport {
        url: "https://t1.example:8443".to_string(),
        version: Some(SHA.to_string()),
        checks: vec![
            check("liveness", CheckStatus::Passed, "", ""),
            check(
                "memories-search",
                CheckStatus::Failed,
                "status 200 and body contains `canary-smoke-n0nce`",
                "status 200, body: {\"hits\": []}\n100% empty, a:b,c\n::error::injected\nghadelimiter_00000000-0000-4000-8000-000000000000",
            ),
            check("events", CheckStatus::Error, "a response", "timed out after 10s, 3 attempts\r\nlast: connection reset"),
            check("liveness-requires-auth", CheckStatus::NotRun, "", ""),
        ],
    });
    r.tenants.push(TenantReport {
        url: "https://t2.example".to_string(),
        version: Some(SHA.to_string()),
        checks: vec![check("liveness", CheckStatus::Passed, "", "")],
    });
    r
}

fn failed_report() -> PromotionReport {
    let mut r = PromotionReport::new(Command::Verify, Some(GitSha::parse(SHA).unwrap()));
    r.set_outcome(Outcome::Inconsistent, "a move failed and so did restoring");
    r.images.push(ImageReport {
        image: ImageRef::parse("ghcr.io/acme/platform").unwrap(),
        before_read: true,
        overwritten: None,
        staging_digest: Some(digest("new")),
        before: Some(digest("old")),
        after: Some(digest("new")),
        status: ImageStatus::Mixed,
        error: Some("PUT latest: 503 Service Unavailable".to_string()),
    });
    r.error = Some(ErrorReport {
        kind: "transient".to_string(),
        message: "registry ghcr.io: 503, then connection reset".to_string(),
        hint: Some("check https://www.githubstatus.com, then run `canary status`".to_string()),
    });
    r
}

fn promoted_report() -> PromotionReport {
    let mut r = PromotionReport::new(Command::Verify, Some(GitSha::parse(SHA).unwrap()));
    r.set_outcome(
        Outcome::Promoted,
        "6 checks passed on 1 tenant; 1 image moved",
    );
    r.images.push(ImageReport {
        image: ImageRef::parse("ghcr.io/acme/platform").unwrap(),
        before_read: true,
        overwritten: None,
        staging_digest: Some(digest("new")),
        before: None,
        after: Some(digest("new")),
        status: ImageStatus::Moved,
        error: None,
    });
    r
}

const DELIMITER: &str = "ghadelimiter_5f1c6a2e-0d4b-4c8e-9a7f-3b2d1e0f9c8a";

fn outputs_file(outputs: &[(String, String)]) -> String {
    outputs
        .iter()
        .map(|(k, v)| format_output(k, v, DELIMITER).unwrap())
        .collect()
}

#[test]
fn outputs_golden_and_parse_back() {
    let mut all = Vec::new();
    for (name, report, path) in [
        (
            "rejected",
            rejected_report(),
            Some("target/canary/report.json"),
        ),
        ("promoted", promoted_report(), None),
        ("inconsistent", failed_report(), Some("r.json")),
    ] {
        let outputs = outputs_for(&report, path);
        let text = outputs_file(&outputs);
        all.push(format!("# {name}\n{text}"));
        // The runner reads back exactly the values written.
        assert_eq!(parse_file_commands(&text).unwrap(), outputs, "{name}");
    }
    golden("outputs.txt", &all.join("\n"));
}

fn normalise_tokens(out: &str) -> String {
    let mut out = out.to_string();
    let tokens: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("::stop-commands::"))
        .filter(|t| *t != "f1xed")
        .map(str::to_string)
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(token.len(), 32, "random 128-bit tokens");
        out = out.replace(token.as_str(), &format!("TOKEN{i}"));
    }
    out
}

#[test]
fn annotations_and_groups_golden() {
    let secrets = [
        Secret::new("registry-p@ss:word"),
        Secret::new("-----BEGIN KEY-----\nAAAAsecretbody\n-----END KEY-----"),
    ];
    let mut commands = Commands::new(Vec::new(), &secrets).unwrap();
    for report in [rejected_report(), failed_report(), promoted_report()] {
        for a in canary_report::github::annotations(&report) {
            commands.annotate(&a).unwrap();
        }
        write_tenant_groups(&mut commands, &report).unwrap();
    }
    commands
        .annotate(
            &Annotation::warning("50% of tenants: slow,\nsee report")
                .with_title("rollout: 1/2, t:1")
                .with_file("canary.toml", Some(12)),
        )
        .unwrap();
    commands
        .untrusted_with("::set-output name=x::y\n", StopToken::fixed("f1xed"))
        .unwrap();
    let out = String::from_utf8(commands.into_inner()).unwrap();
    golden("annotations.txt", &normalise_tokens(&out));
}

#[test]
fn masks_come_first_and_no_secret_leaks() {
    let registry_password = Secret::new("reg-PASSWORD-4711");
    let tenant_token = Secret::new("tenant-TOKEN-0815");
    let multi = Secret::new("first-LINE-secret\nsecond-LINE-secret");
    let secrets = [&registry_password, &tenant_token, &multi];

    // A report that quotes secrets (a tenant echoing its token back, an
    // error carrying a password): the adapter must still not show them.
    let mut report = rejected_report();
    report.reason = format!("auth with {} failed", tenant_token.expose());
    report.tenants[0].checks[1].actual = format!(
        "body: {{\"token\": \"{}\"}}\nsecond-LINE-secret",
        tenant_token.expose()
    );
    report.error = Some(ErrorReport {
        kind: "unauthorized".to_string(),
        message: format!("login with {} refused", registry_password.expose()),
        hint: None,
    });

    let dir = tempfile::tempdir().unwrap();
    let env = GithubEnv {
        actions: true,
        output: Some(dir.path().join("output")),
        step_summary: Some(dir.path().join("summary.md")),
        ..GithubEnv::default()
    };
    let markdown = format!(
        "# canary\n\nreason: {}\n\n```\n{}\n```\n",
        report.reason, report.tenants[0].checks[1].actual
    );
    let mut commands = Commands::new(Vec::new(), secrets).unwrap();
    let published = publish(&mut commands, &env, &report, Some("report.json"), &markdown).unwrap();
    write_tenant_groups(&mut commands, &report).unwrap();
    assert_eq!(published.outputs, 8);
    assert_eq!(published.annotations, 3);
    assert!(!published.summary.unwrap().truncated);

    let stdout = String::from_utf8(commands.into_inner()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    // 1 + 1 + (whole + 2 lines) masks, before anything else.
    assert!(
        lines[..5].iter().all(|l| l.starts_with("::add-mask::")),
        "{stdout}"
    );
    assert!(!lines[5..].iter().any(|l| l.starts_with("::add-mask::")));
    let outputs = std::fs::read_to_string(env.output.as_ref().unwrap()).unwrap();
    let summary = std::fs::read_to_string(env.step_summary.as_ref().unwrap()).unwrap();
    let after_masks = lines[5..].join("\n");
    for secret in [
        "reg-PASSWORD-4711",
        "tenant-TOKEN-0815",
        "first-LINE-secret",
        "second-LINE-secret",
    ] {
        for (place, text) in [
            ("stdout", &after_masks),
            ("outputs", &outputs),
            ("summary", &summary),
        ] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {place}:\n{text}"
            );
        }
    }
    assert!(summary.contains("auth with *** failed"));
    let parsed = parse_file_commands(&outputs).unwrap();
    assert_eq!(parsed.len(), 8);
    assert_eq!(parsed[0], ("outcome".to_string(), "rejected".to_string()));
}

#[test]
fn publish_outside_a_runner_writes_no_files() {
    let env = GithubEnv::from_env(|_| None);
    let mut commands = Commands::new(Vec::new(), []).unwrap();
    let published = publish(&mut commands, &env, &promoted_report(), None, "# ok\n").unwrap();
    assert_eq!(published.outputs, 0);
    assert_eq!(published.summary, None);
    let out = String::from_utf8(commands.into_inner()).unwrap();
    assert!(
        out.starts_with("::notice title=canary%3A promoted 4c1d56e0a1b2::"),
        "{out}"
    );
}
