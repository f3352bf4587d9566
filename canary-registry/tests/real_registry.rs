//! `OciRegistry` against the real CNCF distribution registry, in its three
//! configurations (open, htpasswd Basic auth, TLS with a generated CA), with
//! skopeo as the independent client that pushes fixtures and reads digests
//! back.

use std::sync::Arc;

use canary_core::conformance::registry_conformance;
use canary_core::{
    GitSha, ImageRef, ManualClock, Outcome, Promoter, Reference, Registry, Release, ScriptedSuite,
    Secret, StaticFleet, Tag, TagTemplate,
};
use canary_registry::{index_children, Credentials, OciRegistry, RegistryOptions, RetryPolicy};
use canary_testkit::oci::{digest_of, inspect_raw, Fixture, Layout};
use canary_testkit::real_registry::{AccessEntry, Mode, RealRegistry};

fn client(reg: &RealRegistry) -> OciRegistry {
    let credentials = match reg.credentials() {
        Some((u, p)) => Credentials::basic(u, Secret::new(p)),
        None => Credentials::anonymous(),
    };
    OciRegistry::new(RegistryOptions {
        ca_file: reg.ca_path(),
        credentials,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..RegistryOptions::default()
    })
    .expect("options")
}

fn image(reg: &RealRegistry, repo: &str) -> ImageRef {
    ImageRef::parse(&format!("{}/{repo}", reg.host())).expect("image")
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).expect("tag")
}

fn manifest_requests(entries: &[AccessEntry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.is_manifest())
        .map(|e| format!("{} {}", e.method, e.path))
        .collect()
}

async fn conformance(mode: Mode) {
    let reg = RealRegistry::start(mode);
    Fixture::single(&format!("conformance-{mode:?}"))
        .build()
        .push(&reg, "acme/conformance", "seed");
    let client = client(&reg);
    let img = image(&reg, "acme/conformance");
    client.check_image(&img).expect("check_image");
    registry_conformance(&client, &img, &tag("seed")).await;
    // The suite's writes, seen by skopeo: exact bytes under both tags.
    let seed = inspect_raw(&reg, "acme/conformance", "seed");
    assert_eq!(inspect_raw(&reg, "acme/conformance", "conformance-a"), seed);
    assert_eq!(inspect_raw(&reg, "acme/conformance", "conformance-b"), seed);
    let stats = client.stats();
    assert_eq!(
        stats.auth, 1,
        "one ping and no token request for {mode:?}: {stats:?}"
    );
    assert_eq!(stats.retries, 0, "{stats:?}");
}

#[tokio::test]
async fn conformance_open() {
    conformance(Mode::Open).await;
}

#[tokio::test]
async fn conformance_basic_auth() {
    conformance(Mode::Basic).await;
}

#[tokio::test]
async fn conformance_tls() {
    conformance(Mode::Tls).await;
}

/// GET staging, PUT latest, HEAD latest: what core's promoter does per
/// image. Checks digests and bytes with skopeo and counts requests in the
/// registry's own access log.
async fn exact_retag(reg: &RealRegistry, layout: &Layout, repo: &str) {
    layout.push(reg, repo, "staging-1");
    let client = client(reg);
    let img = image(reg, repo);
    client.check_image(&img).expect("check_image");

    let mark = reg.access_mark();
    let staging = client
        .get_manifest(&img, &Reference::Tag(tag("staging-1")))
        .await
        .expect("get staging");
    assert_eq!(staging.media_type(), layout.top().media_type);
    assert_eq!(staging.bytes(), layout.top().bytes.as_slice());
    assert_eq!(staging.digest().to_string(), layout.top().digest);
    let put = client
        .put_manifest(&img, &tag("latest"), &staging)
        .await
        .expect("put latest");
    assert_eq!(&put, staging.digest());
    let head = client
        .head_manifest(&img, &Reference::Tag(tag("latest")))
        .await
        .expect("head latest");
    assert_eq!(head.as_ref(), Some(staging.digest()));
    let log = reg.access_since(mark);

    // Independent check: skopeo reads the same bytes and digest.
    assert_eq!(inspect_raw(reg, repo, "latest"), layout.top().bytes);
    assert_eq!(
        digest_of(reg, repo, "latest"),
        digest_of(reg, repo, "staging-1")
    );
    assert_eq!(digest_of(reg, repo, "latest"), layout.top().digest);

    // Every child of an index is still there (the index is pullable).
    let children = index_children(&staging).expect("children");
    assert_eq!(children.len(), layout.children().len());
    for (child, expected) in children.iter().zip(layout.children()) {
        assert_eq!(child.digest.to_string(), expected.digest);
        assert_eq!(child.platform, expected.platform);
    }

    // The server's view of the hot path: one ping (auth), then exactly
    // GET + PUT + HEAD of manifests.
    let pings = log.iter().filter(|e| e.is_ping()).count();
    assert_eq!(pings, 1, "{log:#?}");
    assert_eq!(
        manifest_requests(&log),
        vec![
            format!("GET /v2/{repo}/manifests/staging-1"),
            format!("PUT /v2/{repo}/manifests/latest"),
            format!("HEAD /v2/{repo}/manifests/latest"),
        ],
        "{log:#?}"
    );
    assert_eq!(log.len(), pings + 3, "nothing else was requested: {log:#?}");
    let stats = client.stats();
    assert_eq!(
        (stats.auth, stats.get, stats.put, stats.head),
        (1, 1, 1, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn retag_two_arch_oci_index_with_odd_formatting_is_exact() {
    let reg = RealRegistry::open();
    let layout = Fixture::index("retag-oci-index").odd_formatting().build();
    assert_eq!(layout.top().media_type, canary_registry::OCI_INDEX);
    exact_retag(&reg, &layout, "acme/oci-index").await;
}

#[tokio::test]
async fn retag_docker_manifest_list_with_odd_formatting_is_exact() {
    let reg = RealRegistry::basic();
    let layout = Fixture::index("retag-docker-list")
        .docker()
        .odd_formatting()
        .build();
    assert_eq!(
        layout.top().media_type,
        canary_registry::DOCKER_MANIFEST_LIST
    );
    exact_retag(&reg, &layout, "acme/docker-list").await;
}

#[tokio::test]
async fn retag_single_arch_over_tls_is_exact() {
    let reg = RealRegistry::tls();
    let layout = Fixture::single("retag-single-tls").odd_formatting().build();
    exact_retag(&reg, &layout, "acme/single").await;
}

#[tokio::test]
async fn retag_of_a_list_converted_by_skopeo_v2s2_is_exact() {
    let reg = RealRegistry::open();
    let layout = Fixture::index("retag-v2s2").build();
    let staging = layout.push_converted_v2s2(&reg, "acme/converted", "staging-1");
    assert_ne!(staging, layout.top().digest, "skopeo converted the index");
    let raw = inspect_raw(&reg, "acme/converted", "staging-1");
    let client = client(&reg);
    let img = image(&reg, "acme/converted");
    let m = client
        .get_manifest(&img, &Reference::Tag(tag("staging-1")))
        .await
        .unwrap();
    assert_eq!(m.media_type(), canary_registry::DOCKER_MANIFEST_LIST);
    assert_eq!(m.bytes(), raw.as_slice());
    client.put_manifest(&img, &tag("latest"), &m).await.unwrap();
    assert_eq!(digest_of(&reg, "acme/converted", "latest"), staging);
    assert_eq!(inspect_raw(&reg, "acme/converted", "latest"), raw);
}

/// Core's promoter on the real registry: a manual promotion of a release
/// of two images (an index and a single-arch image) with Basic auth.
#[tokio::test]
async fn promoter_moves_a_release_of_two_images() {
    let reg = RealRegistry::basic();
    let sha = "4c1d56e0123456789abcdef0123456789abcdef0";
    let staging = format!("staging-{sha}");
    let platform = Fixture::index("promote-platform").odd_formatting().build();
    let tenant = Fixture::single("promote-tenant").docker().build();
    platform.push(&reg, "acme/platform", &staging);
    tenant.push(&reg, "acme/tenant", &staging);
    // An older latest, which the promotion replaces.
    Fixture::single("promote-old")
        .build()
        .push(&reg, "acme/platform", "latest");

    let client = client(&reg);
    let images = vec![image(&reg, "acme/platform"), image(&reg, "acme/tenant")];
    for i in &images {
        client.check_image(i).unwrap();
    }
    let release = Release::new(
        GitSha::parse(sha).unwrap(),
        images,
        TagTemplate::parse("staging-{sha}").unwrap(),
        TagTemplate::parse("latest").unwrap(),
    )
    .unwrap();
    let mark = reg.access_mark();
    let promoter = Promoter::new(
        Arc::new(client.clone()),
        Arc::new(StaticFleet::new(vec![])),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    );
    let report = promoter
        .promote_manual(&release, "real registry test")
        .await;
    assert_eq!(report.outcome, Outcome::Promoted, "{report:#?}");
    let log = reg.access_since(mark);
    assert_eq!(
        digest_of(&reg, "acme/platform", "latest"),
        platform.top().digest
    );
    assert_eq!(
        digest_of(&reg, "acme/tenant", "latest"),
        tenant.top().digest
    );
    assert_eq!(
        inspect_raw(&reg, "acme/platform", "latest"),
        platform.top().bytes
    );

    assert_eq!(
        log.iter().filter(|e| e.is_ping()).count(),
        1,
        "one auth request for the registry in the whole run: {log:#?}"
    );
    for repo in ["acme/platform", "acme/tenant"] {
        let prefix = format!("/v2/{repo}/manifests/");
        let count = |method: &str| {
            log.iter()
                .filter(|e| e.method == method && e.path.starts_with(&prefix))
                .count()
        };
        // Precheck: GET staging (a manual promotion moves what it read)
        // and GET latest (its `before`, by its bytes: a HEAD only repeats
        // the registry's claim). Move: PUT latest, HEAD latest (the
        // verify). Was HEAD staging at precheck and GET again at the move.
        assert_eq!(
            (count("GET"), count("PUT"), count("HEAD")),
            (2, 1, 1),
            "{repo}: {log:#?}"
        );
    }
    let stats = client.stats();
    assert_eq!(stats.auth, 1, "{stats:?}");
    assert_eq!(stats.put, 2, "{stats:?}");
    assert_eq!(stats.get, 4, "{stats:?}");
}

#[tokio::test]
async fn tls_without_the_ca_is_refused_with_a_hint() {
    let reg = RealRegistry::tls();
    let client = OciRegistry::new(RegistryOptions {
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let err = client
        .head_manifest(&image(&reg, "acme/x"), &Reference::Tag(tag("latest")))
        .await
        .unwrap_err();
    assert!(err.chain().contains("certificate"), "{}", err.chain());
    assert!(err.hint().unwrap().contains("ca_file"), "{:?}", err.hint());
}

/// Issue 14, finding 6: a certificate that does not name the host got the
/// hint "not signed by a trusted CA: pass the CA" although the CA was
/// passed. The registry's certificate names 127.0.0.1 and localhost; reach
/// it as 127.0.0.2 (a TCP relay on that loopback address).
#[tokio::test]
async fn a_certificate_for_another_name_says_so_not_untrusted_ca() {
    let reg = RealRegistry::tls();
    let upstream = reg.host();
    let relay = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let port = relay.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = relay.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let client = OciRegistry::new(RegistryOptions {
        ca_file: reg.ca_path(),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let image = ImageRef::parse(&format!("127.0.0.2:{port}/acme/x")).unwrap();
    let err = client
        .head_manifest(&image, &Reference::Tag(tag("latest")))
        .await
        .unwrap_err();
    task.abort();
    let hint = err.hint().unwrap_or_default().to_string();
    assert!(err.chain().contains("does not name"), "{}", err.chain());
    assert!(hint.contains("127.0.0.2"), "{hint}");
    assert!(!hint.contains("pass the CA"), "{hint}");
}

#[tokio::test]
async fn basic_auth_with_a_wrong_password_never_shows_it() {
    let reg = RealRegistry::basic();
    let wrong = "wrong-password-5f1e2d";
    let client = OciRegistry::new(RegistryOptions {
        credentials: Credentials::basic("canary", Secret::new(wrong)),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let err = client
        .get_manifest(&image(&reg, "acme/x"), &Reference::Tag(tag("latest")))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        canary_core::ErrorKind::Unauthorized,
        "{}",
        err.chain()
    );
    let shown = format!("{} {:?} {:?} {client:?}", err.chain(), err, err.hint());
    assert!(!shown.contains(wrong), "{shown}");
    // One re-authentication, then the answer stands.
    let stats = client.stats();
    assert_eq!((stats.get, stats.reauths), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn unreachable_registry_is_a_transient_error_with_a_hint() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let client = OciRegistry::new(RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
        clock: clock.clone(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let img = ImageRef::parse(&format!("127.0.0.1:{port}/acme/x")).unwrap();
    let err = client.list_tags(&img).await.unwrap_err();
    assert_eq!(
        err.kind(),
        canary_core::ErrorKind::Transient,
        "{}",
        err.chain()
    );
    assert!(err.chain().contains("cannot connect"), "{}", err.chain());
    assert!(err.hint().unwrap().contains("running"), "{:?}", err.hint());
    assert_eq!(clock.sleeps().len(), 2, "two backoffs for three attempts");
}
