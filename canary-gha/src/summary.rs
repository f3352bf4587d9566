//! The job summary (`$GITHUB_STEP_SUMMARY`), kept under GitHub's 1 MiB limit.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::error::GhaError;

/// GitHub's limit on one step's summary file: 1 MiB. A larger file is not
/// shown at all, so canary truncates to stay under it.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// What [`append_summary`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryWritten {
    /// Bytes appended (note included).
    pub bytes: usize,
    /// Whether the Markdown was cut to fit.
    pub truncated: bool,
}

/// `markdown` cut to at most `budget` bytes, with a note saying so.
///
/// The cut falls on a line break where there is one (else on a character
/// boundary), an open code fence is closed so the note renders as text, and
/// the note says how much is shown. Markdown that fits is returned as is;
/// when not even the note fits, the result is empty.
pub fn fit_summary(markdown: &str, budget: usize) -> Cow<'_, str> {
    if markdown.len() <= budget {
        return Cow::Borrowed(markdown);
    }
    let note = |shown: usize| {
        format!(
            "\n\n> **Summary truncated** to stay under GitHub's 1 MiB step-summary limit: \
             {shown} of {} bytes shown. The full report is in the JSON report (`--report`).\n",
            markdown.len()
        )
    };
    // The note's length with the largest possible count, so it always fits.
    let reserve = note(markdown.len()).len() + "\n```\n".len();
    let Some(room) = budget.checked_sub(reserve) else {
        return Cow::Borrowed("");
    };
    let mut cut = room.min(markdown.len());
    while !markdown.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(lf) = markdown[..cut].rfind('\n') {
        cut = lf + 1;
    }
    let kept = &markdown[..cut];
    let mut out = String::with_capacity(budget);
    out.push_str(kept);
    let fences = kept
        .lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count();
    if fences % 2 == 1 {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("```\n");
    }
    out.push_str(&note(kept.len()));
    debug_assert!(out.len() <= budget);
    Cow::Owned(out)
}

/// Appends `markdown` to the summary file at `path`, cut (with a note) so
/// that the file stays within [`SUMMARY_LIMIT`], counting what earlier
/// writes of the same step left there.
pub fn append_summary(path: &Path, markdown: &str) -> Result<SummaryWritten, GhaError> {
    append_summary_limited(path, markdown, SUMMARY_LIMIT)
}

/// [`append_summary`] with another limit (for tests).
pub fn append_summary_limited(
    path: &Path,
    markdown: &str,
    limit: usize,
) -> Result<SummaryWritten, GhaError> {
    let io = |e| GhaError::io(Some(path.to_path_buf()), e);
    let existing = match std::fs::metadata(path) {
        Ok(m) => usize::try_from(m.len()).unwrap_or(usize::MAX),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(e)),
    };
    let budget = limit.saturating_sub(existing);
    let text = fit_summary(markdown, budget);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(SummaryWritten {
        bytes: text.len(),
        truncated: text.len() != markdown.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_untouched() {
        assert!(matches!(fit_summary("# ok\n", 10), Cow::Borrowed("# ok\n")));
    }

    #[test]
    fn cuts_on_a_line_and_a_char_boundary() {
        let md = "| row | é€😀 |\n".repeat(2000);
        for budget in [400, 1000, 4096, 10_000, 20_001] {
            let out = fit_summary(&md, budget);
            assert!(out.len() <= budget, "{budget}: {}", out.len());
            assert!(out.contains("Summary truncated"));
            let (kept, _) = out.split_once("\n\n> **Summary truncated**").unwrap();
            assert!(md.starts_with(kept));
            assert!(kept.ends_with("|\n"), "cut at a line");
        }
        // One long line: cut inside it, on a char boundary.
        let long = "😀".repeat(1000);
        let out = fit_summary(&long, 1000);
        assert!(out.len() <= 1000);
        assert!(out.starts_with("😀"));
        assert_eq!(fit_summary(&long, 10), "");
    }

    #[test]
    fn closes_an_open_fence() {
        let md = format!("# r\n```text\n{}```\n", "body line\n".repeat(500));
        let out = fit_summary(&md, 1200);
        let fences = out.lines().filter(|l| l.starts_with("```")).count();
        assert_eq!(fences, 2, "{out}");
        assert!(out.ends_with("(`--report`).\n"));
    }

    #[test]
    fn counts_what_the_step_already_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        let first = append_summary_limited(&path, &"a\n".repeat(300), 1000).unwrap();
        assert_eq!(
            first,
            SummaryWritten {
                bytes: 600,
                truncated: false
            }
        );
        let second = append_summary_limited(&path, &"b\n".repeat(300), 1000).unwrap();
        assert!(second.truncated);
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= 1000, "{len}");
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("Summary truncated"));
    }
}
