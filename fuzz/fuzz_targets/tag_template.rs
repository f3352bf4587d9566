//! `TagTemplate::parse` accepts exactly the templates whose every rendering
//! (with a 7 to 40 character sha) is a valid tag; a parsed template prints
//! back as written, renders valid tags for any sha, and `sha_of` recovers
//! the sha from its own rendering.
#![no_main]

use arbitrary::Arbitrary;
use canary_core::{GitSha, Tag, TagTemplate};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    template: String,
    sha_len: u8,
    sha_bytes: [u8; 20],
}

fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn reference(s: &str) -> bool {
    let (prefix, suffix) = match s.find("{sha}") {
        Some(i) => (&s[..i], Some(&s[i + "{sha}".len()..])),
        None => (s, None),
    };
    if !prefix.chars().all(tag_char) || !suffix.unwrap_or("").chars().all(tag_char) {
        return false;
    }
    let first_ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match suffix {
        None => !prefix.is_empty() && prefix.len() <= 128 && prefix.starts_with(first_ok),
        // A rendering starts with the prefix, or with the sha (hex) when
        // the prefix is empty; the longest one has a 40-character sha.
        Some(suffix) => {
            (prefix.is_empty() || prefix.starts_with(first_ok))
                && prefix.len() + 40 + suffix.len() <= 128
        }
    }
}

fuzz_target!(|input: Input| {
    let s = input.template.as_str();
    let parsed = TagTemplate::parse(s);
    assert_eq!(parsed.is_ok(), reference(s), "{s:?}: {parsed:?}");
    let template = match parsed {
        Ok(t) => t,
        Err(e) => {
            assert!(e.input().starts_with("tag template `"), "{e:?}");
            assert!(!e.problem().is_empty() && !e.fix().is_empty(), "{e:?}");
            return;
        }
    };
    assert_eq!(template.to_string(), s);
    assert_eq!(TagTemplate::parse(&template.to_string()).unwrap(), template);
    assert_eq!(template.has_sha(), s.contains("{sha}"));

    let hex: String = input.sha_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let len = 7 + usize::from(input.sha_len) % 34;
    let sha = GitSha::parse(&hex[..len]).unwrap();
    let tag = template.render(&sha);
    // `render` builds the tag without checking it: it must be valid.
    assert_eq!(
        Tag::parse(tag.as_str()).as_ref(),
        Ok(&tag),
        "{template:?} {sha:?}"
    );
    if template.has_sha() {
        assert_eq!(template.sha_of(&tag), Some(sha));
    } else {
        assert_eq!(tag.as_str(), s);
        assert_eq!(template.sha_of(&tag), None);
    }
});
