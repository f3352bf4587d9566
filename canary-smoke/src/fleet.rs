//! The canary fleet from two parallel lists: URLs and admin tokens.

use std::collections::HashMap;
use std::net::IpAddr;

use canary_core::{Secret, StaticFleet, Tenant, UsageError};
use url::{Host, Url};

/// The default variable holding the tenant URLs.
pub const DEFAULT_URLS_VAR: &str = "CANARY_TENANT_URLS";
/// The default variable holding the tenant admin tokens.
pub const DEFAULT_TOKENS_VAR: &str = "CANARY_TENANT_TOKENS";

/// Builds the fleet from the variables `urls_var` and `tokens_var`, read
/// through `env` (pass `|k| std::env::var(k).ok()`; tests pass a map).
///
/// Both unset or blank is an empty fleet (the promoter applies
/// `on_empty_fleet`). Every problem is a [`UsageError`] naming the variable
/// and the position, found before any request; a token's value never
/// appears in it.
pub fn fleet_from_env(
    urls_var: &str,
    tokens_var: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<StaticFleet, UsageError> {
    let urls = env(urls_var).unwrap_or_default();
    let tokens = env(tokens_var).unwrap_or_default();
    tenants(&urls, &tokens, urls_var, tokens_var).map(StaticFleet::new)
}

/// Builds the fleet from URLs listed in a config file (`urls_origin` names
/// them in errors, e.g. `canary.toml: fleet.urls`) and the tokens in
/// `tokens_var`: URLs are not secret and may live in the file, tokens never
/// do. The same rules and errors as [`fleet_from_env`].
pub fn fleet_from_config(
    urls: &[String],
    urls_origin: &str,
    tokens_var: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<StaticFleet, UsageError> {
    let tokens = env(tokens_var).unwrap_or_default();
    tenants(&urls.join(","), &tokens, urls_origin, tokens_var).map(StaticFleet::new)
}

/// The tenants of two parallel lists (URLs, tokens) separated by commas,
/// spaces or newlines; the same position is the same tenant.
///
/// Rejected, naming the position: lists of different lengths, an empty
/// entry (`a,,b`), a URL that does not parse, has no host, carries
/// credentials, a query or a fragment, a URL that is not HTTPS unless it
/// points at a loopback address, the same URL twice, a token with
/// characters an HTTP header cannot carry.
pub fn fleet_from_lists(urls: &str, tokens: &str) -> Result<Vec<Tenant>, UsageError> {
    tenants(urls, tokens, "tenant URLs", "tenant tokens")
}

/// [`fleet_from_lists`] with the lists named as the user gave them (a
/// variable, a file), so every error points at the right input. For fleets
/// too large for one environment string, read from files.
pub fn fleet_from_named_lists(
    urls: &str,
    urls_name: &str,
    tokens: &str,
    tokens_name: &str,
) -> Result<StaticFleet, UsageError> {
    tenants(urls, tokens, urls_name, tokens_name).map(StaticFleet::new)
}

/// Splits a list on commas and whitespace. An empty entry between commas is
/// an error naming its 1-based position.
fn split(list: &str, name: &str) -> Result<Vec<String>, UsageError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    for segment in list.split(',') {
        let before = items.len();
        items.extend(segment.split_whitespace().map(str::to_string));
        if items.len() == before {
            return Err(UsageError::new(
                format!("{name} entry {}", before + 1),
                "is empty (two commas in a row, or a comma at the start or end)",
                format!("separate the entries of {name} with one comma, space or newline each"),
            ));
        }
    }
    Ok(items)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

fn tenants(
    urls: &str,
    tokens: &str,
    urls_name: &str,
    tokens_name: &str,
) -> Result<Vec<Tenant>, UsageError> {
    let urls = split(urls, urls_name)?;
    // Errors about the token list say where, never what.
    let tokens = split(tokens, tokens_name)?;
    if urls.len() != tokens.len() {
        let n = urls.len().min(tokens.len()) + 1;
        let (longer, shorter) = if urls.len() > tokens.len() {
            (urls_name, tokens_name)
        } else {
            (tokens_name, urls_name)
        };
        return Err(UsageError::new(
            format!("{urls_name} and {tokens_name}"),
            format!(
                "have different lengths ({} URLs, {} tokens): entry {n} of {longer} has no partner in {shorter}",
                urls.len(),
                tokens.len()
            ),
            "list one admin token per tenant URL, in the same order",
        ));
    }
    // Linear in the fleet: a hash of the URLs seen for duplicates, and the
    // token scan below only on the error path (10,000 tenants are checked in
    // milliseconds, not seconds).
    let mut out: Vec<Tenant> = Vec::with_capacity(urls.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(urls.len());
    for (i, (raw, token)) in urls.iter().zip(&tokens).enumerate() {
        let position = i + 1;
        let bad = |problem: &str, fix: &str| {
            // Quote the entry only if no token hides in it.
            let input = if tokens.iter().any(|t| raw.contains(t.as_str())) {
                format!("{urls_name} entry {position}")
            } else {
                format!("{urls_name} entry {position} (`{raw}`)")
            };
            UsageError::new(input, problem, fix)
        };
        // An entry that is not a URL is not quoted: it may be a token put in
        // the wrong list.
        let url = Url::parse(raw).map_err(|e| {
            UsageError::new(
                format!("{urls_name} entry {position}"),
                format!("is not a URL ({e})"),
                format!(
                    "write the tenant's base URL, e.g. `https://tenant.example.com`; tokens go in {tokens_name}"
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            // Not quoted either: `name:value` parses as a URL with a scheme.
            return Err(UsageError::new(
                format!("{urls_name} entry {position}"),
                "is not an http(s) URL",
                "use an https:// URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // The URL names the tenant in every report: keep secrets out.
            return Err(UsageError::new(
                format!("{urls_name} entry {position}"),
                "carries credentials (`user:password@`)",
                format!("remove them from the URL; the admin token goes in {tokens_name}"),
            ));
        }
        let Some(host) = url.host() else {
            return Err(bad(
                "has no host",
                "write the tenant's base URL, e.g. `https://tenant.example.com`",
            ));
        };
        if url.scheme() == "http" && !is_loopback(&host) {
            return Err(bad(
                "is plain HTTP to a host that is not loopback; the admin token would travel in clear",
                "use https:// (plain http:// is allowed only for 127.0.0.1, ::1 and localhost)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            // Not quoted: a query may carry a credential.
            return Err(UsageError::new(
                format!("{urls_name} entry {position}"),
                "has a query or a fragment",
                "write the base URL only; check paths are appended to it",
            ));
        }
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(UsageError::new(
                format!("{tokens_name} entry {position}"),
                "contains a character an HTTP header cannot carry",
                "check the token (printable ASCII only)",
            ));
        }
        let tenant = Tenant::new(url.as_str(), Secret::new(token));
        if let Some(first) = seen.get(tenant.url()) {
            return Err(bad(
                &format!("is the same tenant as entry {}", first + 1),
                "list each canary tenant once",
            ));
        }
        seen.insert(tenant.url().to_string(), i);
        out.push(tenant);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_commas_spaces_newlines() {
        let t = fleet_from_lists(
            "https://a.example, https://b.example/\nhttp://127.0.0.1:8080 http://[::1]:9/x",
            "ta,tb\ntc td\n",
        )
        .unwrap();
        let urls: Vec<&str> = t.iter().map(Tenant::url).collect();
        assert_eq!(
            urls,
            [
                "https://a.example",
                "https://b.example",
                "http://127.0.0.1:8080",
                "http://[::1]:9/x"
            ]
        );
        assert_eq!(t[3].token().expose(), "td");
        assert!(fleet_from_lists("", " \n").unwrap().is_empty());
    }
}

#[cfg(test)]
mod scale {
    use super::*;

    /// 10,000 tenants, a duplicate at the end: found, and by position.
    /// (The timing is a benchmark's job; this proves the linear path keeps
    /// the same answers.)
    #[test]
    fn large_lists_keep_their_answers() {
        let n = 10_000;
        let mut urls: Vec<String> = (0..n).map(|i| format!("https://t{i}.example")).collect();
        let tokens: Vec<String> = (0..=n).map(|i| format!("token-{i:05}")).collect();
        let t = fleet_from_lists(&urls.join(","), &tokens[..n].join(",")).unwrap();
        assert_eq!(t.len(), n);
        urls.push("https://t17.example".to_string());
        let e = fleet_from_lists(&urls.join(","), &tokens.join(",")).unwrap_err();
        assert!(
            e.to_string().contains("entry 10001")
                && e.to_string().contains("same tenant as entry 18"),
            "{e}"
        );
    }
}
