//! `[control_plane]`: where `canary fleet enroll` makes an org a canary
//! org, and the variable holding the control plane's admin token.

use canary_core::UsageError;

use super::file::ControlPlaneSection;
use super::{named, setting, Resolver, Source, Sourced};

/// The default variable holding the control plane's admin token.
pub const DEFAULT_CONTROL_PLANE_TOKEN_ENV: &str = "MOLECULE_STAGING_CP_SHARED_SECRET";

/// The control plane's settings.
#[derive(Debug, Clone)]
pub struct ControlPlaneSettings {
    /// The control plane's base URL (`None`: not configured; only
    /// `canary fleet enroll` needs it).
    pub url: Sourced<Option<String>>,
    /// The variable holding its admin token.
    pub token_env: Sourced<String>,
}

impl ControlPlaneSettings {
    pub(super) fn resolve(r: &Resolver<'_>, file: ControlPlaneSection) -> Result<Self, UsageError> {
        let o = r.overrides;
        let url = r.pick(
            o.control_plane_url.clone().map(Some),
            setting::CONTROL_PLANE_URL,
            || r.env_value(setting::CONTROL_PLANE_URL).map(Some),
            file.url.map(Some),
            "control_plane.url",
            None,
            |raw: Option<String>, source: &Source| match raw {
                // The full check (https, no credentials) is the client's,
                // before its first request; a value that is no URL at all
                // is refused here, with its source.
                Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                    Err(UsageError::new(
                        named(source, &format!("control plane URL `{u}`")),
                        "is not an http(s) URL",
                        "give the control plane's base URL, e.g. https://cp.example.com",
                    ))
                }
                other => Ok(other.filter(|u| !u.trim().is_empty())),
            },
        )?;
        let token_env = r.pick(
            o.control_plane_token_env.clone(),
            setting::CONTROL_PLANE_TOKEN_ENV,
            || r.env_value(setting::CONTROL_PLANE_TOKEN_ENV),
            file.token_env,
            "control_plane.token_env",
            DEFAULT_CONTROL_PLANE_TOKEN_ENV.to_string(),
            |raw, source| {
                let ok = !raw.is_empty()
                    && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !raw.starts_with(|c: char| c.is_ascii_digit());
                if ok {
                    Ok(raw)
                } else {
                    // Not quoted: it may be the token itself.
                    Err(UsageError::new(
                        named(source, "control plane token variable"),
                        "is not an environment variable name",
                        "name the variable that holds the admin token, e.g. MOLECULE_STAGING_CP_SHARED_SECRET — not the token",
                    ))
                }
            },
        )?;
        Ok(Self { url, token_env })
    }
}
