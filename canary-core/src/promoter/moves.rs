//! The registry side of a promotion: retag every image, re-assert against
//! another writer, and compensate after a failed move. Every decision here
//! is taken by [`crate::compensation`]; this module only reads, writes and
//! records.

use crate::compensation::{
    decide, reassert, Compensation, Decision, Fate, Observed, Read, Reassert, Truth,
};
use crate::error::{Error, ErrorKind};
use crate::machine::Event;
use crate::registry::Registry as _;
use crate::report::ImageStatus;
use crate::types::{Digest, ImageRef, Manifest, Reference, Release, Tag};

use super::story::MoveFailure;
use super::{Promoter, Run, REASSERT_ROUNDS};

impl Promoter {
    /// Retags every image (GET staging, PUT latest with the same bytes),
    /// then verifies all of them (HEAD latest and compare): three requests
    /// per image. Stops at the first failure.
    ///
    /// Verification happens after the last write so that it also catches
    /// another writer that moved an earlier image in the meantime (there is
    /// no compare-and-swap in the distribution API). An image found moved
    /// by someone else is written again, up to [`REASSERT_ROUNDS`] times
    /// with a growing pause; two runs racing therefore converge on the
    /// release of the last one to finish a clean verification.
    pub(super) async fn move_images(&self, run: &mut Run, release: &Release) -> Event {
        let staging = release.staging_tag();
        let promoted = release.promoted_tag();
        if let Err(e) = self.announce(run).await {
            return move_failed(run, 0, &e);
        }
        let mut written = Vec::with_capacity(run.report.images.len());
        for i in 0..run.report.images.len() {
            if self.interrupt.is_raised() {
                // Stop moving; what moved is put back (compensation).
                run.story.interrupted = true;
                let e = Error::new(
                    ErrorKind::Other,
                    format!(
                        "interrupted by a signal before moving {}",
                        run.report.images[i].image
                    ),
                );
                return move_failed(run, i, &e);
            }
            let image = run.report.images[i].image.clone();
            let expected = run.report.images[i].staging_digest.clone();
            let result = match self
                .fetch(&image, &Reference::Tag(staging.clone()), expected.as_ref())
                .await
            {
                Ok(manifest) => {
                    run.written[i] = Some(manifest.digest().clone());
                    self.put(&image, &promoted, &manifest)
                        .await
                        .map(|()| manifest)
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(manifest) => written.push(manifest),
                Err(e) => return move_failed(run, i, &e),
            }
        }
        for round in 0..=REASSERT_ROUNDS {
            let mut moved_by_other = Vec::new();
            for (i, manifest) in written.iter().enumerate() {
                let image = run.report.images[i].image.clone();
                match self.read_back(&image, &promoted).await {
                    Ok(Some(d)) if &d == manifest.digest() => {
                        let entry = &mut run.report.images[i];
                        entry.after = Some(d);
                        entry.status = ImageStatus::Moved;
                    }
                    Ok(now) => {
                        // Another writer's digest this run is about to
                        // overwrite: the report and the record say so.
                        if let Some(foreign) = &now {
                            run.report.images[i]
                                .overwritten
                                .get_or_insert_with(|| foreign.clone());
                        }
                        moved_by_other.push((i, now));
                    }
                    Err(e) => return move_failed(run, i, &e),
                }
            }
            match reassert(round, moved_by_other.len(), written[0].digest()) {
                Reassert::Verified => {
                    for entry in &run.report.images {
                        self.observer.image(entry);
                    }
                    return Event::MovesVerified;
                }
                Reassert::GiveUp => {
                    let (i, now) = &moved_by_other[0];
                    let e = Error::new(
                        ErrorKind::Integrity,
                        format!(
                            "{}:{promoted} reads back as {} after writing {} ({} times)",
                            run.report.images[*i].image,
                            now.as_ref().map_or_else(|| "missing".to_string(), ToString::to_string),
                            written[*i].digest(),
                            REASSERT_ROUNDS + 1
                        ),
                    )
                    .with_hint("another writer keeps moving the tag: serialise promotions (a workflow `concurrency:` group)");
                    return move_failed(run, *i, &e);
                }
                Reassert::Rewrite(pause) => {
                    // Someone else moved these images since we wrote them.
                    self.clock.sleep(pause).await;
                    for (i, _) in moved_by_other {
                        let image = run.report.images[i].image.clone();
                        if let Err(e) = self.put(&image, &promoted, &written[i]).await {
                            return move_failed(run, i, &e);
                        }
                    }
                }
            }
        }
        unreachable!("the last round verifies or gives up")
    }

    /// Compensates a failed move: every image this run wrote is read, and
    /// put back, left alone or reported as [`decide`] says. When one of
    /// them fails, a last read of every image says where each one is.
    pub(super) async fn restore_images(&self, run: &mut Run, release: &Release) -> Event {
        let promoted = release.promoted_tag();
        let mut fates = Vec::with_capacity(run.report.images.len());
        for i in 0..run.report.images.len() {
            let Some(ours) = run.written[i].clone() else {
                fates.push(Fate::Untouched);
                continue;
            };
            let entry = &run.report.images[i];
            let fate = self
                .compensate(&entry.image, &promoted, entry.before.clone(), ours)
                .await;
            let entry = &mut run.report.images[i];
            fate.record(entry, &promoted);
            if !fate.failed() {
                self.observer.image(entry);
            }
            fates.push(fate);
        }
        let truths = if Compensation::needs_truth(&fates) {
            let mut truths = Vec::with_capacity(run.report.images.len());
            for entry in &mut run.report.images {
                let truth = match self
                    .registry
                    .head_manifest(&entry.image, &Reference::Tag(promoted.clone()))
                    .await
                {
                    Ok(now) => Truth::At(now),
                    Err(e) => Truth::Unknown(e.chain()),
                };
                truth.record(entry);
                truths.push(truth);
            }
            Some(truths)
        } else {
            None
        };
        let befores: Vec<Option<Digest>> =
            run.report.images.iter().map(|i| i.before.clone()).collect();
        let compensation = Compensation::new(fates, truths, &befores);
        let event = compensation.settlement.event();
        run.story.compensation = Some(compensation);
        event
    }

    /// Reads one image's promoted tag, and performs what [`decide`] says.
    async fn compensate(
        &self,
        image: &ImageRef,
        promoted: &Tag,
        before: Option<Digest>,
        ours: Digest,
    ) -> Fate {
        // Read first: a write that never landed (a refused PUT) needs no
        // undo, and a tag another writer moved since the precheck is
        // theirs, not ours to put back.
        let answer = self.read_back(image, promoted).await;
        let mut observed = Observed::new(before, ours, Read::of(&answer));
        let mut decision = decide(&observed);
        if let Decision::Confirm(foreign) = &decision {
            observed.confirmed = Some(self.confirmed(image, promoted, foreign).await);
            decision = decide(&observed);
        }
        match decision {
            Decision::AlreadyBack => Fate::AlreadyBack,
            Decision::LeaveForeign(d) => Fate::LeftForeign(d),
            Decision::Restore(d) => match self
                .retag(image, &Reference::Digest(d.clone()), Some(&d), promoted)
                .await
            {
                Ok(now) => Fate::Restored(now),
                Err(e) => Fate::RestoreFailed(e.chain()),
            },
            Decision::CannotRestore(now) => Fate::CannotRestore(now),
            Decision::Unknown => Fate::Unknown(answer.err().map(|e| e.chain()).unwrap_or_default()),
            // `decide` never asks twice: the answer is in `observed`.
            Decision::Confirm(foreign) => Fate::Unknown(format!(
                "{image}:{promoted} holds {foreign}, which could not be confirmed"
            )),
        }
    }

    /// GET `from`, checked against `expected`.
    async fn fetch(
        &self,
        image: &ImageRef,
        from: &Reference,
        expected: Option<&Digest>,
    ) -> Result<Manifest, Error> {
        let manifest = self
            .registry
            .get_manifest(image, from)
            .await
            .map_err(|e| e.context(format!("reading {image}:{from}")))?;
        if let Some(expected) = expected {
            if manifest.digest() != expected {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "{image}:{from} is now {} but {} was checked",
                        manifest.digest(),
                        expected
                    ),
                )
                .with_hint("someone moved the staging tag during the run; run again"));
            }
        }
        Ok(manifest)
    }

    /// PUT the manifest's exact bytes under `to`.
    async fn put(&self, image: &ImageRef, to: &Tag, manifest: &Manifest) -> Result<(), Error> {
        self.registry
            .put_manifest(image, to, manifest)
            .await
            .map(|_| ())
            .map_err(|e| e.context(format!("writing {image}:{to}")))
    }

    /// HEAD `to`.
    async fn read_back(&self, image: &ImageRef, to: &Tag) -> Result<Option<Digest>, Error> {
        self.registry
            .head_manifest(image, &Reference::Tag(to.clone()))
            .await
            .map_err(|e| e.context(format!("verifying {image}:{to}")))
    }

    /// Whether `tag` really holds `digest`: a GET whose body hashes to it. A
    /// HEAD alone could be a registry (or proxy) announcing a wrong digest,
    /// and compensation must not mistake that for another writer's tag.
    async fn confirmed(&self, image: &ImageRef, tag: &Tag, digest: &Digest) -> bool {
        self.registry
            .get_manifest(image, &Reference::Tag(tag.clone()))
            .await
            .is_ok_and(|m| m.digest() == digest && digest.matches(m.bytes()))
    }

    /// GET `from` (checked against `expected`), PUT under `to` with the same
    /// bytes and media type, HEAD `to` and compare: three requests.
    pub(super) async fn retag(
        &self,
        image: &ImageRef,
        from: &Reference,
        expected: Option<&Digest>,
        to: &Tag,
    ) -> Result<Digest, Error> {
        let manifest = self.fetch(image, from, expected).await?;
        self.put(image, to, &manifest).await?;
        match self.read_back(image, to).await? {
            Some(d) if &d == manifest.digest() => Ok(d),
            other => Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{image}:{to} reads back as {} after writing {}",
                    other.map_or_else(|| "missing".to_string(), |d| d.to_string()),
                    manifest.digest()
                ),
            )
            .with_hint("another writer may have moved the tag at the same time")),
        }
    }
}

/// Records a failed move of image `i` and asks for compensation.
fn move_failed(run: &mut Run, i: usize, e: &Error) -> Event {
    let message = e.chain();
    let entry = &mut run.report.images[i];
    entry.error = Some(message.clone());
    run.story.move_failure = Some(MoveFailure {
        image: entry.image.clone(),
        message,
    });
    run.report.error = Some(e.into());
    Event::MoveFailed
}
