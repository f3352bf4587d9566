//! The promoter's side of the release ledger (ARCHITECTURE.md, "Release
//! ledger"): refuse to start over an interrupted run, announce every move
//! before the first write, record every outcome after the run. What the
//! records mean is decided in [`crate::ledger`]; this module reads and
//! writes.

use futures::future::join_all;

use crate::error::{Error, ErrorKind};
use crate::ledger::{
    interrupted_entry, newest_entries_first, Before, CheckSummary, Record, RecordImage, RecordKind,
    RECORD_SCHEMA,
};
use crate::machine::{Mode, Outcome};
use crate::report::{Command, ImageReport, LedgerReport, PromotionReport};
use crate::suite::CheckStatus;
use crate::types::Digest;

use super::{Promoter, Run};

/// What one run knows of the ledger.
#[derive(Debug, Default)]
pub(super) struct RunLedger {
    run_id: String,
    /// Per image: the newest record attached to its promoted tag's digest
    /// at precheck (the hash chain's previous link).
    previous: Vec<Option<Digest>>,
    /// Whether any intent record was written: an outcome must follow.
    announced: bool,
    /// What was written, for the report.
    report: LedgerReport,
}

impl RunLedger {
    pub(super) fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            ..Self::default()
        }
    }
}

fn before_of(entry: &ImageReport) -> Before {
    match (&entry.before, entry.before_read) {
        (_, false) => Before::NotRead,
        (None, true) => Before::Absent,
        (Some(d), true) => Before::At(d.clone()),
    }
}

fn command_of(mode: Mode) -> Command {
    match mode {
        Mode::Verify { .. } => Command::Verify,
        Mode::Manual => Command::Promote,
        Mode::Rollback => Command::Rollback,
    }
}

impl Promoter {
    /// At precheck, once every promoted tag was read: finds the chain's
    /// previous record per image, and refuses to start when an earlier run
    /// announced a move and never recorded its end (invariant 7): the next
    /// move must not build on a half-moved release.
    pub(super) async fn check_ledger(&self, run: &mut Run) -> Result<(), Error> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        // Listings only (one request per image): a record is fetched only
        // for an intent that has no outcome.
        let reads = join_all(run.report.images.iter().map(|entry| async move {
            match &entry.before {
                Some(d) => ledger.list(&entry.image, d).await,
                None => Ok(Vec::new()),
            }
        }))
        .await;
        let mut listed = Vec::with_capacity(reads.len());
        run.ledger.previous = Vec::with_capacity(reads.len());
        for (entry, read) in run.report.images.iter().zip(reads) {
            let mut entries =
                read.map_err(|e| e.context(format!("reading the ledger of {}", entry.image)))?;
            newest_entries_first(&mut entries);
            run.ledger
                .previous
                .push(entries.first().map(|e| e.id.clone()));
            listed.push(entries);
        }
        if let Some((i, open)) = interrupted_entry(&listed) {
            let image = &run.report.images[i].image;
            let found = ledger
                .get(image, &open.id)
                .await
                .map_err(|e| e.context(format!("reading the ledger of {image}")))?;
            let r = &found.record;
            return Err(Error::new(
                ErrorKind::Other,
                format!(
                    "an earlier {} of {} (run {}) announced a move of {} and never recorded its end: the release may be half-moved",
                    r.command.as_str(),
                    r.sha,
                    r.run_id,
                    r.promoted_tag
                ),
            )
            .with_hint("run `canary status` to see where each image is, then `canary repair` (undo) or `canary repair --forward`, and run again"));
        }
        Ok(())
    }

    /// Right before the first write, once every promoted tag's `before`
    /// is what the move really replaces: writes the intent record of every
    /// image, attached to its target digest. Nothing moves when this fails.
    pub(super) async fn announce(&self, run: &mut Run) -> Result<(), Error> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let Some(record) = self.record(run.plan.mode, &run.ledger, &run.report, RecordKind::Intent)
        else {
            return Ok(());
        };
        let writes = join_all(
            run.report
                .images
                .iter()
                .enumerate()
                .filter_map(|(i, entry)| entry.staging_digest.as_ref().map(|d| (i, entry, d)))
                .map(|(i, entry, target)| {
                    let mut record = record.clone();
                    record.previous = run.ledger.previous.get(i).cloned().flatten();
                    async move { ledger.append(&entry.image, target, &record).await }
                }),
        )
        .await;
        let mut failure = None;
        for write in writes {
            match write {
                Ok(id) => {
                    run.ledger.announced = true;
                    run.ledger.report.intent.push(id);
                }
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => {
                Err(e.context("writing the intent record to the ledger (nothing was moved)"))
            }
            None => Ok(()),
        }
    }

    /// After the run: the outcome record of every image, attached to the
    /// digest its promoted tag points at now, and to its target when that
    /// differs (so the intent there is closed). Written for every run that
    /// announced a move, and for a verify that ended red (the evidence of a
    /// rejection). A record that cannot be written is a warning in the
    /// report; it never changes the outcome.
    pub(super) async fn record_outcome(
        &self,
        report: &mut PromotionReport,
        mode: Mode,
        run_ledger: &mut RunLedger,
    ) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        if report.shard.is_some() {
            // A shard's evidence is recorded by the `decide` that merges it.
            return;
        }
        let red = report.command == Command::Verify
            && matches!(report.outcome, Outcome::Rejected | Outcome::Inconclusive)
            && report.images.iter().all(|i| i.staging_digest.is_some());
        let record = (run_ledger.announced || red)
            .then(|| self.record(mode, run_ledger, report, RecordKind::Outcome))
            .flatten();
        if let Some(record) = record {
            let mut targets = Vec::new();
            for (i, entry) in report.images.iter().enumerate() {
                let Some(target) = &entry.staging_digest else {
                    continue;
                };
                let now = entry.after.clone().or_else(|| entry.before.clone());
                for subject in now.into_iter().chain([target.clone()]) {
                    if !targets.iter().any(|(j, s)| *j == i && *s == subject) {
                        targets.push((i, subject));
                    }
                }
            }
            let writes = join_all(targets.iter().map(|(i, subject)| {
                let entry = &report.images[*i];
                let mut record = record.clone();
                record.previous = run_ledger.previous.get(*i).cloned().flatten();
                async move {
                    ledger
                        .append(&entry.image, subject, &record)
                        .await
                        .map_err(|e| e.context(format!("{}@{subject}", entry.image)))
                }
            }))
            .await;
            for write in writes {
                match write {
                    Ok(id) => run_ledger.report.outcome.push(id),
                    Err(e) => run_ledger
                        .report
                        .warnings
                        .push(format!("the outcome record was not written: {}", e.chain())),
                }
            }
        }
        report.ledger = Some(std::mem::take(&mut run_ledger.report));
    }

    /// The record of this run, as far as `report` got; `None` before the
    /// sha was resolved.
    fn record(
        &self,
        mode: Mode,
        run_ledger: &RunLedger,
        report: &PromotionReport,
        kind: RecordKind,
    ) -> Option<Record> {
        let done = kind == RecordKind::Outcome;
        let verify = matches!(mode, Mode::Verify { .. });
        let checks = verify.then(|| {
            let (passed, failed) =
                report
                    .tenants
                    .iter()
                    .flat_map(|t| &t.checks)
                    .fold((0, 0), |(p, f), c| {
                        if c.status == CheckStatus::Passed {
                            (p + 1, f)
                        } else {
                            (p, f + 1)
                        }
                    });
            CheckSummary {
                suite: self.meta.suite.clone().unwrap_or_default(),
                suite_digest: self.meta.suite_digest.clone(),
                tenants: report.tenants.len(),
                passed,
                failed,
            }
        });
        let verified = verify
            && !report.tenants.is_empty()
            && report
                .tenants
                .iter()
                .all(crate::report::TenantReport::passed)
            && report
                .analysis
                .as_ref()
                .is_none_or(|a| a.status() == crate::analysis::VerdictStatus::Pass);
        Some(Record {
            schema: RECORD_SCHEMA,
            kind,
            run_id: run_ledger.run_id.clone(),
            command: command_of(mode),
            sha: report.sha.clone()?,
            promoted_tag: report
                .promoted_tag
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            time_ms: self.clock.now_ms(),
            images: report
                .images
                .iter()
                .filter_map(|entry| {
                    entry.staging_digest.as_ref().map(|target| RecordImage {
                        image: entry.image.clone(),
                        before: before_of(entry),
                        target: target.clone(),
                        after: if done { entry.after.clone() } else { None },
                        overwritten: entry.overwritten.clone(),
                    })
                })
                .collect(),
            outcome: done.then_some(report.outcome),
            reason: if done {
                report.reason.clone()
            } else {
                String::new()
            },
            manual_reason: report.manual_reason.clone(),
            verified,
            checks,
            actor: self.meta.actor.clone(),
            run_url: self.meta.run_url.clone(),
            previous: None,
            analysis: if done { report.analysis.clone() } else { None },
        })
    }
}
