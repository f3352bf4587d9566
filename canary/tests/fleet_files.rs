//! A fleet too large for one environment string comes from files: URLs and
//! tokens, one per line, same position = same tenant.

use canary::{Env, Gate, Overrides, Settings, SmokeTarget};
use canary_core::Outcome;
use canary_sandbox::tenant::{TenantFault, TenantOptions, TenantServer};

#[tokio::test]
async fn urls_and_tokens_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = Vec::new();
    for i in 0..3 {
        tenants.push(
            TenantServer::start(TenantOptions {
                token: format!("file-token-{i}"),
                version: "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();
    let urls_file = dir.path().join("urls.txt");
    let tokens_file = dir.path().join("tokens.txt");
    std::fs::write(&urls_file, urls.join("\n") + "\n").unwrap();
    std::fs::write(&tokens_file, "file-token-0\nfile-token-1\nfile-token-2\n").unwrap();
    let overrides = Overrides {
        urls_file: Some(urls_file.clone()),
        tokens_file: Some(tokens_file.clone()),
        ..Overrides::default()
    };
    let env = Env::from_pairs(Vec::<(String, String)>::new());
    let settings = Settings::resolve(&overrides, &env, None).unwrap();
    let report = Gate::new(settings, env.clone())
        .smoke(&SmokeTarget::Fleet, None)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.reason);
    assert_eq!(report.tenants.len(), 3);

    // A token short: the error names the files, never a token.
    std::fs::write(&tokens_file, "file-token-0\nfile-token-1\n").unwrap();
    let settings = Settings::resolve(&overrides, &env, None).unwrap();
    let e = Gate::new(settings, env)
        .smoke(&SmokeTarget::Fleet, None)
        .await
        .unwrap_err();
    let text = format!("{e} {}", e.fix());
    assert!(
        text.contains("tokens.txt") && text.contains("urls.txt"),
        "{text}"
    );
    assert!(!text.contains("file-token"), "{text}");
}

#[test]
fn a_missing_list_file_is_a_usage_error() {
    let overrides = Overrides {
        tokens_file: Some("no/such/tokens.txt".into()),
        ..Overrides::default()
    };
    let e = Settings::resolve(
        &overrides,
        &Env::from_pairs(Vec::<(String, String)>::new()),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("tenant token file `no/such/tokens.txt`"),
        "{e}"
    );
}
