//! Golden tests: the exact bytes canary-gha writes for the runner, and what
//! the runner reads back from them. Regenerate with `UPDATE_GOLDEN=1 cargo
//! test -p canary-gha --test golden` and review the diff. The files written
//! for a report (outputs, annotations) are golden-tested in canary-report.

use std::fmt::Write as _;
use std::path::PathBuf;

use canary_core::Secret;
use canary_gha::{
    format_output, parse_file_commands, publish, Annotation, Commands, GhaError, GithubEnv,
};

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

const DELIMITER: &str = "ghadelimiter_5f1c6a2e-0d4b-4c8e-9a7f-3b2d1e0f9c8a";

fn outputs_file(outputs: &[(String, String)]) -> String {
    outputs
        .iter()
        .map(|(k, v)| format_output(k, v, DELIMITER).unwrap())
        .collect()
}

#[test]
fn awkward_values_round_trip() {
    let values = [
        ("plain", "promoted"),
        ("empty", ""),
        ("newlines", "line 1\nline 2\n\nline 4\n"),
        ("crlf", "a\r\nb\r\n"),
        ("percent", "100% %25 %0A"),
        ("colon-comma", "a:b,c::d"),
        (
            "delimiter-like",
            "ghadelimiter_00000000-0000-4000-8000-000000000000\nEOF\n",
        ),
        ("heredoc-like", "x<<EOF\nEOF\ny=z"),
        ("unicode", "é — 😀"),
    ];
    let outputs: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let text = outputs_file(&outputs);
    golden("awkward-outputs.txt", &text);
    assert_eq!(parse_file_commands(&text).unwrap(), outputs);

    // With random delimiters through a file, as the CLI writes them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("github_output");
    canary_gha::append_outputs(&path, &outputs).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(parse_file_commands(&written).unwrap(), outputs);
    assert_eq!(written.matches("<<ghadelimiter_").count(), outputs.len());

    // The delimiter itself in a value is refused, and nothing is returned.
    let e = format_output("x", &format!("a\n{DELIMITER}\nb"), DELIMITER).unwrap_err();
    assert!(matches!(e, GhaError::DelimiterCollision { .. }));
}

#[test]
fn summary_truncation_golden() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.md");
    let mut md = String::from("# canary: rejected\n\n| tenant | check | result |\n|---|---|---|\n");
    for i in 0..40 {
        writeln!(md, "| https://t{i}.example | memories-search | ✗ é😀 |").unwrap();
    }
    md.push_str("\n```text\n");
    for i in 0..40 {
        writeln!(md, "response line {i}").unwrap();
    }
    md.push_str("```\n");
    let written = canary_gha::summary::append_summary_limited(&path, &md, 2000).unwrap();
    assert!(written.truncated);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.len() <= 2000);
    golden("summary-truncated.md", &text);

    // Under the real limit the same Markdown is written whole.
    let path = dir.path().join("whole.md");
    let written = canary_gha::append_summary(&path, &md).unwrap();
    assert!(!written.truncated);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), md);
}

#[test]
fn large_summary_stays_under_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.md");
    std::fs::write(&path, "earlier step output\n".repeat(1000)).unwrap();
    let md = "| a | b | ✓ |\n".repeat(200_000);
    let written = canary_gha::append_summary(&path, &md).unwrap();
    assert!(written.truncated);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len <= 1024 * 1024, "{len}");
    assert!(len > 1024 * 1024 - 4096, "uses the room it has: {len}");
    std::fs::read_to_string(&path).expect("valid UTF-8");
}

#[test]
fn publish_writes_what_it_is_given_masked() {
    let token = Secret::new("tenant-TOKEN-0815");
    let dir = tempfile::tempdir().unwrap();
    let env = GithubEnv {
        actions: true,
        output: Some(dir.path().join("output")),
        step_summary: Some(dir.path().join("summary.md")),
        ..GithubEnv::default()
    };
    let mut commands = Commands::new(Vec::new(), [&token]).unwrap();
    let annotations = [Annotation::error("got tenant-TOKEN-0815").with_title("check @ t1")];
    let outputs = [
        ("outcome".to_string(), "rejected".to_string()),
        ("echo".to_string(), "tenant-TOKEN-0815".to_string()),
    ];
    let published = publish(
        &mut commands,
        &env,
        &annotations,
        &outputs,
        "# reason: tenant-TOKEN-0815\n",
    )
    .unwrap();
    assert_eq!(published.annotations, 1);
    assert_eq!(published.outputs, 2);
    let stdout = String::from_utf8(commands.into_inner()).unwrap();
    assert!(
        stdout.starts_with("::add-mask::tenant-TOKEN-0815\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("::error title=check @ t1::got ***\n"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(env.output.as_ref().unwrap()).unwrap();
    assert_eq!(
        parse_file_commands(&written).unwrap(),
        vec![
            ("outcome".to_string(), "rejected".to_string()),
            ("echo".to_string(), "***".to_string()),
        ]
    );
    let summary = std::fs::read_to_string(env.step_summary.as_ref().unwrap()).unwrap();
    assert_eq!(summary, "# reason: ***\n");

    // Outside a runner: annotations only, no files.
    let mut commands = Commands::new(Vec::new(), []).unwrap();
    let published = publish(
        &mut commands,
        &GithubEnv::from_env(|_| None),
        &annotations,
        &outputs,
        "# ok\n",
    )
    .unwrap();
    assert_eq!((published.outputs, published.summary), (0, None));
}
