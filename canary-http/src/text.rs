//! Answer bodies in messages.

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
    use super::one_line;

    #[test]
    fn blanks_control_characters_cuts_and_trims() {
        assert_eq!(one_line("  a\nb\tc  ", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("ééé", 2), "éé…");
    }
}
