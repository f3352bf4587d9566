//! `[[notify]]`: where outcomes are sent. Only variable names live in the
//! file: a webhook URL is a credential, and so is its signing secret.

use canary_core::{Outcome, UsageError};

use super::file::NotifySection;

/// The shape of a notification body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The JSON summary, signed when a secret is set.
    Json,
    /// A Slack incoming-webhook message.
    Slack,
}

/// One `[[notify]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The variable holding the webhook URL.
    pub url_env: String,
    /// The variable holding the HMAC secret, when signing.
    pub secret_env: Option<String>,
    /// The body's shape.
    pub format: NotifyFormat,
    /// The outcomes sent.
    pub on: Vec<Outcome>,
}

/// Every outcome but `usage` (bad input is the caller's to see, not a
/// channel's): what `on` is when left out.
pub fn default_on() -> Vec<Outcome> {
    Outcome::ALL
        .into_iter()
        .filter(|o| *o != Outcome::Usage)
        .collect()
}

pub(super) fn resolve(
    file_name: &str,
    sections: Vec<NotifySection>,
) -> Result<Vec<NotifyTarget>, UsageError> {
    sections
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |key: &str| format!("{file_name}: notify[{}].{key}", i + 1);
            let name = |key: &str, raw: &str| -> Result<String, UsageError> {
                if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    Ok(raw.to_string())
                } else {
                    Err(UsageError::new(
                        format!("{} (file {})", key.replace('_', " "), at(key)),
                        "is not an environment variable name",
                        "name the variable that holds it (e.g. CANARY_WEBHOOK_URL): a webhook URL and its secret are credentials and never go in the file",
                    ))
                }
            };
            let url_env = match &s.url_env {
                Some(v) => name("url_env", v)?,
                None => {
                    return Err(UsageError::new(
                        format!("notify[{}] (file {file_name})", i + 1),
                        "has no url_env",
                        "add url_env = \"CANARY_WEBHOOK_URL\" and export the webhook URL in that variable",
                    ))
                }
            };
            let secret_env = s.secret_env.as_deref().map(|v| name("secret_env", v)).transpose()?;
            let format = match s.format.as_deref().unwrap_or("json") {
                "json" => NotifyFormat::Json,
                "slack" => NotifyFormat::Slack,
                other => {
                    return Err(UsageError::new(
                        format!("notify format `{other}` (file {})", at("format")),
                        "is neither `json` nor `slack`",
                        "write format = \"json\" (a signed JSON summary) or \"slack\" (an incoming-webhook message)",
                    ))
                }
            };
            let on = match s.on {
                None => default_on(),
                Some(list) => list
                    .iter()
                    .map(|o| {
                        Outcome::ALL.into_iter().find(|x| x.as_str() == o).ok_or_else(|| {
                            UsageError::new(
                                format!("notify outcome `{o}` (file {})", at("on")),
                                "is not an outcome",
                                format!(
                                    "use any of: {}",
                                    Outcome::ALL.map(Outcome::as_str).join(", ")
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            Ok(NotifyTarget {
                url_env,
                secret_env,
                format,
                on,
            })
        })
        .collect()
}
