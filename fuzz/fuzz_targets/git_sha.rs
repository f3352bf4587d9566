//! `GitSha::parse` accepts exactly 7 to 40 lowercase hex characters;
//! `short`, `is_full` and `matches_version` agree with the definition
//! (equal, or one a prefix of at least 7 characters of the other).
//!
//! Input: the sha candidate, then optionally `\n` and a version string a
//! tenant might report.
#![no_main]

use canary_core::GitSha;
use libfuzzer_sys::fuzz_target;

fn reference(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (candidate, version) = text.split_once('\n').unwrap_or((&text, ""));
    let parsed = GitSha::parse(candidate);
    assert_eq!(
        parsed.is_ok(),
        reference(candidate),
        "{candidate:?}: {parsed:?}"
    );
    let sha = match parsed {
        Ok(sha) => sha,
        Err(e) => {
            assert!(e.input().starts_with("sha `"), "{e:?}");
            assert!(!e.problem().is_empty() && !e.fix().is_empty(), "{e:?}");
            return;
        }
    };
    assert_eq!(sha.as_str(), candidate);
    assert_eq!(sha.to_string(), candidate);
    assert_eq!(sha.short(), &candidate[..7]);
    assert_eq!(sha.is_full(), candidate.len() == 40);
    let json = serde_json::to_string(&sha).unwrap();
    assert_eq!(serde_json::from_str::<GitSha>(&json).unwrap(), sha);

    assert!(sha.matches_version(candidate));
    assert!(sha.matches_version(&format!(" {candidate}\n")));
    assert!(sha.matches_version(sha.short()));

    let v = version.trim();
    let expected =
        v == candidate || (v.len() >= 7 && (v.starts_with(candidate) || candidate.starts_with(v)));
    assert_eq!(
        sha.matches_version(version),
        expected,
        "{candidate:?} vs {version:?}"
    );
    // Symmetric between two shas.
    if let Ok(other) = GitSha::parse(version) {
        assert_eq!(
            sha.matches_version(other.as_str()),
            other.matches_version(sha.as_str()),
            "{sha:?} vs {other:?}"
        );
    }
});
