//! The config file, `canary.toml`, as written.

use std::path::{Path, PathBuf};

use canary_core::UsageError;
use serde::Deserialize;

/// The config file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub(crate) release: ReleaseSection,
    #[serde(default)]
    pub(crate) fleet: FleetSection,
    #[serde(default)]
    pub(crate) suite: SuiteSection,
    #[serde(default)]
    pub(crate) rollout: RolloutSection,
    #[serde(default)]
    pub(crate) registry: RegistrySection,
    #[serde(default)]
    pub(crate) ledger: LedgerSection,
    #[serde(default)]
    pub(crate) guard: GuardSection,
    #[serde(default)]
    pub(crate) notify: Vec<NotifySection>,
    #[serde(default)]
    pub(crate) control_plane: ControlPlaneSection,
    #[serde(default)]
    pub(crate) analysis: Option<super::analysis::AnalysisSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlPlaneSection {
    pub(crate) url: Option<String>,
    pub(crate) token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardSection {
    pub(crate) urls_env: Option<String>,
    pub(crate) tokens_env: Option<String>,
    pub(crate) sample: Option<usize>,
    pub(crate) suite: Option<String>,
    pub(crate) bake: Option<String>,
    pub(crate) interval: Option<String>,
    pub(crate) failures_to_revert: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifySection {
    pub(crate) url_env: Option<String>,
    pub(crate) secret_env: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) on: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerSection {
    pub(crate) enabled: Option<bool>,
    pub(crate) signing_key_env: Option<String>,
    pub(crate) signing_key_file: Option<PathBuf>,
    pub(crate) public_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseSection {
    pub(crate) images: Option<Vec<String>>,
    pub(crate) staging_tag: Option<String>,
    pub(crate) promoted_tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FleetSection {
    pub(crate) urls: Option<Vec<String>>,
    pub(crate) urls_env: Option<String>,
    pub(crate) tokens_env: Option<String>,
    pub(crate) urls_file: Option<PathBuf>,
    pub(crate) tokens_file: Option<PathBuf>,
    pub(crate) on_empty: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuiteSection {
    pub(crate) builtin: Option<String>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) tenant_deadline: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutSection {
    pub(crate) probe: Option<bool>,
    pub(crate) deadline: Option<String>,
    pub(crate) interval: Option<String>,
    pub(crate) wait: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) json_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySection {
    pub(crate) insecure: Option<Vec<String>>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) timeout: Option<String>,
    pub(crate) attempts: Option<u32>,
}

/// Reads the config file: `explicit` (must exist) or `./canary.toml` (if
/// present).
pub fn load_file(explicit: Option<&Path>) -> Result<Option<(PathBuf, FileConfig)>, UsageError> {
    let path = if let Some(p) = explicit {
        p.to_path_buf()
    } else {
        let p = PathBuf::from("canary.toml");
        if !p.exists() {
            return Ok(None);
        }
        p
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UsageError::new(
            format!("config file `{}`", path.display()),
            format!("cannot be read ({e})"),
            "check the path given with --config or CANARY_CONFIG",
        )
    })?;
    let config: FileConfig = toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map_or((0, 0), |s| line_col(&text, s.start));
        UsageError::new(
            format!("config file `{}` line {line} column {col}", path.display()),
            format!("is invalid: {}", e.message()),
            "the sections are [release], [fleet], [suite], [rollout], [registry], [ledger], [guard], [[notify]], [control_plane] and [analysis]; see the README's configuration reference",
        )
    })?;
    Ok(Some((path, config)))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
