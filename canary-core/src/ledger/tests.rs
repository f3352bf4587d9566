use super::*;

fn d(n: u8) -> Digest {
    Digest::sha256_of(&[n])
}

fn image(name: &str) -> ImageRef {
    ImageRef::parse(&format!("registry.example/acme/{name}")).unwrap()
}

fn sha(c: char) -> GitSha {
    GitSha::parse(&c.to_string().repeat(40)).unwrap()
}

fn record(kind: RecordKind, run: &str, command: Command, images: Vec<RecordImage>) -> Record {
    Record {
        schema: RECORD_SCHEMA,
        kind,
        run_id: run.to_string(),
        command,
        sha: sha('a'),
        promoted_tag: "latest".into(),
        time_ms: 1,
        images,
        outcome: None,
        reason: String::new(),
        manual_reason: None,
        verified: false,
        checks: None,
        actor: None,
        run_url: None,
        previous: None,
        analysis: None,
    }
}

fn img(name: &str, before: Before, target: Digest) -> RecordImage {
    RecordImage {
        image: image(name),
        before,
        target,
        after: None,
        overwritten: None,
    }
}

fn stored(id: u8, record: Record) -> Stored {
    Stored {
        id: d(100 + id),
        record,
        signed: false,
    }
}

#[test]
fn an_intent_without_its_outcome_is_an_interruption() {
    let intent = record(
        RecordKind::Intent,
        "run-1",
        Command::Verify,
        vec![img("p", Before::At(d(1)), d(2))],
    );
    let mut outcome = intent.clone();
    outcome.kind = RecordKind::Outcome;
    outcome.outcome = Some(Outcome::Promoted);

    let open = vec![vec![stored(1, intent.clone())]];
    assert_eq!(
        interrupted(&open).map(|i| i.intent.record.run_id),
        Some("run-1".into())
    );
    // The outcome may be attached to another image's digest: still ended.
    let ended = vec![vec![stored(1, intent)], vec![stored(2, outcome)]];
    assert_eq!(interrupted(&ended), None);
    assert_eq!(interrupted(&[]), None);
}

#[test]
fn the_newest_open_intent_wins() {
    let mut old = record(RecordKind::Intent, "old", Command::Verify, vec![]);
    old.time_ms = 10;
    let mut new = record(RecordKind::Intent, "new", Command::Rollback, vec![]);
    new.time_ms = 20;
    let found = interrupted(&[vec![stored(1, old), stored(2, new)]]).unwrap();
    assert_eq!(found.intent.record.run_id, "new");
}

/// Every combination of what an image holds now, for undo and forward.
#[test]
fn repair_table() {
    use RepairDirection::{Forward, Undo};
    use RepairStep::{CannotUndo, LeaveForeign, Settled, Unknown, Write};
    let (before, target, foreign) = (d(1), d(2), d(3));
    let intent = |b: Before, command: Command, verified: bool| {
        let mut r = record(
            RecordKind::Intent,
            "r",
            command,
            vec![img("p", b, target.clone())],
        );
        r.verified = verified;
        r
    };
    let at = |x: &Digest| Read::Digest(x.clone());
    let rows: Vec<(Before, Read, RepairDirection, RepairStep)> = vec![
        // Undo: back to before; never over another writer.
        (
            Before::At(before.clone()),
            at(&target),
            Undo,
            Write(before.clone()),
        ),
        (Before::At(before.clone()), at(&before), Undo, Settled),
        (
            Before::At(before.clone()),
            at(&foreign),
            Undo,
            LeaveForeign(foreign.clone()),
        ),
        (
            Before::At(before.clone()),
            Read::NotFound,
            Undo,
            Write(before.clone()),
        ),
        (
            Before::At(before.clone()),
            Read::Unreadable,
            Undo,
            Write(before.clone()),
        ),
        (
            Before::Absent,
            at(&target),
            Undo,
            CannotUndo(target.clone()),
        ),
        (Before::Absent, Read::NotFound, Undo, Settled),
        (
            Before::Absent,
            at(&foreign),
            Undo,
            LeaveForeign(foreign.clone()),
        ),
        (Before::Absent, Read::Unreadable, Undo, Unknown),
        (Before::NotRead, at(&target), Undo, Unknown),
        // Forward: to the target, only over what the intent read.
        (Before::At(before.clone()), at(&target), Forward, Settled),
        (
            Before::At(before.clone()),
            at(&before),
            Forward,
            Write(target.clone()),
        ),
        (
            Before::At(before.clone()),
            at(&foreign),
            Forward,
            LeaveForeign(foreign.clone()),
        ),
        (
            Before::At(before.clone()),
            Read::Unreadable,
            Forward,
            Unknown,
        ),
        (Before::At(before.clone()), Read::NotFound, Forward, Unknown),
        (
            Before::Absent,
            Read::NotFound,
            Forward,
            Write(target.clone()),
        ),
        (
            Before::NotRead,
            at(&before),
            Forward,
            LeaveForeign(before.clone()),
        ),
    ];
    for (b, now, direction, want) in rows {
        let got = repair_plan(
            &intent(b.clone(), Command::Promote, false),
            std::slice::from_ref(&now),
            direction,
        )
        .unwrap();
        assert_eq!(got, vec![want.clone()], "{b:?} now {now:?} {direction:?}");
    }
}

#[test]
fn forward_only_for_verified_or_manual_promotions() {
    let target = d(2);
    let intent = |command: Command, verified: bool| {
        let mut r = record(
            RecordKind::Intent,
            "r",
            command,
            vec![img("p", Before::At(d(1)), target.clone())],
        );
        r.verified = verified;
        r
    };
    let now = [Read::Digest(d(1))];
    let f = RepairDirection::Forward;
    assert!(repair_plan(&intent(Command::Promote, false), &now, f).is_ok());
    assert!(repair_plan(&intent(Command::Verify, true), &now, f).is_ok());
    assert_eq!(
        repair_plan(&intent(Command::Verify, false), &now, f),
        Err(RepairRefusal::NotForwardable(Command::Verify))
    );
    assert_eq!(
        repair_plan(&intent(Command::Rollback, false), &now, f),
        Err(RepairRefusal::NotForwardable(Command::Rollback))
    );
    // Undo is always allowed.
    assert!(repair_plan(
        &intent(Command::Rollback, false),
        &now,
        RepairDirection::Undo
    )
    .is_ok());
}

#[test]
fn why_latest_is_latest() {
    let p = image("p");
    let mut promoted = record(
        RecordKind::Outcome,
        "r1",
        Command::Verify,
        vec![img("p", Before::At(d(1)), d(2))],
    );
    promoted.outcome = Some(Outcome::Promoted);
    promoted.images[0].after = Some(d(2));
    let mut rejected = promoted.clone();
    rejected.run_id = "r2".into();
    rejected.outcome = Some(Outcome::Rejected);
    rejected.time_ms = 5;
    let attached = vec![stored(1, rejected), stored(2, promoted.clone())];
    match why(&p, &d(2), &attached) {
        Why::Record(s) => assert_eq!(s.record.run_id, "r1"),
        Why::Outside => panic!("the promotion explains latest"),
    }
    assert_eq!(why(&p, &d(9), &attached), Why::Outside);
    assert_eq!(why(&p, &d(2), &[]), Why::Outside);
}

#[test]
fn previous_verified_skips_the_current_release_and_manual_moves() {
    let mk = |run: &str, s: char, outcome: Outcome, verified: bool| {
        let mut r = record(RecordKind::Outcome, run, Command::Verify, vec![]);
        r.sha = sha(s);
        r.outcome = Some(outcome);
        r.verified = verified;
        r
    };
    let chain = vec![
        stored(1, mk("now", 'c', Outcome::Promoted, true)),
        stored(2, mk("manual", 'b', Outcome::Promoted, false)),
        stored(3, mk("red", 'e', Outcome::Rejected, false)),
        stored(4, mk("good", 'a', Outcome::Promoted, true)),
    ];
    let found = previous_verified(&chain, &sha('c')).unwrap();
    assert_eq!(found.record.run_id, "good");
    assert!(previous_verified(&chain[..2], &sha('c')).is_none());
}

#[test]
fn before_serializes_its_three_states_apart() {
    let not_read = serde_json::to_string(&Before::NotRead).unwrap();
    let absent = serde_json::to_string(&Before::Absent).unwrap();
    let at = serde_json::to_string(&Before::At(d(1))).unwrap();
    assert_eq!(not_read, r#"{"state":"not_read"}"#);
    assert_eq!(absent, r#"{"state":"absent"}"#);
    assert!(at.starts_with(r#"{"state":"at","digest":"sha256:"#), "{at}");
    for s in [not_read, absent, at] {
        let back: Before = serde_json::from_str(&s).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), s);
    }
}

#[test]
fn memory_ledger_keeps_what_it_is_given() {
    let ledger = MemoryLedger::new();
    let p = image("p");
    let r = record(RecordKind::Intent, "r", Command::Verify, vec![]);
    let id = futures::executor::block_on(ledger.append(&p, &d(1), &r)).unwrap();
    let back = futures::executor::block_on(ledger.get(&p, &id)).unwrap();
    assert_eq!(back.record, r);
    let attached = futures::executor::block_on(ledger.attached(&p, &d(1))).unwrap();
    assert_eq!(attached.len(), 1);
    assert!(futures::executor::block_on(ledger.attached(&p, &d(2)))
        .unwrap()
        .is_empty());
    ledger.fail_appends(true);
    assert!(futures::executor::block_on(ledger.append(&p, &d(1), &r)).is_err());
}

/// A run killed after its intent and before any write leaves the intent at
/// its target; a later run that moves `latest` there and records its end
/// supersedes it: nothing is pending, and `repair` must not undo the later
/// run.
#[test]
fn a_newer_outcome_on_the_same_digest_supersedes_an_older_intent() {
    let mut stale = record(RecordKind::Intent, "killed", Command::Promote, vec![]);
    stale.time_ms = 10;
    let mut later = record(RecordKind::Outcome, "later", Command::Promote, vec![]);
    later.time_ms = 20;
    later.outcome = Some(Outcome::Promoted);
    assert_eq!(
        interrupted(&[vec![stored(1, stale.clone()), stored(2, later)]]),
        None
    );
    // An intent newer than every outcome there is still pending.
    let mut newer = stale;
    newer.time_ms = 30;
    let mut older = record(RecordKind::Outcome, "older", Command::Promote, vec![]);
    older.time_ms = 20;
    let found = interrupted(&[vec![stored(1, newer), stored(2, older)]]).unwrap();
    assert_eq!(found.intent.record.run_id, "killed");
}
