//! The compensation table, its properties, and how fates, last reads and
//! settlements are recorded and worded.

use super::*;
use proptest::prelude::*;

/// Three digests: `A` is `before` when there was one, `B` is what the
/// run wrote (unless `ours` is `A`), `C` is nobody's in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum D {
    A,
    B,
    C,
}

fn d(x: D) -> Digest {
    Digest::sha256_of(format!("{x:?}").as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Now {
    At(D),
    Missing,
    Unreadable,
}

impl Now {
    fn read(self) -> Read {
        match self {
            Now::At(x) => Read::Digest(d(x)),
            Now::Missing => Read::NotFound,
            Now::Unreadable => Read::Unreadable,
        }
    }
}

/// The confirmation column: `Any` for rows where it is never asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conf {
    Any,
    Unasked,
    Yes,
    No,
}

impl Conf {
    fn matches(self, c: Option<bool>) -> bool {
        match self {
            Conf::Any => true,
            Conf::Unasked => c.is_none(),
            Conf::Yes => c == Some(true),
            Conf::No => c == Some(false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Confirm(D),
    Back,
    Leave(D),
    Restore(D),
    Cannot(D),
    Unknown,
}

impl Want {
    fn decision(self) -> Decision {
        match self {
            Want::Confirm(x) => Decision::Confirm(d(x)),
            Want::Back => Decision::AlreadyBack,
            Want::Leave(x) => Decision::LeaveForeign(d(x)),
            Want::Restore(x) => Decision::Restore(d(x)),
            Want::Cannot(x) => Decision::CannotRestore(d(x)),
            Want::Unknown => Decision::Unknown,
        }
    }
}

use Conf::{Any, No, Unasked, Yes};
use Now::{At, Missing, Unreadable};
use D::{A, B, C};

/// before, ours, now, confirmation, decision: every combination of the
/// three digests, absence and failure.
#[rustfmt::skip]
const TABLE: &[(Option<D>, D, Now, Conf, Want)] = &[
    // No `before`: the tag did not exist; nothing can be written back.
    (None, B, At(B), Any, Want::Cannot(B)),
    (None, B, At(A), Unasked, Want::Confirm(A)),
    (None, B, At(A), Yes, Want::Leave(A)),
    (None, B, At(A), No, Want::Cannot(A)),
    (None, B, At(C), Unasked, Want::Confirm(C)),
    (None, B, At(C), Yes, Want::Leave(C)),
    (None, B, At(C), No, Want::Cannot(C)),
    (None, B, Missing, Any, Want::Back),
    (None, B, Unreadable, Any, Want::Unknown),
    (None, A, At(A), Any, Want::Cannot(A)),
    (None, A, At(B), Unasked, Want::Confirm(B)),
    (None, A, At(B), Yes, Want::Leave(B)),
    (None, A, At(B), No, Want::Cannot(B)),
    (None, A, At(C), Unasked, Want::Confirm(C)),
    (None, A, At(C), Yes, Want::Leave(C)),
    (None, A, At(C), No, Want::Cannot(C)),
    (None, A, Missing, Any, Want::Back),
    (None, A, Unreadable, Any, Want::Unknown),
    // `before` is A, the run wrote B.
    (Some(A), B, At(A), Any, Want::Back),
    (Some(A), B, At(B), Any, Want::Restore(A)),
    (Some(A), B, At(C), Unasked, Want::Confirm(C)),
    (Some(A), B, At(C), Yes, Want::Leave(C)),
    (Some(A), B, At(C), No, Want::Restore(A)),
    (Some(A), B, Missing, Any, Want::Restore(A)),
    (Some(A), B, Unreadable, Any, Want::Restore(A)),
    // `before` is A and the run wrote A again (latest was the release).
    (Some(A), A, At(A), Any, Want::Back),
    (Some(A), A, At(B), Unasked, Want::Confirm(B)),
    (Some(A), A, At(B), Yes, Want::Leave(B)),
    (Some(A), A, At(B), No, Want::Restore(A)),
    (Some(A), A, At(C), Unasked, Want::Confirm(C)),
    (Some(A), A, At(C), Yes, Want::Leave(C)),
    (Some(A), A, At(C), No, Want::Restore(A)),
    (Some(A), A, Missing, Any, Want::Restore(A)),
    (Some(A), A, Unreadable, Any, Want::Restore(A)),
];

/// Every input the table speaks about, confirmation included.
fn every_observation() -> Vec<(Option<D>, D, Now, Option<bool>)> {
    let mut all = Vec::new();
    for before in [None, Some(A)] {
        for ours in [A, B] {
            for now in [At(A), At(B), At(C), Missing, Unreadable] {
                for confirmed in [None, Some(true), Some(false)] {
                    all.push((before, ours, now, confirmed));
                }
            }
        }
    }
    all
}

fn observed(before: Option<D>, ours: D, now: Now, confirmed: Option<bool>) -> Observed {
    Observed {
        before: before.map(d),
        ours: d(ours),
        now: now.read(),
        confirmed,
    }
}

#[test]
fn the_table_covers_every_combination_once_and_holds() {
    for (before, ours, now, confirmed) in every_observation() {
        let rows: Vec<_> = TABLE
            .iter()
            .filter(|(b, o, n, c, _)| {
                *b == before && *o == ours && *n == now && c.matches(confirmed)
            })
            .collect();
        assert_eq!(
            rows.len(),
            1,
            "{before:?} {ours:?} {now:?} {confirmed:?}: {rows:?}"
        );
        let want = rows[0].4.decision();
        let got = decide(&observed(before, ours, now, confirmed));
        assert_eq!(got, want, "{before:?} {ours:?} {now:?} {confirmed:?}");
    }
}

/// Every observation, over digests drawn from a small alphabet so that
/// `before`, `ours` and `now` collide often.
fn any_observed() -> impl Strategy<Value = Observed> {
    let digest = || (0u8..4).prop_map(|n| Digest::sha256_of(&[n]));
    let now = prop_oneof![
        3 => digest().prop_map(Read::Digest),
        1 => Just(Read::NotFound),
        1 => Just(Read::Unreadable),
    ];
    (
        proptest::option::of(digest()),
        digest(),
        now,
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(before, ours, now, confirmed)| Observed {
            before,
            ours,
            now,
            confirmed,
        })
}

proptest! {
    #[test]
    fn only_ever_writes_the_digest_read_before(o in any_observed()) {
        if let Decision::Restore(target) = decide(&o) {
            prop_assert_eq!(Some(&target), o.before.as_ref());
            prop_assert!(!o.now.is(o.before.as_ref()), "restores a tag already back");
        }
    }

    #[test]
    fn never_restores_over_a_confirmed_foreign_digest(o in any_observed()) {
        if o.foreign().is_some() && o.confirmed == Some(true) {
            prop_assert_eq!(decide(&o), Decision::LeaveForeign(o.foreign().unwrap().clone()));
        }
    }

    #[test]
    fn trusts_a_foreign_digest_only_once_confirmed(o in any_observed()) {
        match decide(&o) {
            Decision::Confirm(d) => {
                prop_assert_eq!(Some(&d), o.foreign());
                prop_assert_eq!(o.confirmed, None);
                // Deciding again with the answer never asks again.
                for answer in [true, false] {
                    let again = Observed { confirmed: Some(answer), ..o.clone() };
                    prop_assert!(!matches!(decide(&again), Decision::Confirm(_)));
                }
            }
            Decision::LeaveForeign(d) => {
                prop_assert_eq!(Some(&d), o.foreign());
                prop_assert_eq!(o.confirmed, Some(true));
            }
            _ => {}
        }
    }

    #[test]
    fn writes_nothing_when_already_back(o in any_observed()) {
        if o.now.is(o.before.as_ref()) {
            prop_assert_eq!(decide(&o), Decision::AlreadyBack);
        }
    }

    #[test]
    fn unknown_and_cannot_restore_only_without_before(o in any_observed()) {
        match decide(&o) {
            Decision::Unknown => {
                prop_assert!(o.before.is_none());
                prop_assert_eq!(&o.now, &Read::Unreadable);
            }
            Decision::CannotRestore(now) => {
                prop_assert!(o.before.is_none());
                prop_assert_eq!(Some(&now), o.now.digest());
            }
            _ => {}
        }
    }
}

fn image(n: usize) -> ImageRef {
    ImageRef::parse(&format!("ghcr.io/acme/image{n}")).unwrap()
}

fn entry(n: usize, before: Option<Digest>, status: ImageStatus) -> ImageReport {
    ImageReport {
        image: image(n),
        before_read: true,
        overwritten: None,
        staging_digest: Some(d(B)),
        before: before.clone(),
        after: before,
        status,
        error: None,
    }
}

#[test]
fn fates_are_recorded_in_the_report() {
    let latest = Tag::parse("latest").unwrap();
    let mut e = entry(0, Some(d(A)), ImageStatus::Unchanged);
    Fate::Restored(d(A)).record(&mut e, &latest);
    assert_eq!(
        (e.status, e.after.clone()),
        (ImageStatus::Restored, Some(d(A)))
    );
    let mut e = entry(0, Some(d(A)), ImageStatus::Unchanged);
    Fate::LeftForeign(d(C)).record(&mut e, &latest);
    assert_eq!(
        (e.status, e.after.clone()),
        (ImageStatus::Unchanged, Some(d(C)))
    );
    assert_eq!(
        e.error.as_deref(),
        Some(
            format!(
                "ghcr.io/acme/image0:latest was moved to {} by another writer; left as it is",
                d(C)
            )
            .as_str()
        )
    );
    for failed in [
        Fate::RestoreFailed("denied".into()),
        Fate::CannotRestore(d(B)),
        Fate::Unknown("timeout".into()),
        Fate::Untouched,
    ] {
        let mut e = entry(0, Some(d(A)), ImageStatus::Moved);
        let before = e.clone();
        failed.record(&mut e, &latest);
        assert_eq!(e, before, "{failed:?} leaves the entry to the last read");
    }
}

#[test]
fn the_last_read_says_where_each_image_is() {
    let cases = [
        (
            Some(A),
            ImageStatus::Moved,
            Truth::At(Some(d(A))),
            ImageStatus::Restored,
        ),
        (
            Some(A),
            ImageStatus::Unchanged,
            Truth::At(Some(d(A))),
            ImageStatus::Unchanged,
        ),
        (
            Some(A),
            ImageStatus::Restored,
            Truth::At(Some(d(A))),
            ImageStatus::Restored,
        ),
        (
            Some(A),
            ImageStatus::Moved,
            Truth::At(Some(d(B))),
            ImageStatus::Mixed,
        ),
        (
            Some(A),
            ImageStatus::Unchanged,
            Truth::At(None),
            ImageStatus::Mixed,
        ),
        (
            None,
            ImageStatus::Unchanged,
            Truth::At(None),
            ImageStatus::Unchanged,
        ),
        (
            None,
            ImageStatus::Unchanged,
            Truth::At(Some(d(B))),
            ImageStatus::Mixed,
        ),
        (
            Some(A),
            ImageStatus::Moved,
            Truth::Unknown("reset".into()),
            ImageStatus::Mixed,
        ),
        (
            None,
            ImageStatus::Unchanged,
            Truth::Unknown("reset".into()),
            ImageStatus::Mixed,
        ),
    ];
    for (before, status, truth, want) in cases {
        let mut e = entry(0, before.map(d), status);
        truth.record(&mut e);
        assert_eq!(e.status, want, "{before:?} {status:?} {truth:?}");
        match &truth {
            Truth::At(now) => assert_eq!(&e.after, now),
            Truth::Unknown(chain) => {
                assert_eq!(e.after, None);
                assert_eq!(e.error, Some(format!("state unknown: {chain}")));
            }
        }
    }
}

#[test]
fn settlement_and_reason() {
    let latest = Tag::parse("latest").unwrap();
    let images = [image(0), image(1)];
    let befores = [Some(d(A)), None];

    let c = Compensation::new(vec![Fate::Restored(d(A)), Fate::Untouched], None, &befores);
    assert_eq!(c.settlement, Settlement::PutBack);
    assert_eq!(c.settlement.event(), Event::RestoreVerified);
    assert_eq!(
        c.reason(&images, &latest),
        "; every image touched was put back and verified"
    );

    let fates = vec![Fate::RestoreFailed("denied".into()), Fate::AlreadyBack];
    assert!(Compensation::needs_truth(&fates));
    let back = vec![Truth::At(Some(d(A))), Truth::At(None)];
    let c = Compensation::new(fates.clone(), Some(back), &befores);
    assert_eq!(c.settlement, Settlement::ReadsBack);
    assert_eq!(c.settlement.event(), Event::RestoreVerified);
    assert_eq!(
        c.reason(&images, &latest),
        "; restoring ghcr.io/acme/image0 failed: denied; every image reads back on its previous digest"
    );

    let mixed = vec![Truth::At(Some(d(B))), Truth::At(None)];
    let c = Compensation::new(fates.clone(), Some(mixed), &befores);
    assert_eq!(c.settlement, Settlement::Mixed);
    assert_eq!(c.settlement.event(), Event::RestoreFailed);
    assert_eq!(
        c.reason(&images, &latest),
        "; restoring ghcr.io/acme/image0 failed: denied"
    );

    // An unknown state is never taken for "back", even when there was
    // no `before` to compare with.
    let unknown = vec![Truth::At(Some(d(A))), Truth::Unknown("reset".into())];
    let c = Compensation::new(fates, Some(unknown), &befores);
    assert_eq!(c.settlement, Settlement::Mixed);

    let c = Compensation::new(
        vec![Fate::Restored(d(A)), Fate::CannotRestore(d(B))],
        Some(vec![Truth::At(Some(d(A))), Truth::At(Some(d(B)))]),
        &befores,
    );
    assert_eq!(
        c.reason(&images, &latest),
        format!(
            "; restoring ghcr.io/acme/image1 failed: ghcr.io/acme/image1:latest did not exist before and now points to {}; canary does not delete tags",
            d(B)
        )
    );
}

fn any_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        Just(Fate::Untouched),
        Just(Fate::AlreadyBack),
        Just(Fate::LeftForeign(d(C))),
        Just(Fate::Restored(d(A))),
        Just(Fate::RestoreFailed("denied".into())),
        Just(Fate::CannotRestore(d(B))),
        Just(Fate::Unknown("reset".into())),
    ]
}

fn any_truth() -> impl Strategy<Value = Truth> {
    prop_oneof![
        Just(Truth::At(Some(d(A)))),
        Just(Truth::At(Some(d(B)))),
        Just(Truth::At(None)),
        Just(Truth::Unknown("reset".into())),
    ]
}

proptest! {
    #[test]
    fn settles_truthfully(
        rows in proptest::collection::vec(
            (any_fate(), any_truth(), proptest::option::of(Just(d(A)))),
            1..5,
        ),
    ) {
        let fates: Vec<Fate> = rows.iter().map(|r| r.0.clone()).collect();
        let truths: Vec<Truth> = rows.iter().map(|r| r.1.clone()).collect();
        let befores: Vec<Option<Digest>> = rows.iter().map(|r| r.2.clone()).collect();
        let images: Vec<ImageRef> = (0..rows.len()).map(image).collect();
        let latest = Tag::parse("latest").unwrap();
        let truths = Compensation::needs_truth(&fates).then_some(truths);
        let c = Compensation::new(fates.clone(), truths.clone(), &befores);
        let reason = c.reason(&images, &latest);
        match c.settlement {
            Settlement::PutBack => prop_assert!(!fates.iter().any(Fate::failed)),
            Settlement::ReadsBack => {
                let truths = truths.unwrap();
                for (t, b) in truths.iter().zip(&befores) {
                    prop_assert!(t.is_back(b.as_ref()));
                }
            }
            Settlement::Mixed => {
                let truths = truths.unwrap();
                prop_assert!(truths.iter().zip(&befores).any(|(t, b)| !t.is_back(b.as_ref())));
            }
        }
        // The reason names every image whose restore failed, and no other.
        for (i, fate) in fates.iter().enumerate() {
            let named = reason.contains(&format!("restoring {} failed", images[i]));
            prop_assert_eq!(named, fate.failed(), "{:?}: {}", fate, reason);
        }
    }
}

#[test]
fn reassert_rounds_then_gives_up() {
    let first = d(B);
    assert_eq!(reassert(0, 0, &first), Reassert::Verified);
    assert_eq!(reassert(REASSERT_ROUNDS, 0, &first), Reassert::Verified);
    let jitter = u64::from(first.hex().as_bytes()[0] % 16) * 10;
    let mut last = Duration::ZERO;
    for round in 0..REASSERT_ROUNDS {
        let Reassert::Rewrite(pause) = reassert(round, 1, &first) else {
            panic!("round {round} gives up too early");
        };
        assert_eq!(pause, Duration::from_millis((100 << round) + jitter));
        assert!(pause > last, "the pause grows");
        last = pause;
    }
    assert_eq!(reassert(REASSERT_ROUNDS, 2, &first), Reassert::GiveUp);
}
