//! Embedding canary in another Rust tool: the promotion engine against the
//! in-process fake OCI registry and two reference tenants, through the same
//! adapters the CLI uses. Runs in CI.

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use canary_core::promoter::{Policy, VerifyOptions};
use canary_core::{
    GitSha, ImageRef, Outcome, Promoter, Release, Secret, StaticFleet, TagTemplate, Tenant,
};
use canary_registry::{Credentials, OciRegistry, RegistryOptions};
use canary_smoke::{HttpOptions, HttpSuite, Suite, SystemClock};
use canary_testkit::fake_registry::FakeRegistry;
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::main]
async fn main() {
    let registry = FakeRegistry::start().await;
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
    let fleet = StaticFleet::new(
        tenants
            .iter()
            .map(|t| Tenant::new(t.url(), Secret::new("embed-token")))
            .collect(),
    );
    let oci = OciRegistry::new(RegistryOptions {
        credentials: Credentials::anonymous(),
        ..RegistryOptions::default()
    })
    .expect("registry options");
    let image = ImageRef::parse(&format!("{}/acme/app", registry.host())).expect("image");
    oci.check_image(&image).expect("image allowed");
    let suite = HttpSuite::new(
        Suite::builtin("workspace-server").expect("built-in suite"),
        HttpOptions::default(),
    )
    .expect("suite");
    let promoter = Promoter::new(
        Arc::new(oci),
        Arc::new(fleet),
        Arc::new(suite),
        Arc::new(SystemClock),
    )
    .with_policy(Policy::default());
    let release = Release::new(
        GitSha::parse(SHA).expect("sha"),
        vec![image],
        TagTemplate::parse("staging-{sha}").expect("template"),
        TagTemplate::parse("latest").expect("template"),
    )
    .expect("release");
    let report = promoter.verify(&release, &VerifyOptions::default()).await;
    println!("outcome: {} — {}", report.outcome, report.reason);
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(
        registry.tag_digest("acme/app", "latest").as_deref(),
        Some(digest.as_str())
    );
    println!("latest = {digest}");
}
