use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::clock::ManualClock;

const SHA: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// A tenant as the fake sees it.
#[derive(Clone)]
struct Fake {
    token: &'static str,
    version: &'static str,
    up: bool,
    open: bool,
    status: Option<u16>,
}

fn healthy(token: &'static str) -> Fake {
    Fake {
        token,
        version: SHA,
        up: true,
        open: false,
        status: None,
    }
}

/// Tenants by URL; counts requests.
struct FakeProbe {
    tenants: HashMap<String, Fake>,
    knocks: AtomicUsize,
}

#[async_trait]
impl TenantProbe for FakeProbe {
    async fn knock(&self, url: &str, token: Option<&Secret>) -> ProbeAnswer {
        self.knocks.fetch_add(1, Ordering::SeqCst);
        let t = &self.tenants[url];
        if !t.up {
            return ProbeAnswer::NoAnswer("could not connect: connection refused".into());
        }
        if let Some(status) = t.status {
            return ProbeAnswer::Status(status, "internal error".into());
        }
        let authorized = t.open || token.is_some_and(|s| s.expose() == t.token);
        if authorized {
            ProbeAnswer::Accepted(Ok(t.version.to_string()))
        } else {
            ProbeAnswer::Refused(401)
        }
    }
}

fn url(i: usize) -> String {
    format!("https://t{i}.example")
}

/// The fleet: the fakes, and the token listed for each position.
fn run(fakes: &[Fake], listed: &[&str], expected: Option<&str>) -> FleetCheckReport {
    run_counted(fakes, listed, expected).0
}

fn run_counted(
    fakes: &[Fake],
    listed: &[&str],
    expected: Option<&str>,
) -> (FleetCheckReport, usize) {
    let probe = FakeProbe {
        tenants: fakes
            .iter()
            .enumerate()
            .map(|(i, f)| (url(i + 1), f.clone()))
            .collect(),
        knocks: AtomicUsize::new(0),
    };
    let tenants: Vec<Tenant> = listed
        .iter()
        .enumerate()
        .map(|(i, t)| Tenant::new(url(i + 1), Secret::new(*t)))
        .collect();
    let options = CheckOptions {
        expected: expected.map(|s| GitSha::parse(s).unwrap()),
        concurrency: 4,
        urls_from: "URLS".into(),
        tokens_from: "TOKENS".into(),
    };
    let report =
        futures::executor::block_on(check(&probe, &tenants, &options, &ManualClock::new(0)));
    (report, probe.knocks.load(Ordering::SeqCst))
}

fn health(r: &FleetCheckReport) -> Vec<Health> {
    r.tenants.iter().map(|t| t.health).collect()
}

#[test]
fn a_healthy_fleet_passes() {
    let fakes = [healthy("a"), healthy("b")];
    let r = run(&fakes, &["a", "b"], Some(&SHA[..7]));
    assert_eq!(health(&r), [Health::Healthy; 2]);
    assert_eq!((r.outcome, r.exit_code), (FleetOutcome::Healthy, 0));
    assert!(
        r.reason.contains("all 2 tenants are healthy"),
        "{}",
        r.reason
    );
    assert_eq!(r.tenants[0].status_with_token, Some(200));
    assert_eq!(r.tenants[0].status_without_token, Some(401));
    assert_eq!(r.tenants[1].version.as_deref(), Some(SHA));
}

#[test]
fn a_swapped_pair_names_the_tenant_each_token_belongs_to() {
    let fakes = [healthy("a"), healthy("b"), healthy("c")];
    let r = run(&fakes, &["a", "c", "b"], None);
    assert_eq!(
        health(&r),
        [Health::Healthy, Health::Misaligned, Health::Misaligned]
    );
    assert_eq!(r.tenants[1].token_belongs_to, Some(3));
    assert_eq!(r.tenants[2].token_belongs_to, Some(2));
    assert!(
        r.tenants[1]
            .detail
            .starts_with("the token in position 2 belongs to tenant 3 (https://t3.example)"),
        "{}",
        r.tenants[1].detail
    );
    assert_eq!((r.outcome, r.exit_code), (FleetOutcome::Unhealthy, 1));
    assert!(
        r.reason.starts_with("2 of 3 tenants unhealthy"),
        "{}",
        r.reason
    );
}

#[test]
fn a_wrong_token_is_not_a_misaligned_one() {
    let fakes = [healthy("a"), healthy("b")];
    let r = run(&fakes, &["a", "nobody-has-this"], None);
    assert_eq!(health(&r), [Health::Healthy, Health::WrongToken]);
    assert!(
        r.tenants[1]
            .detail
            .contains("no other tenant of the list takes it"),
        "{}",
        r.tenants[1].detail
    );
    assert!(!r.reason.contains("nobody-has-this"));
}

#[test]
fn an_open_tenant_is_unprotected_and_proves_no_token_is_its_own() {
    // Tenant 2 takes any token: the wrong token of tenant 1 "works" there,
    // which says nothing about where it belongs.
    let mut open = healthy("b");
    open.open = true;
    let fakes = [healthy("a"), open];
    let r = run(&fakes, &["wrong", "b"], None);
    assert_eq!(health(&r), [Health::WrongToken, Health::Unprotected]);
    assert_eq!(r.tenants[1].status_without_token, Some(200));
}

#[test]
fn unreachable_broken_and_old_tenants_are_named() {
    let mut down = healthy("b");
    down.up = false;
    let mut broken = healthy("c");
    broken.status = Some(500);
    let mut old = healthy("d");
    old.version = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let fakes = [healthy("a"), down, broken, old];
    let r = run(&fakes, &["a", "b", "c", "d"], Some(SHA));
    assert_eq!(
        health(&r),
        [
            Health::Healthy,
            Health::Unreachable,
            Health::Broken,
            Health::OldVersion
        ]
    );
    assert_eq!(r.tenants[1].response_ms, None);
    assert_eq!(r.tenants[1].status_without_token, None);
    assert!(
        r.tenants[3].detail.starts_with("runs 1111111"),
        "{}",
        r.tenants[3].detail
    );
    assert_eq!(r.outcome, FleetOutcome::Unhealthy);
    for name in ["t2.example", "t3.example", "t4.example"] {
        assert!(r.reason.contains(name), "{name}: {}", r.reason);
    }
}

#[test]
fn without_an_expected_version_versions_are_noted_not_judged() {
    let mut old = healthy("b");
    old.version = "1111111";
    let r = run(&[healthy("a"), old], &["a", "b"], None);
    assert_eq!(r.outcome, FleetOutcome::Healthy);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(r.notes[0].contains("2 versions"), "{:?}", r.notes);
}

#[test]
fn a_fleet_that_never_answers_could_not_be_checked() {
    let mut down = healthy("a");
    down.up = false;
    let r = run(&[down.clone(), down], &["a", "b"], None);
    assert_eq!((r.outcome, r.exit_code), (FleetOutcome::Unreachable, 3));
    assert!(r.reason.starts_with("no tenant answered"), "{}", r.reason);
}

#[test]
fn the_search_for_misaligned_tokens_is_bounded() {
    // 200 tenants, the first 60 tokens shifted by one: 60 × 199 pairs are
    // too many, so each refused token is tried on the 59 other refused
    // tenants only, which finds a shuffle.
    let tokens: Vec<&'static str> = (0..200)
        .map(|i| &*Box::leak(format!("tok-{i}").into_boxed_str()))
        .collect();
    let fakes: Vec<Fake> = tokens.iter().map(|t| healthy(t)).collect();
    let mut listed = tokens.clone();
    listed[..60].rotate_left(1);
    let (r, knocks) = run_counted(&fakes, &listed, None);
    assert!(r.tenants[..60]
        .iter()
        .all(|t| t.health == Health::Misaligned));
    assert!(r.tenants[60..].iter().all(|t| t.health == Health::Healthy));
    assert_eq!(r.tenants[0].token_belongs_to, Some(2));
    assert_eq!(r.tenants[59].token_belongs_to, Some(1));
    assert_eq!(knocks, 400 + 60 * 59, "own + bare, then refused × refused");
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    // More refused tokens than the bound allows: no search, and a note.
    let tokens: Vec<&'static str> = (0..70)
        .map(|i| &*Box::leak(format!("t-{i}").into_boxed_str()))
        .collect();
    let fakes: Vec<Fake> = tokens.iter().map(|t| healthy(t)).collect();
    let (r, knocks) = run_counted(&fakes, &["wrong"; 70], None);
    assert_eq!(knocks, 140);
    assert!(r.tenants.iter().all(|t| t.health == Health::WrongToken));
    assert!(r.notes[0].contains("too many"), "{:?}", r.notes);
}

#[test]
fn every_word_has_one_spelling() {
    for h in [
        Health::Healthy,
        Health::Unreachable,
        Health::Misaligned,
        Health::WrongToken,
        Health::Unprotected,
        Health::Broken,
        Health::OldVersion,
    ] {
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            serde_json::Value::String(h.as_str().into())
        );
    }
    for o in [
        FleetOutcome::Healthy,
        FleetOutcome::Unhealthy,
        FleetOutcome::Unreachable,
    ] {
        assert_eq!(
            serde_json::to_value(o).unwrap(),
            serde_json::Value::String(o.as_str().into())
        );
    }
}
