//! Where registry credentials come from.

use std::fmt;
use std::fs;
use std::path::PathBuf;

use canary_core::{Secret, UsageError};
use docker_credential::{CredentialRetrievalError, DockerCredential};

/// A credential for one registry, as sent to it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Username and password (or token as password): Basic auth, or the
    /// Basic-authenticated token request of a Bearer flow.
    Basic { username: String, password: Secret },
    /// A ready bearer token, sent as is.
    Bearer(Secret),
    /// An OAuth2 refresh token from a docker login (`identitytoken`).
    IdentityToken { token: Secret },
}

impl Credential {
    /// The secret strings an error message must never contain.
    pub(crate) fn secrets(&self) -> Vec<String> {
        match self {
            Self::Basic { username, password } => vec![
                password.expose().to_string(),
                base64_basic(username, password),
            ],
            Self::Bearer(s) | Self::IdentityToken { token: s } => vec![s.expose().to_string()],
        }
    }

    /// Where it came from, for messages: never the secret itself.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Basic { username, .. } => format!("user `{username}`"),
            Self::Bearer(_) => "a bearer token".to_string(),
            Self::IdentityToken { .. } => "a docker identity token".to_string(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::IdentityToken { .. } => f.write_str("IdentityToken(***)"),
        }
    }
}

pub(crate) fn base64_basic(username: &str, password: &Secret) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()))
}

#[derive(Clone)]
enum Source {
    Explicit { username: String, password: Secret },
    Token(Secret),
    GitHub { actor: String, token: Secret },
    DockerConfig(PathBuf),
}

/// Where credentials come from, in order; the first source that has a
/// credential for a registry wins, and a registry none of them knows is
/// reached anonymously.
///
/// [`Credentials::from_env`] builds the order of the design:
///
/// 1. `CANARY_REGISTRY_USERNAME` + `CANARY_REGISTRY_PASSWORD` (explicit,
///    used for every registry of the run),
/// 2. `CANARY_REGISTRY_TOKEN`: a ready bearer token, sent as is,
/// 3. `GITHUB_ACTOR` + `GITHUB_TOKEN`, for `ghcr.io` only,
/// 4. the docker config (`$DOCKER_CONFIG/config.json`, else
///    `~/.docker/config.json`): `auths`, `credHelpers`, `credsStore`,
/// 5. anonymous.
///
/// Empty variables count as unset (GitHub Actions passes a missing secret
/// as an empty string). `Debug` never shows a password or token.
#[derive(Clone, Default)]
pub struct Credentials {
    sources: Vec<Source>,
}

impl Credentials {
    /// No credentials: every registry is reached anonymously.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A username and password (or access token) for every registry.
    pub fn basic(username: impl Into<String>, password: Secret) -> Self {
        Self {
            sources: vec![Source::Explicit {
                username: username.into(),
                password,
            }],
        }
    }

    /// A ready bearer token for every registry.
    pub fn bearer(token: Secret) -> Self {
        Self {
            sources: vec![Source::Token(token)],
        }
    }

    /// Only the docker config file at `path` (`config.json`).
    pub fn docker_config(path: impl Into<PathBuf>) -> Self {
        Self {
            sources: vec![Source::DockerConfig(path.into())],
        }
    }

    /// The sources of the design, read through `env` (pass
    /// `|name| std::env::var(name).ok()`; tests pass a map).
    ///
    /// A username without a password (or the reverse) is a usage error.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, UsageError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut sources = Vec::new();
        match (
            var("CANARY_REGISTRY_USERNAME"),
            var("CANARY_REGISTRY_PASSWORD"),
        ) {
            (Some(username), Some(password)) => sources.push(Source::Explicit {
                username,
                password: Secret::new(password),
            }),
            (Some(_), None) => {
                return Err(UsageError::new(
                    "CANARY_REGISTRY_USERNAME",
                    "is set but CANARY_REGISTRY_PASSWORD is not",
                    "set both, or neither to use the other credential sources",
                ))
            }
            (None, Some(_)) => {
                return Err(UsageError::new(
                    "CANARY_REGISTRY_PASSWORD",
                    "is set but CANARY_REGISTRY_USERNAME is not",
                    "set both, or neither to use the other credential sources",
                ))
            }
            (None, None) => {}
        }
        if let Some(token) = var("CANARY_REGISTRY_TOKEN") {
            sources.push(Source::Token(Secret::new(token)));
        }
        if let (Some(actor), Some(token)) = (var("GITHUB_ACTOR"), var("GITHUB_TOKEN")) {
            sources.push(Source::GitHub {
                actor,
                token: Secret::new(token),
            });
        }
        let config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".docker")));
        if let Some(dir) = config_dir {
            sources.push(Source::DockerConfig(dir.join("config.json")));
        }
        Ok(Self { sources })
    }

    /// The credential for `registry` (the host as in the image name), or
    /// `None` for anonymous. May run a docker credential helper, so call it
    /// off the async executor.
    pub(crate) fn resolve(&self, registry: &str) -> Result<Option<Credential>, String> {
        for source in &self.sources {
            match source {
                Source::Explicit { username, password } => {
                    return Ok(Some(Credential::Basic {
                        username: username.clone(),
                        password: password.clone(),
                    }))
                }
                Source::Token(token) => return Ok(Some(Credential::Bearer(token.clone()))),
                Source::GitHub { actor, token } => {
                    if registry == "ghcr.io" {
                        return Ok(Some(Credential::Basic {
                            username: actor.clone(),
                            password: token.clone(),
                        }));
                    }
                }
                Source::DockerConfig(path) => {
                    if let Some(c) = from_docker_config(path, registry)? {
                        return Ok(Some(c));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Names of the sources, in order, for hints.
    pub(crate) fn describe_sources(&self) -> String {
        if self.sources.is_empty() {
            return "none (anonymous)".to_string();
        }
        self.sources
            .iter()
            .map(|s| match s {
                Source::Explicit { .. } => "explicit username/password".to_string(),
                Source::Token(_) => "CANARY_REGISTRY_TOKEN".to_string(),
                Source::GitHub { .. } => "GITHUB_ACTOR/GITHUB_TOKEN (ghcr.io)".to_string(),
                Source::DockerConfig(p) => format!("docker config {}", p.display()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for s in &self.sources {
            match s {
                Source::Explicit { username, .. } => {
                    list.entry(&format_args!(
                        "Explicit {{ username: {username:?}, password: *** }}"
                    ));
                }
                Source::Token(_) => {
                    list.entry(&format_args!("Token(***)"));
                }
                Source::GitHub { actor, .. } => {
                    list.entry(&format_args!("GitHub {{ actor: {actor:?}, token: *** }}"));
                }
                Source::DockerConfig(p) => {
                    list.entry(&format_args!("DockerConfig({})", p.display()));
                }
            }
        }
        list.finish()
    }
}

/// The keys a docker config may use for `registry`: Docker Hub is stored as
/// `https://index.docker.io/v1/`; others by host, sometimes with a scheme.
fn config_keys(registry: &str) -> Vec<String> {
    if crate::endpoint::is_docker_hub(registry) {
        vec![
            "https://index.docker.io/v1/".to_string(),
            "index.docker.io".to_string(),
            "docker.io".to_string(),
            "registry-1.docker.io".to_string(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

/// A missing or unreadable config means "no credential here". A config that
/// is not JSON, a helper that cannot be run, and a helper that runs and
/// fails are errors naming the file or the helper, as docker's own are (a
/// helper's output is not repeated: it may hold a secret).
fn from_docker_config(path: &PathBuf, registry: &str) -> Result<Option<Credential>, String> {
    let Ok(text) = fs::read(path) else {
        return Ok(None);
    };
    for key in config_keys(registry) {
        match docker_credential::get_credential_from_reader(text.as_slice(), &key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Ok(Some(Credential::Basic {
                    username,
                    password: Secret::new(password),
                }))
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                return Ok(Some(Credential::IdentityToken {
                    token: Secret::new(token),
                }))
            }
            Err(CredentialRetrievalError::HelperFailure { helper, stdout, .. }) => {
                // Helpers answer "credentials not found" for hosts they do not
                // know; that is not a failure, try the next key.
                if stdout.to_ascii_lowercase().contains("not found") {
                    continue;
                }
                return Err(format!(
                    "docker credential helper `{helper}` (from {}) failed for `{key}`",
                    path.display()
                ));
            }
            Err(CredentialRetrievalError::HelperCommunicationError) => {
                // As docker does: a configured helper that cannot be run is
                // an error, not silently anonymous.
                return Err(format!(
                    "docker credential helper `docker-credential-{}` (named in {}) could not be run: is it installed and on PATH?",
                    helper_for(&text, &key).unwrap_or_else(|| "?".to_string()),
                    path.display()
                ));
            }
            Err(CredentialRetrievalError::ConfigReadError) => {
                let why = serde_json::from_slice::<serde_json::Value>(&text)
                    .err()
                    .map_or_else(String::new, |e| format!(" ({e})"));
                return Err(format!(
                    "docker config {} is not valid JSON{why}",
                    path.display()
                ));
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// The helper a docker config names for `key`: its `credHelpers` entry,
/// else its `credsStore`.
fn helper_for(text: &[u8], key: &str) -> Option<String> {
    let config: serde_json::Value = serde_json::from_slice(text).ok()?;
    config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn explicit_wins_for_every_registry() {
        let c = Credentials::from_env(env(&[
            ("CANARY_REGISTRY_USERNAME", "ci"),
            ("CANARY_REGISTRY_PASSWORD", "pw-explicit"),
            ("CANARY_REGISTRY_TOKEN", "tok"),
            ("GITHUB_ACTOR", "octo"),
            ("GITHUB_TOKEN", "ghs_x"),
        ]))
        .unwrap();
        for host in ["ghcr.io", "docker.io", "127.0.0.1:5000"] {
            assert_eq!(
                c.resolve(host).unwrap(),
                Some(Credential::Basic {
                    username: "ci".into(),
                    password: Secret::new("pw-explicit")
                })
            );
        }
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("pw-explicit") && !debug.contains("ghs_x") && !debug.contains("tok\"")
        );
    }

    #[test]
    fn half_explicit_is_a_usage_error() {
        let e = Credentials::from_env(env(&[("CANARY_REGISTRY_USERNAME", "ci")])).unwrap_err();
        assert_eq!(e.input(), "CANARY_REGISTRY_USERNAME");
        let e = Credentials::from_env(env(&[("CANARY_REGISTRY_PASSWORD", "x")])).unwrap_err();
        assert_eq!(e.input(), "CANARY_REGISTRY_PASSWORD");
        // Empty counts as unset.
        assert!(Credentials::from_env(env(&[
            ("CANARY_REGISTRY_USERNAME", ""),
            ("CANARY_REGISTRY_PASSWORD", "")
        ]))
        .is_ok());
    }

    #[test]
    fn token_then_github_for_ghcr_only() {
        let c = Credentials::from_env(env(&[("CANARY_REGISTRY_TOKEN", "tok")])).unwrap();
        assert_eq!(
            c.resolve("ghcr.io").unwrap(),
            Some(Credential::Bearer(Secret::new("tok")))
        );
        let c = Credentials::from_env(env(&[("GITHUB_ACTOR", "octo"), ("GITHUB_TOKEN", "ghs_x")]))
            .unwrap();
        assert_eq!(
            c.resolve("ghcr.io").unwrap(),
            Some(Credential::Basic {
                username: "octo".into(),
                password: Secret::new("ghs_x")
            })
        );
        assert_eq!(c.resolve("docker.io").unwrap(), None);
    }

    #[test]
    fn docker_config_auths_and_docker_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOmh1Yi1wdw=="},
                "registry.example:5000":{"auth":"dTpwLXJlZw=="},
                "ident.example":{"identitytoken":"idtok"}
            }}"#,
        )
        .unwrap();
        let c =
            Credentials::from_env(env(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())])).unwrap();
        assert_eq!(
            c.resolve("docker.io").unwrap(),
            Some(Credential::Basic {
                username: "hub".into(),
                password: Secret::new("hub-pw")
            })
        );
        assert_eq!(
            c.resolve("registry.example:5000").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: Secret::new("p-reg")
            })
        );
        assert_eq!(
            c.resolve("ident.example").unwrap(),
            Some(Credential::IdentityToken {
                token: Secret::new("idtok")
            })
        );
        assert_eq!(c.resolve("other.example").unwrap(), None);
    }

    #[test]
    fn home_is_the_fallback_and_a_broken_config_is_named() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::write(home.path().join(".docker/config.json"), "not json").unwrap();
        let c = Credentials::from_env(env(&[("HOME", home.path().to_str().unwrap())])).unwrap();
        assert!(format!("{c:?}").contains(".docker/config.json"));
        // Ignoring it left "none were found" as the only clue (issue 14).
        let e = c.resolve("ghcr.io").unwrap_err();
        assert!(e.contains(".docker/config.json is not valid JSON"), "{e}");
    }
}
