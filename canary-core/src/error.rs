//! Errors.
//!
//! Two types: [`UsageError`] for bad input found before any request (exit 2),
//! and [`Error`] for everything that happens while talking to a registry or a
//! tenant. `Error` follows OpenDAL's shape, a struct with an [`ErrorKind`]
//! rather than one enum variant per category: the kinds are what the
//! promotion logic branches on, and every error carries the same context
//! fields (message, hint, source) whatever its kind.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Bad input or configuration, found before any network request.
///
/// Names the input, what is wrong with it and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} {problem}")]
pub struct UsageError {
    input: String,
    problem: String,
    fix: String,
}

impl UsageError {
    /// A usage error: `input` names the input (`sha \`xyz\``), `problem`
    /// says what is wrong with it (`is not hexadecimal`), `fix` how to fix it.
    pub fn new(
        input: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            input: input.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The input that is wrong.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// How to fix it.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

/// What kind of failure an [`Error`] is; the promotion logic branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The manifest, tag or repository does not exist.
    NotFound,
    /// Credentials are missing, wrong or expired.
    Unauthorized,
    /// Credentials are valid but do not allow the operation.
    Denied,
    /// The server asked us to slow down (429).
    RateLimited,
    /// A temporary failure: 5xx, 408, connection error, timeout.
    Transient,
    /// Content does not match its digest, or a digest read back differs.
    Integrity,
    /// The server refused the request as invalid (`TAG_INVALID`,
    /// `MANIFEST_INVALID`, an immutable tag…).
    Invalid,
    /// The server answered something canary cannot use (HTML, a body that
    /// is not the protocol).
    Protocol,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether retrying the same request may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Transient)
    }

    /// The kind's machine name, as in JSON (`not_found`).
    pub fn name(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::Integrity => "integrity",
            Self::Invalid => "invalid",
            Self::Protocol => "protocol",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::Unauthorized => "unauthorized",
            Self::Denied => "denied",
            Self::RateLimited => "rate limited",
            Self::Transient => "transient failure",
            Self::Integrity => "integrity failure",
            Self::Invalid => "invalid request",
            Self::Protocol => "protocol error",
            Self::Other => "error",
        })
    }
}

/// A failure while talking to a registry or a tenant.
///
/// The message never contains a secret: adapters build it from URLs,
/// image names, status codes and the server's error codes, never from
/// headers or credentials.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Adds a hint on how to fix it.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefixes the message with context (`image ghcr.io/a/b: …`).
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A hint on how to fix it, where one is known.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Whether retrying may succeed.
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// The message followed by every source in the chain, `: `-separated.
    pub fn chain(&self) -> String {
        let mut out = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let s = e.to_string();
            if !out.contains(&s) {
                out.push_str(": ");
                out.push_str(&s);
            }
            next = e.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_hint() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Error::new(ErrorKind::Transient, "GET /v2/")
            .with_source(io)
            .with_hint("is the registry running?")
            .context("registry 127.0.0.1:1");
        assert_eq!(
            e.chain(),
            "registry 127.0.0.1:1: GET /v2/: connection refused"
        );
        assert_eq!(e.hint(), Some("is the registry running?"));
        assert!(e.retryable());
        assert!(!ErrorKind::NotFound.retryable());
    }

    #[test]
    fn usage_error_names_input() {
        let e = UsageError::new("sha `x`", "is not hexadecimal", "pass a sha");
        assert_eq!(e.to_string(), "sha `x` is not hexadecimal");
        assert_eq!(e.fix(), "pass a sha");
    }
}
