//! The shared conformance suite for [`Registry`] implementations, after
//! object_store's `integration.rs`: it checks the trait's **Contract**, rule
//! by rule, and runs on [`crate::MemoryRegistry`] in this crate's tests, on
//! the OCI adapter against the test kit's in-process fake registry, and on
//! the OCI adapter against a real registry.

use crate::error::ErrorKind;
use crate::registry::Registry;
use crate::types::{Digest, ImageRef, Reference, Tag};

/// Checks the [`Registry`] contract on `image`, whose tag `seed` must already
/// hold a manifest (real registries refuse manifests whose blobs are
/// missing, so the suite retags what is there instead of inventing content).
/// Writes the tags `conformance-a` and `conformance-b`. Panics with a message
/// naming the broken rule.
pub async fn registry_conformance(registry: &dyn Registry, image: &ImageRef, seed: &Tag) {
    let seed_ref = Reference::Tag(seed.clone());
    let manifest = registry
        .get_manifest(image, &seed_ref)
        .await
        .unwrap_or_else(|e| panic!("get_manifest {image}:{seed}: {}", e.chain()));
    assert!(
        manifest.digest().matches(manifest.bytes()),
        "get_manifest returned bytes that do not hash to its digest"
    );
    assert!(
        !manifest.media_type().is_empty(),
        "get_manifest returned no media type"
    );

    let head = registry
        .head_manifest(image, &seed_ref)
        .await
        .expect("head_manifest seed");
    assert_eq!(
        head.as_ref(),
        Some(manifest.digest()),
        "HEAD and GET disagree on the digest"
    );

    let by_digest = registry
        .get_manifest(image, &Reference::Digest(manifest.digest().clone()))
        .await
        .expect("get_manifest by digest");
    assert_eq!(
        by_digest.bytes(),
        manifest.bytes(),
        "GET by digest returned other bytes"
    );
    assert_eq!(
        by_digest.media_type(),
        manifest.media_type(),
        "GET by digest returned another media type"
    );

    let missing_tag = Reference::Tag(Tag::parse("conformance-missing-tag").expect("tag"));
    assert_eq!(
        registry
            .head_manifest(image, &missing_tag)
            .await
            .expect("head missing tag"),
        None,
        "HEAD of a missing tag must be None"
    );
    let missing_digest = Reference::Digest(Digest::sha256_of(b"no such manifest"));
    assert_eq!(
        registry
            .head_manifest(image, &missing_digest)
            .await
            .expect("head missing digest"),
        None,
        "HEAD of a missing digest must be None"
    );
    let err = registry
        .get_manifest(image, &missing_tag)
        .await
        .expect_err("GET of a missing tag must fail");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "GET of a missing tag: {}",
        err.chain()
    );

    for name in ["conformance-a", "conformance-b"] {
        let tag = Tag::parse(name).expect("tag");
        let put = registry
            .put_manifest(image, &tag, &manifest)
            .await
            .unwrap_or_else(|e| panic!("put_manifest {name}: {}", e.chain()));
        assert_eq!(&put, manifest.digest(), "put_manifest changed the digest");
        let again = registry
            .get_manifest(image, &Reference::Tag(tag.clone()))
            .await
            .expect("get after put");
        assert_eq!(
            again.bytes(),
            manifest.bytes(),
            "put_manifest did not store the exact bytes"
        );
        assert_eq!(
            again.media_type(),
            manifest.media_type(),
            "put_manifest changed the media type"
        );
    }

    let tags = registry.list_tags(image).await.expect("list_tags");
    for name in [seed.as_str(), "conformance-a", "conformance-b"] {
        assert!(
            tags.iter().any(|t| t.as_str() == name),
            "list_tags misses {name}: {tags:?}"
        );
    }
    let unknown =
        ImageRef::parse(&format!("{}/conformance/never-pushed", image.registry())).expect("image");
    // The contract: an unknown repository is an empty list, not an error
    // (registries answer `NAME_UNKNOWN`; the adapter maps it).
    let tags = registry.list_tags(&unknown).await.unwrap_or_else(|e| {
        panic!(
            "list_tags of an unknown repository must be an empty list, not an error: {}",
            e.chain()
        )
    });
    assert!(
        tags.is_empty(),
        "an unknown repository lists tags: {tags:?}"
    );
}
