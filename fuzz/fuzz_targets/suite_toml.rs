//! `Suite::from_toml` on any text: it returns without panicking; every
//! error names `origin:line:column` inside the source, a problem and a fix;
//! every suite it accepts is consistent (checks present, names unique and
//! non-empty, paths starting with `/`)
//! and can describe each check's expectation.
#![no_main]

use std::collections::HashSet;

use canary_smoke::Suite;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.toml";

fn check_position(source: &str, input: &str) {
    let position = input
        .strip_prefix(&format!("suite {ORIGIN}:"))
        .unwrap_or_else(|| panic!("error input {input:?} does not name {ORIGIN}:line:column"));
    let (line, column) = position
        .split_once(':')
        .unwrap_or_else(|| panic!("error input {input:?} has no line:column"));
    let line: usize = line
        .parse()
        .unwrap_or_else(|_| panic!("bad line in {input:?}"));
    let column: usize = column
        .parse()
        .unwrap_or_else(|_| panic!("bad column in {input:?}"));
    let lines: Vec<&str> = source.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(&line),
        "{input:?}: line {line} of {}",
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    assert!(
        (1..=width + 1).contains(&column),
        "{input:?}: column {column} of a {width}-character line"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match Suite::from_toml(source, ORIGIN) {
        Err(e) => {
            check_position(source, e.input());
            assert!(!e.problem().is_empty(), "{e:?}");
            assert!(!e.fix().is_empty(), "{e:?}");
        }
        Ok(suite) => {
            assert_eq!(suite.name(), ORIGIN);
            assert!(!suite.checks().is_empty());
            let mut names = HashSet::new();
            for check in suite.checks() {
                assert!(!check.name().trim().is_empty());
                assert!(names.insert(check.name()), "{:?} twice", check.name());
                assert!(check.path().starts_with('/'));
                assert!(check.expectation().starts_with("status "));
                let _ = suite.uses_sha();
            }
        }
    }
});
