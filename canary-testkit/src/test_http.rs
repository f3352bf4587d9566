//! What the crate's own tests need to talk HTTP to the servers it starts.

use std::time::Duration;

use serde_json::Value;

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The first distribution error code of a body.
pub(crate) fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

pub(crate) fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}
