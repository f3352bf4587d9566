//! Handing a run's results to the runner: annotations on stdout, outputs
//! to `$GITHUB_OUTPUT`, the summary to `$GITHUB_STEP_SUMMARY`. What they
//! say is decided by the caller (canary's own renderings live in
//! `canary-report`); this module only writes them, masked.

use std::io::Write;

use crate::command::{Annotation, Commands};
use crate::env::GithubEnv;
use crate::error::GhaError;
use crate::output::append_outputs;
use crate::summary::{append_summary, SummaryWritten};

/// The longest annotation message worth writing; the runner shows no more.
/// Renderers cut longer ones with `…`.
pub const ANNOTATION_MESSAGE_LIMIT: usize = 4096;

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Annotations written.
    pub annotations: usize,
    /// Outputs written to `$GITHUB_OUTPUT` (0 when it is not set).
    pub outputs: usize,
    /// The summary write, when `$GITHUB_STEP_SUMMARY` is set.
    pub summary: Option<SummaryWritten>,
}

/// Writes `annotations` on `commands`, `outputs` to `$GITHUB_OUTPUT` and
/// `markdown` to `$GITHUB_STEP_SUMMARY`, each file skipped when the runner
/// did not set it. Secrets masked on `commands` are redacted from all three.
pub fn publish<W: Write>(
    commands: &mut Commands<W>,
    env: &GithubEnv,
    annotations: &[Annotation],
    outputs: &[(String, String)],
    markdown: &str,
) -> Result<Published, GhaError> {
    for annotation in annotations {
        commands.annotate(annotation)?;
    }
    commands.flush()?;
    let mut written = 0;
    if let Some(path) = &env.output {
        let values: Vec<(String, String)> = outputs
            .iter()
            .map(|(k, v)| (k.clone(), commands.redact(v).into_owned()))
            .collect();
        append_outputs(path, &values)?;
        written = values.len();
    }
    let summary = match &env.step_summary {
        Some(path) => Some(append_summary(path, &commands.redact(markdown))?),
        None => None,
    };
    Ok(Published {
        annotations: annotations.len(),
        outputs: written,
        summary,
    })
}
