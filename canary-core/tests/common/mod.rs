//! What the promoter tests share: two releases of `images` images on the
//! in-memory registry, and a fleet of fake tenants. Each test file is a
//! crate of its own and uses part of it.
#![allow(dead_code, unreachable_pub)]

use canary_core::*;

/// The release under test.
pub const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";
/// The release `latest` holds before the run.
pub const OLD_SHA: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

pub fn image(n: usize) -> ImageRef {
    ImageRef::parse(&format!("ghcr.io/acme/image{n}")).unwrap()
}

pub fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

pub fn manifest(body: &str) -> Manifest {
    Manifest::new(
        "application/vnd.oci.image.manifest.v1+json",
        body.as_bytes().to_vec(),
    )
}

/// `sha` of images `0..images`, staged as `staging-{sha}`, promoted as
/// `latest`.
pub fn release(images: usize, sha: &str) -> Release {
    Release::new(
        GitSha::parse(sha).unwrap(),
        (0..images).map(image).collect(),
        TagTemplate::parse("staging-{sha}").unwrap(),
        TagTemplate::parse("latest").unwrap(),
    )
    .unwrap()
}

/// A registry holding, for each image, `staging-OLD_SHA` = `latest` (the
/// previous release) and `staging-SHA` (the new one).
pub fn seeded(images: usize) -> MemoryRegistry {
    let r = MemoryRegistry::new();
    for i in 0..images {
        let old = manifest(&format!("{{\"image\":{i},\"release\":\"old\"}}"));
        let new = manifest(&format!("{{\"image\":{i},\"release\":\"new\"}}"));
        r.push(&image(i), &tag(&format!("staging-{OLD_SHA}")), old.clone());
        r.push(&image(i), &tag("latest"), old);
        r.push(&image(i), &tag(&format!("staging-{SHA}")), new);
    }
    r
}

pub fn latest(r: &MemoryRegistry, i: usize) -> Option<Digest> {
    r.tag_digest(&image(i), &tag("latest"))
}

pub fn staging(r: &MemoryRegistry, i: usize, sha: &str) -> Option<Digest> {
    r.tag_digest(&image(i), &tag(&format!("staging-{sha}")))
}

/// `n` tenants at `https://canary-{i}.example` with tokens `token-{i}`.
pub fn fleet(n: usize) -> StaticFleet {
    StaticFleet::new(
        (0..n)
            .map(|i| {
                Tenant::new(
                    format!("https://canary-{i}.example"),
                    Secret::new(format!("token-{i}")),
                )
            })
            .collect(),
    )
}
