//! Embedding canary in another Rust tool: what `canary verify` does, in a
//! few lines, through the `canary` facade — settings in, a ready gate out.
//! Runs against the in-process sandbox registry and two reference tenants.
//! Runs in CI.

#![allow(clippy::print_stdout)]

use canary::{Env, Gate, Overrides, Settings};
use canary_core::Outcome;
use canary_sandbox::tenant::{TenantFault, TenantOptions, TenantServer};
use canary_sandbox::Registry;

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::main]
async fn main() {
    // The world: a registry holding the release, two tenants running it.
    let registry = Registry::start().await;
    let digest = registry.push_image("acme/app", &format!("staging-{SHA}"), "embed");
    let mut tenants = Vec::new();
    for _ in 0..2 {
        tenants.push(
            TenantServer::start(TenantOptions {
                token: "embed-token".into(),
                version: SHA.into(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();

    // The embedding: what the user gave, an environment holding the fleet
    // (the process environment in a real tool), one call.
    let overrides = Overrides {
        images: vec![format!("{}/acme/app", registry.host())],
        ..Overrides::default()
    };
    let env = Env::from_pairs([
        ("CANARY_TENANT_URLS", urls.join(",")),
        (
            "CANARY_TENANT_TOKENS",
            "embed-token,embed-token".to_string(),
        ),
    ]);
    let settings = Settings::resolve(&overrides, &env, None).expect("settings");
    let report = Gate::new(settings, env)
        .verify(SHA, false)
        .await
        .expect("valid input");

    print!("{}", canary::report::terminal::summary(&report, false));
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(
        registry.tag_digest("acme/app", "latest").as_deref(),
        Some(digest.as_str())
    );
    println!("latest = {digest}");
}
