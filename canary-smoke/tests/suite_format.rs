//! The suite file format: errors name `file:line:column` and the fix;
//! captures, templates and expectations work against a real tenant.

mod common;

use canary_core::{CheckStatus, RunContext, SmokeSuite};
use canary_smoke::{HttpOptions, HttpSuite, Suite};
use canary_testkit::tenant::TenantFault;
use common::{context, runner, statuses, tenant, tenant_of, TOKEN, VERSION};

#[test]
fn the_examples_copy_is_the_builtin_suite() {
    let examples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/suites/workspace-server.toml"
    );
    let text = std::fs::read_to_string(examples).unwrap();
    assert_eq!(
        text,
        canary_smoke::WORKSPACE_SERVER,
        "examples/suites/workspace-server.toml must stay identical to canary-smoke/suites/workspace-server.toml"
    );
    let from_file = Suite::from_file(std::path::Path::new(examples)).unwrap();
    assert_eq!(from_file.checks().len(), 6);
}

const OK_CHECK: &str = "[[check]]\nname = \"a\"\npath = \"/a\"\n";

#[test]
fn errors_name_file_line_column_and_the_fix() {
    // (source, position, text in the problem, text in the fix)
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            "[[check]\nname = \"x\"\n".into(),
            "smoke.toml:1:",
            "is not a valid suite",
            "[[check]]",
        ),
        (
            "[[check]]\nnmae = \"x\"\npath = \"/\"\n".into(),
            "smoke.toml:2:1",
            "unknown key `nmae`",
            "did you mean `name`?",
        ),
        (
            "[[check]]\nname = \"x\"\npath = \"/\"\nexpect.staus = 200\n".into(),
            "smoke.toml:4:8",
            "unknown key `staus`",
            "did you mean `status`?",
        ),
        (
            "[[checks]]\nname = \"x\"\n".into(),
            "smoke.toml:1:3",
            "unknown key `checks`",
            "did you mean `check`?",
        ),
        (
            "[[check]]\nname = \"x\"\npath = \"/\"\nexpect.json = [{ path = \"$\", typ = \"array\" }]\n".into(),
            "smoke.toml:4:",
            "unknown key `typ`",
            "did you mean `type`?",
        ),
        (
            "[[check]]\nname = \"x\"\n".into(),
            "smoke.toml:1:1",
            "is missing `path`",
            "add `path = …`",
        ),
        (
            format!("{OK_CHECK}[[check]]\nname = \"b\"\npath = \"admin\"\n"),
            "smoke.toml:6:8",
            "check `b`: has a path `admin` that does not start with `/`",
            "/admin/liveness",
        ),
        (
            format!("{OK_CHECK}method = \"FETCH\"\n"),
            "smoke.toml:4:10",
            "unknown method `FETCH`",
            "GET, POST",
        ),
        (
            format!("{OK_CHECK}auth = \"bearer\"\n"),
            "smoke.toml:4:8",
            "unknown auth `bearer`",
            "auth = \"tenant\"",
        ),
        (
            format!("{OK_CHECK}expect.status = \"2xxx\"\n"),
            "smoke.toml:4:17",
            "invalid `expect.status`",
            "\"2xx\"",
        ),
        (
            format!("{OK_CHECK}expect.status = 99\n"),
            "smoke.toml:4:17",
            "invalid `expect.status` 99",
            "expect.status = 200",
        ),
        (
            format!("{OK_CHECK}expect.json = [{{ path = \"$.[\" }}]\n"),
            "smoke.toml:4:25",
            "invalid JSONPath `$.[`",
            "RFC 9535",
        ),
        (
            format!("{OK_CHECK}expect.json = [{{ path = \"$\", type = \"list\" }}]\n"),
            "smoke.toml:4:37",
            "unknown JSON type `list`",
            "object, array, string, number, boolean, null",
        ),
        (
            format!("{OK_CHECK}body = {{ content = \"x-{{{{nonse}}}}\" }}\n"),
            "smoke.toml:1:1",
            "check `a`: uses `{{nonse}}`, which no earlier check captures",
            "did you mean `{{nonce}}`?",
        ),
        (
            format!("{OK_CHECK}capture = {{ id = \"$.id\" }}\nexpect.body_contains = \"{{{{id}}}}\"\n"),
            "smoke.toml:1:1",
            "uses `{{id}}`",
            "captured by this check",
        ),
        (
            format!("{OK_CHECK}path = \"/a\"\n"),
            "smoke.toml:4:1",
            "is not a valid suite",
            "",
        ),
        (
            format!("{OK_CHECK}{OK_CHECK}"),
            "smoke.toml:5:8",
            "a second check named `a`",
            "unique name",
        ),
        (
            format!("{OK_CHECK}[[check]]\nname = \"b\"\npath = \"/b\"\nneeds = [\"aa\"]\n"),
            "smoke.toml:7:10",
            "needs `aa`, which is not an earlier check",
            "did you mean `a`?",
        ),
        (
            format!("{OK_CHECK}interval = \"5 parsecs\"\n"),
            "smoke.toml:4:12",
            "interval `5 parsecs` is not a duration",
            "500ms",
        ),
        (
            format!("{OK_CHECK}body = {{ at = 1979-05-27 }}\n"),
            "smoke.toml:4:8",
            "TOML date",
            "",
        ),
        (
            format!("{OK_CHECK}capture = {{ nonce = \"$.id\" }}\n"),
            "smoke.toml:4:13",
            "captures into `nonce`, a built-in variable",
            "choose another name",
        ),
        (
            format!("{OK_CHECK}retries = -1\n"),
            "smoke.toml:4:11",
            "is not a valid suite",
            "",
        ),
        (
            "# nothing here\n".into(),
            "smoke.toml:1:1",
            "has no checks",
            "[[check]]",
        ),
    ];
    let mut bad = Vec::new();
    for (source, position, problem, fix) in &cases {
        match Suite::from_toml(source, "smoke.toml") {
            Ok(_) => bad.push(format!("accepted:\n{source}")),
            Err(e) => {
                let ok = e.input().starts_with(&format!("suite {position}"))
                    && e.to_string().contains(problem)
                    && e.fix().contains(fix);
                if !ok {
                    bad.push(format!(
                        "{source:?}\n  got:  {} | {}\n  want: suite {position} … {problem} | {fix}",
                        e,
                        e.fix()
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn from_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smoke.toml");
    std::fs::write(&path, "[[check]]\nname = \"x\"\npath = \"/\"\nbogus = 1\n").unwrap();
    let e = Suite::from_file(&path).unwrap_err();
    assert!(
        e.input()
            .starts_with(&format!("suite {}:4:1", path.display())),
        "{e}"
    );
    let e = Suite::from_file(&dir.path().join("missing.toml")).unwrap_err();
    assert!(e.to_string().contains("missing.toml"), "{e}");
    assert!(e.to_string().contains("cannot be read"), "{e}");
}

#[test]
fn defaults_and_getters() {
    let s = Suite::from_toml(OK_CHECK, "x.toml").unwrap();
    let c = &s.checks()[0];
    assert_eq!(c.method(), "GET");
    assert_eq!(c.auth(), canary_smoke::Auth::Tenant);
    assert_eq!(c.retries(), 0);
    assert_eq!(c.timeout(), None);
    assert_eq!(c.expectation(), "status 2xx");
    assert_eq!(s.name(), "x.toml");
    let s = Suite::from_toml(
        "[[check]]\nname = \"v\"\npath = \"/v/{{sha}}\"\nexpect.status = [200, \"3xx\"]\n",
        "x",
    )
    .unwrap();
    assert!(s.uses_sha());
    assert_eq!(s.checks()[0].expectation(), "status 200 or 3xx");
}

const CAPTURING: &str = r#"
[[check]]
name = "first-workspace"
path = "/workspaces"
expect.status = 200
capture = { ws = "$[0].id", missing = "$[0].nope" }

[[check]]
name = "uses-it"
path = "/memories/search?q={{ws}}"
expect.status = 200

[[check]]
name = "independent"
path = "/events"
expect.status = 200
"#;

#[tokio::test]
async fn a_capture_that_finds_nothing_fails_its_check_and_dependents_do_not_run() {
    let server = tenant(TenantFault::None).await;
    let suite = Suite::from_toml(CAPTURING, "capturing.toml").unwrap();
    let results = runner(suite).run(&tenant_of(&server), &context()).await;
    assert_eq!(
        statuses(&results),
        [
            "first-workspace=failed",
            "uses-it=not_run",
            "independent=passed"
        ]
    );
    assert!(
        results[0]
            .actual
            .contains("$[0].nope (captured as `missing`) is missing"),
        "{}",
        results[0].actual
    );
    assert_eq!(
        results[1].actual,
        "not run: needs `{{ws}}` captured by `first-workspace`, which failed"
    );
    assert_eq!(results[1].attempts, 0);
}

#[tokio::test]
async fn captured_values_flow_into_later_checks() {
    let server = tenant(TenantFault::None).await;
    let suite = Suite::from_toml(
        r#"
[[check]]
name = "commit"
method = "POST"
path = "/memories/commit"
body = { content = "note {{nonce}} for {{sha}}" }
expect.status = 201
capture = { id = "$.id" }

[[check]]
name = "search"
path = "/memories/search?q=note {{nonce}}"
expect.json = [
  { path = "$[0].id", equals = "{{id}}" },
  { path = "$[0].content", contains = "{{sha}}" },
  { path = "$[*].id", type = "number" },
  { path = "$[1]", exists = false },
]
"#
        .replace("q=note {{nonce}}", "q=note%20{{nonce}}")
        .as_str(),
        "flow.toml",
    );
    // A string that is exactly one placeholder takes the captured value
    // with its JSON type: `equals = "{{id}}"` matches the number 1.
    let suite = suite.unwrap();
    let results = runner(suite).run(&tenant_of(&server), &context()).await;
    assert_eq!(
        statuses(&results),
        ["commit=passed", "search=passed"],
        "{results:#?}"
    );
    assert!(
        results[1].expected.contains("$[0].id equals 1"),
        "{}",
        results[1].expected
    );
    let stored = server.memories();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].ends_with(&format!(" for {VERSION}")),
        "{stored:?}"
    );
}

#[tokio::test]
async fn json_expectations_against_a_real_tenant() {
    let source = r#"
[[check]]
name = "liveness-details"
path = "/admin/liveness"
expect.status = 200
expect.json = [
  { path = "$.status", equals = "ok" },
  { path = "$.version", equals = "{{sha}}" },
  { path = "$.subsystems", contains = "db" },
  { path = "$.subsystems.*", type = "string" },
  { path = "$.nope", exists = false },
]
"#;
    let suite = Suite::from_toml(source, "details.toml").unwrap();
    let healthy = tenant(TenantFault::None).await;
    let old = tenant(TenantFault::OldVersion).await;
    let r = runner(suite.clone())
        .run(&tenant_of(&healthy), &context())
        .await;
    assert_eq!(statuses(&r), ["liveness-details=passed"], "{r:#?}");
    let r = runner(suite).run(&tenant_of(&old), &context()).await;
    assert_eq!(r[0].status, CheckStatus::Failed);
    assert!(
        r[0].actual
            .starts_with("$.version is \"0000000000000000000000000000000000000000\""),
        "{}",
        r[0].actual
    );
    assert!(r[0]
        .expected
        .contains(&format!("$.version equals \"{VERSION}\"")));
}

#[tokio::test]
async fn a_check_that_needs_a_sha_has_no_verdict_without_one() {
    let suite = Suite::from_toml(
        "[[check]]\nname = \"v\"\npath = \"/admin/liveness\"\nexpect.json = [{ path = \"$.version\", equals = \"{{sha}}\" }]\n",
        "sha.toml",
    )
    .unwrap();
    let server = tenant(TenantFault::None).await;
    let r = runner(suite)
        .run(
            &tenant_of(&server),
            &RunContext {
                sha: None,
                run_id: "r".into(),
            },
        )
        .await;
    assert_eq!(r[0].status, CheckStatus::Error);
    assert!(r[0].actual.contains("--sha"), "{}", r[0].actual);
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn bodies_are_read_up_to_the_limit() {
    let server = tenant(TenantFault::None).await;
    let options = HttpOptions {
        max_body_bytes: 16,
        ..HttpOptions::default()
    };
    let suite = HttpSuite::new(common::builtin_fast(), options).unwrap();
    let r = suite.run(&tenant_of(&server), &context()).await;
    assert_eq!(r[0].status, CheckStatus::Failed);
    assert!(
        r[0].actual
            .contains("body is larger than the limit of 16 bytes"),
        "{}",
        r[0].actual
    );
    assert!(
        r[0].actual.contains("over the size limit"),
        "{}",
        r[0].actual
    );
    assert!(!format!("{r:?}").contains(TOKEN));
}

#[test]
fn bad_http_options_are_usage_errors() {
    let o = HttpOptions {
        probe: canary_smoke::ProbeConfig {
            path: "/admin/liveness".into(),
            json_path: "$..[".into(),
        },
        ..HttpOptions::default()
    };
    let e = HttpSuite::new(common::builtin_fast(), o).unwrap_err();
    assert!(e.to_string().contains("probe JSONPath"), "{e}");
    let o = HttpOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..HttpOptions::default()
    };
    let e = HttpSuite::new(common::builtin_fast(), o).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn the_readme_example_suite_parses() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    // The example says `needs = ["liveness"]`: put that check first.
    let source = format!(
        "[[check]]\nname = \"liveness\"\npath = \"/admin/liveness\"\n{}",
        &readme[start..end]
    );
    let suite = Suite::from_toml(&source, "README.md").unwrap();
    let c = &suite.checks()[1];
    assert_eq!(c.name(), "memories-commit");
    assert_eq!(c.method(), "POST");
    assert_eq!(c.retries(), 2);
    assert_eq!(c.timeout(), Some(std::time::Duration::from_secs(10)));
    assert_eq!(
        c.expectation(),
        "status 2xx and $.id is a number and $.state equals \"stored\" and $.tags contains \"canary\" and $.error is absent and body contains \"stored\" and $.id captured as `memory_id`"
    );
}
