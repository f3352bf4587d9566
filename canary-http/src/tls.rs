//! [`tls_config`]: the TLS settings of clients made per tenant.

use std::path::Path;
use std::sync::Arc;

use canary_core::UsageError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The rustls client settings reqwest's `rustls-tls` would build (the
/// webpki roots, TLS 1.2 and 1.3, the ring provider), plus the CA bundle at
/// `ca_file` when given (checked by [`crate::load_ca_bundle`], so the same
/// errors), offering HTTP/1.1.
///
/// Built once per run: a client made from it per tenant (with
/// `reqwest::ClientBuilder::use_preconfigured_tls`) costs no root parsing,
/// so every tenant can have a connection pool of its own, closed when its
/// suite ends.
pub fn tls_config(
    ca_file: Option<&Path>,
    setting: &str,
) -> Result<rustls::ClientConfig, UsageError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        crate::load_ca_bundle(setting, path)?;
        let input = format!("{setting} `{}`", path.display());
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| {
                UsageError::new(
                    input.clone(),
                    format!("cannot be read as PEM certificates: {e}"),
                    format!("point {setting} at a PEM file of CA certificates"),
                )
            })?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                UsageError::new(
                    input.clone(),
                    format!("holds a certificate that cannot be used as a root: {e}"),
                    format!("point {setting} at a PEM file of valid CA certificates"),
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            UsageError::new(
                "TLS settings",
                format!("cannot be built: {e}"),
                "report this as a bug in canary",
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
