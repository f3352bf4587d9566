//! Request counters, so tests and benchmarks can hold the adapter to its
//! request budget (at most 3 requests per image after auth, at most 2 auth
//! requests per registry per run).

use std::ops::AddAssign;

/// Requests an [`crate::OciRegistry`] sent, every attempt counted (retries
/// included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Auth requests: `GET /v2/` pings and token requests.
    pub auth: u64,
    /// API GETs: manifests, tags-list pages, blobs, referrers pages.
    pub get: u64,
    /// API HEADs.
    pub head: u64,
    /// API PUTs (manifests, and the last request of a blob upload).
    pub put: u64,
    /// API POSTs: the start of a blob upload.
    pub post: u64,
    /// Attempts after the first of a request (already counted above).
    pub retries: u64,
    /// Requests repeated once after a 401 (or ECR's 403) with fresh
    /// credentials (already counted above).
    pub reauths: u64,
    /// HTTPS attempts to a loopback or insecure host that failed before any
    /// HTTP exchange (TLS to a plain-HTTP server), after which canary used
    /// plain HTTP. The server never saw them as requests; not counted above.
    pub scheme_fallbacks: u64,
}

impl RequestStats {
    /// API requests: GET + HEAD + PUT + POST.
    pub fn api(&self) -> u64 {
        self.get + self.head + self.put + self.post
    }
}

impl AddAssign for RequestStats {
    fn add_assign(&mut self, o: Self) {
        self.auth += o.auth;
        self.get += o.get;
        self.head += o.head;
        self.put += o.put;
        self.post += o.post;
        self.retries += o.retries;
        self.reauths += o.reauths;
        self.scheme_fallbacks += o.scheme_fallbacks;
    }
}
