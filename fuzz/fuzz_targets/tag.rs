//! `Tag::parse` accepts exactly the distribution-spec tag grammar
//! `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, keeps the input as is, and
//! round-trips through `Display` and serde.
#![no_main]

use canary_core::Tag;
use libfuzzer_sys::fuzz_target;

/// The grammar, written as plainly as possible (and independently of the
/// parser under test).
fn reference(s: &str) -> bool {
    let b = s.as_bytes();
    let head = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let tail = |c: u8| head(c) || c == b'.' || c == b'-';
    (1..=128).contains(&b.len()) && head(b[0]) && b[1..].iter().all(|&c| tail(c))
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = Tag::parse(&s);
    assert_eq!(parsed.is_ok(), reference(&s), "{s:?}: {parsed:?}");
    match parsed {
        Ok(tag) => {
            assert_eq!(tag.as_str(), s);
            assert_eq!(Tag::parse(&tag.to_string()).unwrap(), tag);
            let json = serde_json::to_string(&tag).unwrap();
            assert_eq!(serde_json::from_str::<Tag>(&json).unwrap(), tag);
        }
        Err(e) => {
            assert!(e.input().starts_with("tag `"), "{e:?}");
            assert!(!e.problem().is_empty() && !e.fix().is_empty(), "{e:?}");
        }
    }
});
