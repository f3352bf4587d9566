//! The canary fleet from two parallel environment variables: every bad
//! input is a usage error that names the variable and the position, and
//! never a token's value.

use std::collections::HashMap;

use canary_core::TenantFleet;
use canary_smoke::{fleet_from_env, fleet_from_lists, DEFAULT_TOKENS_VAR, DEFAULT_URLS_VAR};

const URLS: &str = "MOLECULE_STAGING_TENANT_URLS";
const TOKENS: &str = "MOLECULE_STAGING_ADMIN_TOKENS";
const SECRETS: [&str; 3] = ["tokA-7f3e91", "tokB-c0ffee42", "tokC-deadbeef9"];

fn env(urls: &str, tokens: &str) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = [(URLS, urls), (TOKENS, tokens)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn parallel_lists_make_tenants_in_order() {
    let fleet = fleet_from_env(
        URLS,
        TOKENS,
        env(
            "https://a.example.com,\n https://b.example.com/\thttp://127.0.0.1:8081\n",
            "tokA-7f3e91 tokB-c0ffee42,tokC-deadbeef9",
        ),
    )
    .unwrap();
    let tenants = fleet.tenants().await.unwrap();
    let pairs: Vec<(&str, &str)> = tenants
        .iter()
        .map(|t| (t.url(), t.token().expose()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("https://a.example.com", SECRETS[0]),
            ("https://b.example.com", SECRETS[1]),
            ("http://127.0.0.1:8081", SECRETS[2]),
        ]
    );
}

#[tokio::test]
async fn unset_or_blank_is_an_empty_fleet() {
    for (u, t) in [("", ""), (" \n", "\n")] {
        let fleet = fleet_from_env(URLS, TOKENS, env(u, t)).unwrap();
        assert!(fleet.tenants().await.unwrap().is_empty());
    }
    let fleet = fleet_from_env(DEFAULT_URLS_VAR, DEFAULT_TOKENS_VAR, |_| None).unwrap();
    assert!(fleet.tenants().await.unwrap().is_empty());
}

#[test]
fn bad_input_names_the_variable_and_position_never_a_token() {
    let t3 = SECRETS.join(",");
    let t2 = SECRETS[..2].join(",");
    // (urls, tokens, text the message must contain)
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "https://a.example,https://b.example",
            t3.clone(),
            &[
                "MOLECULE_STAGING_TENANT_URLS and MOLECULE_STAGING_ADMIN_TOKENS",
                "2 URLs, 3 tokens",
                "entry 3 of MOLECULE_STAGING_ADMIN_TOKENS",
            ],
        ),
        (
            "https://a.example,https://b.example,https://c.example",
            t2.clone(),
            &[
                "3 URLs, 2 tokens",
                "entry 3 of MOLECULE_STAGING_TENANT_URLS",
            ],
        ),
        (
            "https://a.example,https://b.example,https://c.example",
            String::new(),
            &["3 URLs, 0 tokens", "entry 1"],
        ),
        (
            "https://a.example,,https://c.example",
            t3.clone(),
            &["MOLECULE_STAGING_TENANT_URLS entry 2", "is empty"],
        ),
        (
            "https://a.example,https://b.example,https://c.example",
            format!("{},,{}", SECRETS[0], SECRETS[2]),
            &["MOLECULE_STAGING_ADMIN_TOKENS entry 2", "is empty"],
        ),
        (
            "https://a.example,https://b.example,https://c.example,",
            t3.clone(),
            &["MOLECULE_STAGING_TENANT_URLS entry 4", "is empty"],
        ),
        (
            // Spaces separate entries too: "not a url" is three.
            "https://a.example,not a url,https://c.example",
            format!("{t3},extra"),
            &[
                "5 URLs, 4 tokens",
                "entry 5 of MOLECULE_STAGING_TENANT_URLS",
            ],
        ),
        (
            "https://a.example,https://b.example,ht!tp//c",
            t3.clone(),
            &["MOLECULE_STAGING_TENANT_URLS entry 3", "is not a URL"],
        ),
        (
            "https://a.example,http://b.example.com:8080,https://c.example",
            t3.clone(),
            &[
                "MOLECULE_STAGING_TENANT_URLS entry 2 (`http://b.example.com:8080`)",
                "plain HTTP",
                "not loopback",
            ],
        ),
        (
            "https://a.example,http://10.0.0.7,https://c.example",
            t3.clone(),
            &["entry 2", "plain HTTP"],
        ),
        (
            "ftp://a.example,https://b.example,https://c.example",
            t3.clone(),
            &["entry 1", "not an http(s) URL"],
        ),
        (
            "https://a.example,https://b.example,https://a.example/",
            t3.clone(),
            &["entry 3", "same tenant as entry 1"],
        ),
        (
            "https://a.example,https://admin:tokB-c0ffee42@b.example,https://c.example",
            t3.clone(),
            &["entry 2", "carries credentials"],
        ),
        (
            "https://a.example,https://b.example/?token=tokB-c0ffee42,https://c.example",
            t3.clone(),
            &["entry 2", "query"],
        ),
        // The token list pasted into the URL variable.
        (
            "tokA-7f3e91,tokB-c0ffee42,tokC-deadbeef9",
            t3.clone(),
            &["MOLECULE_STAGING_TENANT_URLS entry 1", "is not a URL"],
        ),
        (
            "tokA:7f3e91,x,y",
            t3.clone(),
            &["entry 1", "not an http(s) URL"],
        ),
    ];
    for (urls, tokens, wanted) in cases {
        let e = fleet_from_env(URLS, TOKENS, env(urls, &tokens))
            .map(|_| ())
            .expect_err(urls);
        let text = format!("{e} — {} {e:?}", e.fix());
        for w in wanted {
            assert!(
                text.contains(w),
                "{urls:?} / {tokens:?}: {text:?} lacks {w:?}"
            );
        }
        for s in SECRETS.iter().chain(&["tokA:7f3e91"]) {
            assert!(!text.contains(s), "token in the message: {text}");
        }
    }
}

#[test]
fn lists_without_variables_name_the_list() {
    let e = fleet_from_lists("https://a.example", "").unwrap_err();
    assert!(
        e.to_string().contains("tenant URLs and tenant tokens"),
        "{e}"
    );
    let e = fleet_from_lists("http://example.com", "t").unwrap_err();
    assert!(e.to_string().contains("tenant URLs entry 1"), "{e}");
    let ok = fleet_from_lists("http://localhost:1/base/ http://[::1]:2", "a b").unwrap();
    assert_eq!(ok[0].url(), "http://localhost:1/base");
}

#[test]
fn tokens_that_cannot_be_a_header_are_refused_without_showing_them() {
    let e = fleet_from_lists("https://a.example", "tok\u{7f}x").unwrap_err();
    assert!(e.to_string().contains("tenant tokens entry 1"), "{e}");
    assert!(!format!("{e:?}").contains("tok\u{7f}x"));
}
