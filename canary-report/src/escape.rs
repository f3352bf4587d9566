//! The one rule for untrusted text in Markdown.
//!
//! Check results quote tenant responses and registry errors: text canary
//! does not control. Every Markdown rendering (step summary, post-mortem)
//! passes such text through [`markdown_text`], so a tenant answering HTML
//! or a table row cannot change the document's structure.

/// Untrusted text as inert inline Markdown: one line (control characters,
/// line breaks included, become spaces), `|` escaped so it stays inside its
/// table cell, and `<`, `>`, `&` as entities so no HTML tag or entity
/// survives. Backticks stay: at worst they format a span as code.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// [`markdown_text`] as a code span.
pub fn markdown_code(text: &str) -> String {
    format!("`{}`", markdown_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_inert() {
        assert_eq!(
            markdown_text("a|b\n<script>`x`</script>&"),
            "a\\|b &lt;script&gt;`x`&lt;/script&gt;&amp;"
        );
        assert_eq!(markdown_code("<b>"), "`&lt;b&gt;`");
    }
}
