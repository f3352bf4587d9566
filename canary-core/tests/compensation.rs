//! Property test of compensation through the promoter: refused and lost
//! writes at random, and another writer moving one image's `latest` at a
//! random read of it. Whatever happens, canary only ever writes a digest it
//! read (the release's, or the one `latest` held before the run), never
//! puts a tag back over another writer's digest it read, and reports where
//! every image is.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::sync::Mutex;

use canary_core::registry::{FaultTiming, Op};
use canary_core::*;
use futures::executor::block_on;
use proptest::prelude::*;

mod common;
use common::*;

/// This file's images live on `registry.example` (the shared fixtures'
/// on `ghcr.io`): this definition shadows `common::image`.
fn image(n: usize) -> ImageRef {
    ImageRef::parse(&format!("registry.example/acme/image{n}")).unwrap()
}

/// A write under `latest` that landed.
#[derive(Debug, Clone)]
struct Landed {
    image: ImageRef,
    written: Digest,
    replaced: Option<Digest>,
}

/// `MemoryRegistry`, plus another writer that moves `latest` of one image
/// to its own manifest just before answering the `nth` HEAD of it, and a
/// log of every write to `latest` that landed.
struct OtherWriter {
    inner: MemoryRegistry,
    foreign: Manifest,
    target: Option<(ImageRef, usize)>,
    heads: Mutex<HashMap<ImageRef, usize>>,
    landed: Mutex<Vec<Landed>>,
}

#[async_trait::async_trait]
impl Registry for OtherWriter {
    async fn get_manifest(&self, img: &ImageRef, reference: &Reference) -> Result<Manifest, Error> {
        self.inner.get_manifest(img, reference).await
    }

    async fn head_manifest(
        &self,
        img: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        if let Some((target, nth)) = &self.target {
            if img == target && reference == &Reference::Tag(tag("latest")) {
                let mut heads = self.heads.lock().unwrap();
                let count = heads.entry(img.clone()).or_default();
                *count += 1;
                if count == nth {
                    self.inner.push(img, &tag("latest"), self.foreign.clone());
                }
            }
        }
        self.inner.head_manifest(img, reference).await
    }

    async fn put_manifest(
        &self,
        img: &ImageRef,
        t: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let replaced = self.inner.tag_digest(img, t);
        let result = self.inner.put_manifest(img, t, manifest).await;
        let now = self.inner.tag_digest(img, t);
        let landed = now.as_ref() == Some(manifest.digest())
            && (result.is_ok() || replaced.as_ref() != Some(manifest.digest()));
        if landed && t.as_str() == "latest" {
            self.landed.lock().unwrap().push(Landed {
                image: img.clone(),
                written: manifest.digest().clone(),
                replaced,
            });
        }
        result
    }

    async fn list_tags(&self, img: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.inner.list_tags(img).await
    }
}

fn kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::Transient),
        Just(ErrorKind::Denied),
        Just(ErrorKind::Integrity),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn compensation_writes_only_what_it_read_and_leaves_other_writers_alone(
        images in 1usize..4,
        had_latest in proptest::collection::vec(any::<bool>(), 3),
        // Only writes fail: every read answers, so a foreign digest is
        // always confirmed and every decision is taken on what is there.
        faults in proptest::collection::vec((1usize..8, kind(), any::<bool>()), 0..4),
        writer in proptest::option::weighted(0.8, (0usize..3, 1usize..6)),
    ) {
        let registry = MemoryRegistry::new();
        let mut staged = Vec::new();
        for i in 0..images {
            let new = Manifest::new("application/vnd.oci.image.index.v1+json", format!("{{\"new\":{i}}}").into_bytes());
            registry.push(&image(i), &tag(&format!("staging-{SHA}")), new.clone());
            staged.push(new.digest().clone());
            if had_latest[i] {
                let old = Manifest::new("application/vnd.oci.image.manifest.v1+json", format!("{{\"old\":{i}}}").into_bytes());
                registry.push(&image(i), &tag("latest"), old);
            }
        }
        for (nth, kind, after) in &faults {
            let timing = if *after { FaultTiming::After } else { FaultTiming::Before };
            registry.fail_nth(Op::Put, *nth, *kind, timing);
        }
        let foreign = Manifest::new("application/vnd.oci.image.manifest.v1+json", b"{\"other\":\"writer\"}".to_vec());
        let other = OtherWriter {
            inner: registry.clone(),
            foreign: foreign.clone(),
            target: writer.filter(|(i, _)| *i < images).map(|(i, nth)| (image(i), nth)),
            heads: Mutex::new(HashMap::new()),
            landed: Mutex::new(Vec::new()),
        };
        let other = std::sync::Arc::new(other);
        let promoter = Promoter::new(
            other.clone(),
            std::sync::Arc::new(StaticFleet::new(vec![Tenant::new("https://t.example", Secret::new("t"))])),
            std::sync::Arc::new(ScriptedSuite::new()),
            std::sync::Arc::new(ManualClock::new(0)),
        );
        let release = Release::new(
            GitSha::parse(SHA).unwrap(),
            (0..images).map(image).collect(),
            TagTemplate::parse("staging-{sha}").unwrap(),
            TagTemplate::parse("latest").unwrap(),
        ).unwrap();
        let report = block_on(promoter.verify(&release, &VerifyOptions::default()));
        let now: Vec<Option<Digest>> = (0..images).map(|i| registry.tag_digest(&image(i), &tag("latest"))).collect();
        // What `latest` held when the run read it: another writer may have
        // moved it before the precheck read it.
        let read_before: Vec<Option<Digest>> = report.images.iter().map(|i| i.before.clone()).collect();

        for w in other.landed.lock().unwrap().iter() {
            let i = (0..images).find(|i| image(*i) == w.image).unwrap();
            // 1. Only ever writes a digest it read: the release's, or the
            //    one `latest` held before the run.
            prop_assert!(
                w.written == staged[i] || Some(&w.written) == read_before[i].as_ref(),
                "image {} written to {:?}", i, w.written
            );
            // 2. Putting a tag back never replaces another writer's digest.
            if w.written != staged[i] {
                prop_assert_ne!(w.replaced.as_ref(), Some(foreign.digest()), "image {} restored over another writer", i);
            }
        }
        match report.outcome {
            Outcome::Promoted => {
                for i in 0..images {
                    prop_assert_eq!(now[i].as_ref(), Some(&staged[i]), "image {}", i);
                }
            }
            Outcome::Failed => {
                // 3. Failed: every image is where it was, or another writer's.
                for i in 0..images {
                    prop_assert!(
                        now[i] == read_before[i] || now[i].as_ref() == Some(foreign.digest()),
                        "image {} at {:?} after {}", i, now[i], report.reason
                    );
                }
            }
            Outcome::Inconsistent => {
                prop_assert!(report.reason.starts_with("INCONSISTENT"), "{}", report.reason);
            }
            other => prop_assert!(false, "unexpected outcome {:?}: {}", other, report.reason),
        }
        // 4. The report says where every image is (reads never fail here).
        if !report.outcome.moved() {
            for i in 0..images {
                prop_assert_eq!(&report.images[i].after, &now[i], "image {} misreported: {}", i, report.reason);
            }
        }
    }
}
