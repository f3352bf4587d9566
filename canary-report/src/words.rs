//! The human words for statuses, where prose reads better than the
//! machine spelling (`as_str()` on each status, which the JSON report,
//! outputs and progress lines use). Every rendering takes its words from
//! here, so the terminal, the step summary and the post-mortem agree.

use canary_core::{CheckStatus, ImageStatus};

/// A check's status in prose: `passed`, `failed`, `no verdict`, `not run`.
pub fn check(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::Error => "no verdict",
        CheckStatus::NotRun => "not run",
    }
}

/// A check's status as a four-column mark for log lines: `ok  `, `FAIL`,
/// `ERR `, `skip`.
pub fn check_mark(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "ok  ",
        CheckStatus::Failed => "FAIL",
        CheckStatus::Error => "ERR ",
        CheckStatus::NotRun => "skip",
    }
}

/// An image's status in prose: `unchanged`, `would move`, `moved`,
/// `restored`, `MIXED` (shouted: it needs an operator).
pub fn image(status: ImageStatus) -> &'static str {
    match status {
        ImageStatus::Unchanged => "unchanged",
        ImageStatus::WouldMove => "would move",
        ImageStatus::Moved => "moved",
        ImageStatus::Restored => "restored",
        ImageStatus::Mixed => "MIXED",
    }
}

/// `word` with its first letter in upper case, for a heading-like column
/// (`Not run`).
pub fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalizes_the_first_letter_only() {
        assert_eq!(capitalized(check(CheckStatus::NotRun)), "Not run");
        assert_eq!(capitalized(image(ImageStatus::Mixed)), "MIXED");
        assert_eq!(capitalized(""), "");
    }
}
