//! Registry hosts: Docker Hub naming, loopback and insecure hosts.

use std::net::IpAddr;

use canary_core::UsageError;

/// Docker Hub's API host; `docker.io` is only its name in image references.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Whether `registry` names Docker Hub.
pub(crate) fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The host the API is served from: `docker.io` → `registry-1.docker.io`,
/// everything else as written.
pub(crate) fn api_host(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_API.to_string()
    } else {
        registry.to_ascii_lowercase()
    }
}

/// Splits `host:port` (also `[v6]:port`) into the host name and port.
pub(crate) fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((name, after)) = rest.split_once(']') {
            return (name, after.strip_prefix(':'));
        }
    }
    if host.matches(':').count() == 1 {
        let (name, port) = host.split_once(':').expect("one colon");
        return (name, Some(port));
    }
    (host, None)
}

/// `127.0.0.0/8`, `::1` or `localhost` (with any port).
pub(crate) fn is_loopback(host: &str) -> bool {
    let (name, _) = split_host_port(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The validated `insecure` list: lowercase `host` or `host:port` entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Insecure(Vec<String>);

impl Insecure {
    pub(crate) fn parse(entries: &[String]) -> Result<Self, UsageError> {
        let mut out = Vec::new();
        for entry in entries {
            let bad = |problem: &str| {
                UsageError::new(
                    format!("registry.insecure entry `{}`", entry.escape_debug()),
                    problem,
                    "list registry hosts as `host` or `host:port`, e.g. `registry.internal:5000`",
                )
            };
            let e = entry.trim();
            if e.is_empty() {
                return Err(bad("is empty"));
            }
            if e.contains("://") {
                return Err(bad("has a URL scheme"));
            }
            if e.contains('/') {
                return Err(bad("has a path"));
            }
            let (name, port) = split_host_port(e);
            if let Some(port) = port {
                if port.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(bad(&format!("has an invalid port `{port}`")));
                }
            }
            let name_ok = name.parse::<IpAddr>().is_ok()
                || (!name.is_empty()
                    && name.split('.').all(|l| {
                        !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    }));
            if !name_ok {
                return Err(bad(&format!("has an invalid host `{name}`")));
            }
            out.push(e.to_ascii_lowercase());
        }
        Ok(Self(out))
    }

    /// Whether `host` (as in an image name) may be reached over plain HTTP
    /// because it is listed: an entry with a port matches that port, one
    /// without matches every port.
    pub(crate) fn lists(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let (name, _) = split_host_port(&host);
        self.0.iter().any(|e| {
            let (ename, eport) = split_host_port(e);
            match eport {
                Some(_) => *e == host,
                None => ename == name,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_naming() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn loopback() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "ghcr.io",
            "localhost.example",
            "[::2]:1",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn insecure_entries() {
        let i = Insecure::parse(&["Registry.Internal:5000".into(), "10.0.0.7".into()]).unwrap();
        assert!(i.lists("registry.internal:5000"));
        assert!(!i.lists("registry.internal:5001"));
        assert!(i.lists("10.0.0.7:5000"));
        assert!(i.lists("10.0.0.7"));
        assert!(!i.lists("ghcr.io"));
        for bad in ["http://x:5000", "x/y", "", "x:0", "x:http", "a b"] {
            let e = Insecure::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.input().contains("registry.insecure"), "{bad}");
        }
    }
}
