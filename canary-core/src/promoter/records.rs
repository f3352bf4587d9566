//! Reading the ledger and settling what it says: `status` explains each
//! image's promoted tag, `history` walks the hash chain, `repair` finishes
//! or undoes an interrupted run. The decisions are [`crate::ledger`]'s pure
//! functions; this module reads and writes.

use std::collections::BTreeSet;

use futures::future::join_all;

use crate::compensation::Read;
use crate::error::{Error, ErrorKind};
use crate::ledger::{
    interrupted_entry, newest_entries_first, newest_first, repair_plan, why, Before, Entry,
    Interruption, Record, RecordKind, RepairDirection, RepairRefusal, RepairStep, Stored, Why,
    RECORD_SCHEMA,
};
use crate::machine::Outcome;
use crate::report::{
    Command, ErrorReport, ImageReport, ImageStatus, LedgerReport, PromotionReport,
};
use crate::status::{RecordSummary, StatusReport};
use crate::types::{Digest, GitSha, ImageRef, Reference, Release, Tag, TagTemplate};

use super::Promoter;

impl Promoter {
    /// Fills what the ledger says into a status: the record behind each
    /// promoted tag, a pending interrupted run, and whether the images are
    /// on different releases (judged from the records, else from the
    /// staging tags at each digest) — the last also without any ledger —
    /// and the one release they are all on, if any.
    pub(crate) async fn explain(&self, status: &mut StatusReport, staging: &TagTemplate) {
        if let Some(ledger) = &self.ledger {
            let reads = join_all(status.images.iter().map(|i| async move {
                match &i.digest {
                    Some(d) => explain_one(ledger.as_ref(), &i.image, d).await.map(Some),
                    None => Ok(None),
                }
            }))
            .await;
            let mut all = Vec::new();
            for (state, read) in status.images.iter_mut().zip(reads) {
                match read {
                    Ok(Some((entries, record))) => {
                        state.explained = true;
                        state.record = record.as_ref().map(RecordSummary::from);
                        all.push(entries);
                    }
                    Ok(None) => {
                        state.explained = true;
                        all.push(Vec::new());
                    }
                    Err(e) => {
                        state
                            .error
                            .get_or_insert_with(|| format!("reading the ledger: {}", e.chain()));
                        all.push(Vec::new());
                    }
                }
            }
            if let Some((i, open)) = interrupted_entry(&all) {
                match ledger.get(&status.images[i].image, &open.id).await {
                    Ok(intent) => status.interrupted = Some(RecordSummary::from(&intent)),
                    Err(e) => {
                        status.images[i]
                            .error
                            .get_or_insert_with(|| format!("reading the ledger: {}", e.chain()));
                    }
                }
            }
        }
        // The release each image is on: the record's, else every staging
        // tag at its digest. Mixed when no release is common to all.
        let releases: Vec<BTreeSet<String>> = status
            .images
            .iter()
            .filter(|i| i.digest.is_some())
            .map(|i| match &i.record {
                Some(r) => BTreeSet::from([r.sha.to_string()]),
                None => i
                    .staging_tags
                    .iter()
                    .filter_map(|t| staging.sha_of(t).map(|s| s.to_string()))
                    .collect(),
            })
            .collect();
        let common = releases
            .iter()
            .skip(1)
            .fold(releases.first().cloned().unwrap_or_default(), |acc, s| {
                acc.intersection(s).cloned().collect()
            });
        status.mixed = releases.len() > 1 && common.is_empty();
        status.release = match common.iter().next() {
            Some(sha) if common.len() == 1 && releases.len() == status.images.len() => {
                crate::types::GitSha::parse(sha).ok()
            }
            _ => None,
        };
    }

    /// The ledger of `image`, newest first: the newest record attached to
    /// the digest its promoted tag points at, then each record's previous
    /// one, at most `limit`. Empty when the tag does not exist or no
    /// ledger is configured.
    pub async fn history(
        &self,
        image: &ImageRef,
        promoted: &Tag,
        limit: usize,
    ) -> Result<Vec<Stored>, Error> {
        let Some(ledger) = &self.ledger else {
            return Ok(Vec::new());
        };
        let Some(latest) = self
            .registry()
            .head_manifest(image, &Reference::Tag(promoted.clone()))
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut attached = ledger.attached(image, &latest).await?;
        newest_first(&mut attached);
        let mut chain = Vec::new();
        let mut next = attached.into_iter().next();
        while let Some(stored) = next {
            if chain.len() >= limit {
                break;
            }
            let previous = stored.record.previous.clone();
            chain.push(stored);
            next = match previous {
                // A link to a record already listed would loop: stop.
                Some(id) if chain.iter().any(|s: &Stored| s.id == id) => None,
                Some(id) => Some(ledger.get(image, &id).await?),
                None => None,
            };
        }
        Ok(chain)
    }

    /// `canary repair`: finds a run that announced a move and never
    /// recorded its end, and settles it — undo (every image back where the
    /// intent read it) or forward (every image to its target; only for a
    /// verified or manual promotion). Never writes over another writer's
    /// digest. Records the end of the interrupted run in the ledger.
    pub async fn repair(
        &self,
        images: &[ImageRef],
        promoted: &Tag,
        direction: RepairDirection,
    ) -> PromotionReport {
        let started = self.clock.now_ms();
        let mut report = PromotionReport::new(Command::Repair, None);
        report.timings.started_ms = started;
        report.promoted_tag = Some(promoted.clone());
        let Some(ledger) = &self.ledger else {
            report.set_outcome(
                Outcome::Failed,
                "repair reads the ledger, and none is configured ([ledger] enabled = false)",
            );
            return report;
        };
        let found = match self.find_interruption(images, promoted).await {
            Ok(found) => found,
            Err(e) => {
                report.set_outcome(
                    Outcome::Failed,
                    format!("reading the ledger failed: {}", e.chain()),
                );
                report.error = Some((&e).into());
                return report;
            }
        };
        let Some(Interruption { intent }) = found else {
            report.set_outcome(
                Outcome::Skipped,
                format!("nothing to repair: no interrupted run on any image's {promoted}"),
            );
            return report;
        };
        let record = intent.record.clone();
        report.sha = Some(record.sha.clone());
        let reference = Reference::Tag(promoted.clone());
        let reads = join_all(
            record
                .images
                .iter()
                .map(|i| self.registry().head_manifest(&i.image, &reference)),
        )
        .await;
        let now: Vec<Read> = reads.iter().map(Read::of).collect();
        let plan = match repair_plan(&record, &now, direction) {
            Ok(plan) => plan,
            Err(RepairRefusal::NotForwardable(command)) => {
                report.set_outcome(
                    Outcome::Failed,
                    format!(
                        "cannot finish the interrupted {} of {} forward: only a verified or manual promotion may be finished; undo it with `canary repair`",
                        command.as_str(),
                        record.sha
                    ),
                );
                return report;
            }
        };
        let mut settled = true;
        for ((image, step), now) in record.images.iter().zip(&plan).zip(&now) {
            let mut entry = ImageReport {
                image: image.image.clone(),
                staging_digest: Some(image.target.clone()),
                before: image.before.digest().cloned(),
                before_read: !matches!(image.before, Before::NotRead),
                overwritten: None,
                after: now.digest().cloned(),
                status: ImageStatus::Unchanged,
                error: None,
            };
            match step {
                RepairStep::Settled => {}
                RepairStep::Write(d) => match self
                    .retag(
                        &image.image,
                        &Reference::Digest(d.clone()),
                        Some(d),
                        promoted,
                    )
                    .await
                {
                    Ok(after) => {
                        entry.status = if *d == image.target {
                            ImageStatus::Moved
                        } else {
                            ImageStatus::Restored
                        };
                        entry.after = Some(after);
                    }
                    Err(e) => {
                        settled = false;
                        entry.status = ImageStatus::Mixed;
                        entry.error = Some(e.chain());
                    }
                },
                RepairStep::LeaveForeign(d) => {
                    settled = false;
                    entry.status = ImageStatus::Mixed;
                    entry.error = Some(format!(
                        "holds {d}, written by another writer since the interrupted run: left as it is"
                    ));
                }
                RepairStep::CannotUndo(d) => {
                    settled = false;
                    entry.status = ImageStatus::Mixed;
                    entry.error = Some(format!(
                        "did not exist before the interrupted run and now holds {d}: canary does not delete tags"
                    ));
                }
                RepairStep::Unknown => {
                    settled = false;
                    entry.status = ImageStatus::Mixed;
                    entry.error =
                        Some("cannot be read, or the interrupted run never read it".to_string());
                }
            }
            self.observer.image(&entry);
            report.images.push(entry);
        }
        let way = match direction {
            RepairDirection::Undo => "undone: every image is back where the run found it",
            RepairDirection::Forward => "finished: every image is on the release it was moving to",
        };
        if settled {
            report.set_outcome(
                Outcome::Repaired,
                format!(
                    "the interrupted {} of {} (run {}) is {way}, verified",
                    record.command.as_str(),
                    record.sha,
                    record.run_id
                ),
            );
        } else {
            report.set_outcome(
                Outcome::Inconsistent,
                format!(
                    "INCONSISTENT: the interrupted {} of {} (run {}) could not be settled; each image's digest now is in the report",
                    record.command.as_str(),
                    record.sha,
                    record.run_id
                ),
            );
            report.error = Some(ErrorReport {
                kind: "inconsistent".to_string(),
                message: report.reason.clone(),
                hint: Some("move the promoted tag of every image to one release by hand (`canary rollback SHA` reads each staging tag)".to_string()),
            });
        }
        self.close(ledger.as_ref(), &record, &mut report).await;
        report.timings.finished_ms = self.clock.now_ms();
        report
    }

    /// The interrupted run, if any: an intent attached to some image's
    /// current digest without its outcome.
    async fn find_interruption(
        &self,
        images: &[ImageRef],
        promoted: &Tag,
    ) -> Result<Option<Interruption>, Error> {
        let Some(ledger) = &self.ledger else {
            return Ok(None);
        };
        let mut listed = Vec::new();
        let mut listed_images = Vec::new();
        for image in images {
            let Some(d) = self
                .registry()
                .head_manifest(image, &Reference::Tag(promoted.clone()))
                .await?
            else {
                continue;
            };
            listed.push(ledger.list(image, &d).await?);
            listed_images.push(image);
        }
        match interrupted_entry(&listed) {
            Some((i, open)) => Ok(Some(Interruption {
                intent: ledger.get(listed_images[i], &open.id).await?,
            })),
            None => Ok(None),
        }
    }

    /// Writes the outcome of the interrupted run (same run id, command
    /// `repair`), attached to each image's digest now and to its target.
    async fn close(
        &self,
        ledger: &dyn crate::ledger::Ledger,
        intent: &Record,
        report: &mut PromotionReport,
    ) {
        let mut record = intent.clone();
        record.schema = RECORD_SCHEMA;
        record.kind = RecordKind::Outcome;
        record.command = Command::Repair;
        record.time_ms = self.clock.now_ms();
        record.outcome = Some(report.outcome);
        record.reason.clone_from(&report.reason);
        record.actor.clone_from(&self.meta.actor);
        record.run_url.clone_from(&self.meta.run_url);
        // A forward repair finishes a verified promotion; an undo does not
        // make its release verified on latest.
        let forward = report
            .images
            .iter()
            .zip(&record.images)
            .all(|(e, i)| e.after.as_ref() == Some(&i.target));
        record.verified = intent.verified && forward;
        for (entry, image) in report.images.iter().zip(record.images.iter_mut()) {
            image.after.clone_from(&entry.after);
        }
        let mut ledger_report = LedgerReport::default();
        for image in &record.images {
            let subjects: Vec<Digest> = image
                .after
                .iter()
                .chain([&image.target])
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for subject in subjects {
                match ledger.append(&image.image, &subject, &record).await {
                    Ok(id) => ledger_report.outcome.push(id),
                    Err(e) => ledger_report
                        .warnings
                        .push(format!("the outcome record was not written: {}", e.chain())),
                }
            }
        }
        report.ledger = Some(ledger_report);
    }
}

impl Promoter {
    /// Where `rollback --previous` goes: in `image`'s ledger, the last
    /// release whose record says it was verified and promoted, before the
    /// release on the promoted tag now.
    pub async fn previous_release(
        &self,
        image: &ImageRef,
        promoted: &Tag,
    ) -> Result<crate::types::GitSha, Error> {
        let chain = self.history(image, promoted, usize::MAX).await?;
        let current = chain
            .iter()
            .find(|s| s.record.moved_latest())
            .map(|s| s.record.sha.clone());
        let found = match &current {
            Some(current) => crate::ledger::previous_verified(&chain, current),
            None => chain.iter().find(|s| s.record.verified_promotion()),
        };
        found.map(|s| s.record.sha.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "{image}: the ledger has no verified promotion before the current release ({} records read)",
                    chain.len()
                ),
            )
            .with_hint("roll back to a sha explicitly: `canary rollback SHA`")
        })
    }
}

impl Promoter {
    /// Where `canary guard` reverts `release` to: the newest verified
    /// promotion of another release in the ledger; else the newest record
    /// that put another release on the promoted tag (a manual promotion, a
    /// rollback); else the release whose staging tag holds the `before`
    /// digest of the record that promoted `release` (found among the newest
    /// 200 staging tags of the first image).
    pub async fn release_before(&self, release: &Release) -> Result<GitSha, Error> {
        let image = &release.images()[0];
        let current = release.sha();
        let chain = self
            .history(image, &release.promoted_tag(), usize::MAX)
            .await?;
        if let Some(s) = crate::ledger::previous_verified(&chain, current).or_else(|| {
            chain
                .iter()
                .find(|s| s.record.moved_latest() && &s.record.sha != current)
        }) {
            return Ok(s.record.sha.clone());
        }
        let before = chain
            .iter()
            .find(|s| s.record.moved_latest() && &s.record.sha == current)
            .and_then(|s| s.record.images.iter().find(|i| &i.image == image))
            .and_then(|i| i.before.digest().cloned());
        if let Some(before) = before {
            let template = release.staging_template();
            let scan = self.staging_tags_of(image, template, &before, 200).await?;
            if let Some(sha) = scan.tags.iter().find_map(|t| template.sha_of(t)) {
                return Ok(sha);
            }
        }
        Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{image}: the ledger has no release before {current} ({} records read)",
                chain.len()
            ),
        )
        .with_hint("name the release to go back to with --revert-to SHA"))
    }
}

/// The listing of what is attached to `digest`, and the record that put the
/// promoted tag there: outcome records are fetched newest first until one
/// moved it onto `digest` (at most a few; the rest stays a listing).
async fn explain_one(
    ledger: &dyn crate::ledger::Ledger,
    image: &ImageRef,
    digest: &Digest,
) -> Result<(Vec<Entry>, Option<Stored>), Error> {
    const FETCHED: usize = 8;
    let mut entries = ledger.list(image, digest).await?;
    newest_entries_first(&mut entries);
    for entry in entries
        .iter()
        .filter(|e| e.kind == RecordKind::Outcome)
        .take(FETCHED)
    {
        let stored = ledger.get(image, &entry.id).await?;
        if let Why::Record(found) = why(image, digest, std::slice::from_ref(&stored)) {
            return Ok((entries, Some(*found)));
        }
    }
    Ok((entries, None))
}
