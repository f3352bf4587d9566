//! Secrets and the tenants that hold them: values that must never print.

use std::fmt;

/// A secret value: a registry password or token, a tenant admin token.
///
/// `Debug` and `Display` print `***`; the value is reachable only through
/// [`Secret::expose`], so it cannot reach a log line or a report by accident.
/// `Secret` deliberately implements neither `Serialize` nor `Deserialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call this only where the value is sent to
    /// the party it belongs to (an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A canary tenant: its base URL and admin token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tenant {
    url: String,
    token: Secret,
}

impl Tenant {
    /// A tenant. The URL is kept as given, without a trailing slash; URL
    /// validation belongs to the adapter that builds the fleet.
    pub fn new(url: impl Into<String>, token: Secret) -> Self {
        let url: String = url.into();
        Self {
            url: url.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The base URL, also the tenant's name in reports.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin token.
    pub fn token(&self) -> &Secret {
        &self.token
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("url", &self.url)
            .field("token", &self.token)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let t = Tenant::new("https://t.example/", s);
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(t.url(), "https://t.example");
    }
}
