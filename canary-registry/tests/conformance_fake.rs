//! The shared `Registry` conformance suite on `OciRegistry` pointed at the
//! test kit's in-process fake registry: the rules the suite checks on
//! `MemoryRegistry` and on the real distribution registry, checked over
//! HTTP with nothing to install.

use canary_core::conformance::registry_conformance;
use canary_core::{ImageRef, Tag};
use canary_registry::{OciRegistry, RegistryOptions};
use canary_testkit::fake_registry::FakeRegistry;

#[tokio::test]
async fn oci_registry_on_the_fake_registry_passes_the_conformance_suite() {
    let fake = FakeRegistry::start().await;
    let seed = fake.push_image("acme/conformance", "seed", "conformance");
    // A loopback host is reached over plain HTTP without configuration.
    let client = OciRegistry::new(RegistryOptions::default()).expect("options");
    let image = ImageRef::parse(&format!("{}/acme/conformance", fake.host())).expect("image");

    registry_conformance(&client, &image, &Tag::parse("seed").expect("tag")).await;

    // The suite's writes, as the fake itself stores them: the `seed` tag's digest
    // (so its exact bytes) under both tags.
    for name in ["conformance-a", "conformance-b"] {
        assert_eq!(
            fake.tag_digest("acme/conformance", name).as_deref(),
            Some(seed.as_str()),
            "{name}"
        );
    }
}
