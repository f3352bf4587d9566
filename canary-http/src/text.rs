//! Text in and out of headers and messages: the `User-Agent` a client
//! sends, answer bodies quoted in errors.

use canary_core::UsageError;
use reqwest::header::HeaderValue;

/// `user_agent` as a header value, or the usage error naming it (a face's
/// setting may hold anything). Checked before any request.
pub fn user_agent(user_agent: &str) -> Result<HeaderValue, UsageError> {
    HeaderValue::from_str(user_agent).map_err(|_| {
        UsageError::new(
            format!("user agent `{}`", user_agent.escape_debug()),
            "is not a valid header value",
            "use printable ASCII",
        )
    })
}

/// `text` on one line and at most `max_chars` characters: control
/// characters blanked, `…` where it was cut, trimmed. For quoting an
/// answer's body in an error message (scrub secrets out of it first).
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::{one_line, user_agent};

    #[test]
    fn blanks_control_characters_cuts_and_trims() {
        assert_eq!(one_line("  a\nb\tc  ", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("ééé", 2), "éé…");
    }

    #[test]
    fn a_user_agent_a_header_cannot_carry_is_named() {
        assert_eq!(user_agent("canary/1.0").unwrap(), "canary/1.0");
        let e = user_agent("bad\nagent").unwrap_err().to_string();
        assert!(e.contains("user agent `bad\\nagent`"), "{e}");
        assert!(e.contains("is not a valid header value"), "{e}");
    }
}
