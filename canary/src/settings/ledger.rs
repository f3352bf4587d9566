//! `[ledger]`: whether canary records every move in the registry, and the
//! keys that sign and verify the records.

use std::path::PathBuf;

use canary_core::UsageError;

use super::file::LedgerSection;
use super::{boolean, named, setting, Resolver, Source, Sourced};

/// The default variable holding the signing key (PKCS#8 PEM).
pub const DEFAULT_SIGNING_KEY_ENV: &str = "CANARY_SIGNING_KEY";

/// The release ledger's settings.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// Whether to write and read ledger records (default: yes).
    pub enabled: Sourced<bool>,
    /// The variable holding the signing key's PEM.
    pub signing_key_env: Sourced<String>,
    /// A file holding the signing key's PEM (instead of the variable).
    pub signing_key_file: Sourced<Option<PathBuf>>,
    /// The public key records are verified with (`verify-record`).
    pub public_key_file: Sourced<Option<PathBuf>>,
}

fn existing_file(
    what: &'static str,
) -> impl Fn(Option<PathBuf>, &Source) -> Result<Option<PathBuf>, UsageError> {
    move |raw, source| {
        match raw {
        Some(p) if !p.is_file() => Err(UsageError::new(
            named(source, &format!("{what} `{}`", p.display())),
            "does not exist or is not a file",
            "give the path of a PEM file (`openssl genpkey` writes the private key, `openssl pkey -pubout` the public one)",
        )),
        other => Ok(other),
    }
    }
}

impl LedgerSettings {
    pub(super) fn resolve(r: &Resolver<'_>, file: LedgerSection) -> Result<Self, UsageError> {
        let o = r.overrides;
        let enabled = r.pick(
            o.ledger.clone(),
            setting::LEDGER,
            || r.env_value(setting::LEDGER),
            file.enabled.map(|b| b.to_string()),
            "ledger.enabled",
            "true".to_string(),
            |raw, source| boolean(&raw, source, "ledger"),
        )?;
        let signing_key_env = r.file_only(
            file.signing_key_env,
            "ledger.signing_key_env",
            DEFAULT_SIGNING_KEY_ENV,
            |raw, source| {
                if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    Ok(raw)
                } else {
                    Err(UsageError::new(
                        named(source, &format!("signing key variable `{raw}`")),
                        "is not an environment variable name",
                        "name the variable that holds the PEM, e.g. CANARY_SIGNING_KEY — not the key",
                    ))
                }
            },
        )?;
        let signing_key_file = r.pick(
            o.signing_key_file.clone().map(Some),
            setting::SIGNING_KEY_FILE,
            || {
                r.env_value(setting::SIGNING_KEY_FILE)
                    .map(|p| Some(PathBuf::from(p)))
            },
            file.signing_key_file.map(Some),
            "ledger.signing_key_file",
            None,
            existing_file("signing key file"),
        )?;
        let public_key_file = r.pick(
            o.public_key.clone().map(Some),
            setting::PUBLIC_KEY,
            || {
                r.env_value(setting::PUBLIC_KEY)
                    .map(|p| Some(PathBuf::from(p)))
            },
            file.public_key_file.map(Some),
            "ledger.public_key_file",
            None,
            existing_file("public key file"),
        )?;
        Ok(Self {
            enabled,
            signing_key_env,
            signing_key_file,
            public_key_file,
        })
    }
}
