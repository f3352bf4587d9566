//! [`load_ca_bundle`]: the one reader of `ca_file`.

use std::path::Path;

use canary_core::UsageError;
use reqwest::Certificate;

/// Reads the PEM bundle at `path`, given through the setting `setting`
/// (`registry.ca_file`, `ca_file`; named in errors), as certificates to
/// trust besides the built-in roots.
///
/// One rule for every adapter: the file must be readable and hold at least
/// one `-----BEGIN CERTIFICATE-----` block, and every certificate in it must
/// parse. An empty file, a file of something else (a key, a typo'd path to
/// a config) or a damaged certificate is a [`UsageError`] naming the file
/// and the fix: trusting nothing extra would only show up later, as a TLS
/// failure far from its cause.
pub fn load_ca_bundle(setting: &str, path: &Path) -> Result<Vec<Certificate>, UsageError> {
    let input = format!("{setting} `{}`", path.display());
    let pem = std::fs::read(path).map_err(|e| {
        UsageError::new(
            input.clone(),
            format!("cannot be read: {e}"),
            format!("point {setting} at a PEM file of CA certificates"),
        )
    })?;
    let no_certificate = |why: String| {
        UsageError::new(
            input.clone(),
            format!("holds no PEM certificate{why}"),
            format!(
                "point {setting} at a PEM file with `-----BEGIN CERTIFICATE-----` blocks \
                 (e.g. the CA's `ca.crt`)"
            ),
        )
    };
    let certs = Certificate::from_pem_bundle(&pem)
        .map_err(|e| no_certificate(format!(" (it is not valid PEM: {e})")))?;
    if certs.is_empty() {
        let why = if pem.iter().all(u8::is_ascii_whitespace) {
            " (the file is empty)"
        } else {
            ""
        };
        return Err(no_certificate(why.to_string()));
    }
    // The PEM reader only decodes base64; a client build parses each
    // certificate, so a damaged one is refused here, with the file named,
    // rather than as an anonymous client-build failure.
    let mut probe = reqwest::Client::builder();
    for cert in &certs {
        probe = probe.add_root_certificate(cert.clone());
    }
    probe.build().map_err(|e| {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why = format!("{why}: {s}");
            source = s.source();
        }
        UsageError::new(
            input.clone(),
            format!("holds a certificate that cannot be parsed: {why}"),
            format!("point {setting} at a PEM file of valid CA certificates"),
        )
    })?;
    Ok(certs)
}
