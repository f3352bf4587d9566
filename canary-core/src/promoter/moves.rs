//! The registry side of a promotion: retag every image, re-assert against
//! another writer, and compensate after a failed move. Every decision here
//! is taken by [`crate::compensation`]; this module only reads, writes and
//! records.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::compensation::{
    decide, reassert, Compensation, Decision, Fate, Observed, Read, Reassert, Truth,
};
use crate::error::{Error, ErrorKind};
use crate::machine::Event;
use crate::machine::Mode;
use crate::registry::Registry as _;
use crate::report::ImageStatus;
use crate::types::{Digest, ImageRef, Manifest, Reference, Release, Tag};

use super::story::MoveFailure;
use super::{per_image, Promoter, Run, REASSERT_ROUNDS};

impl Promoter {
    /// Retags every image (GET staging, PUT latest with the same bytes),
    /// then verifies all of them (HEAD latest and compare): the images
    /// together, `IMAGES_AT_ONCE` at a time, so a release of any size
    /// costs about the round trips of one image.
    ///
    /// A verify re-reads every promoted tag here, before its GET of staging,
    /// because a wait separated it from the precheck (invariant 8); a manual
    /// promotion or a rollback moves the manifests its precheck read.
    ///
    /// Verification happens after the last write so that it also catches
    /// another writer that moved an image in the meantime (there is no
    /// compare-and-swap in the distribution API). An image found moved by
    /// someone else is written again, up to [`REASSERT_ROUNDS`] times with a
    /// growing pause; two runs racing therefore converge on the release of
    /// the last one to finish a clean verification.
    pub(super) async fn move_images(&self, run: &mut Run, release: &Release) -> Event {
        let staging = Reference::Tag(release.staging_tag());
        let promoted = release.promoted_tag();
        let images: Vec<ImageRef> = run.report.images.iter().map(|e| e.image.clone()).collect();
        let expected: Vec<Option<Digest>> = run
            .report
            .images
            .iter()
            .map(|e| e.staging_digest.clone())
            .collect();
        let staged = std::mem::take(&mut run.staged);
        let reread = matches!(run.plan.mode, Mode::Verify { .. });
        let fetches = per_image(images.len(), |i| {
            let (image, staging, expected) = (&images[i], &staging, expected[i].as_ref());
            let staged = staged.get(i).cloned().flatten();
            async move {
                match staged {
                    Some(manifest) => Ok(manifest),
                    None => self.fetch(image, staging, expected).await,
                }
            }
        });
        // The re-read of `latest` comes first, then the staging GETs (each
        // phase for every image at once): a GET checks the bytes against
        // the announced digest, and a run whose `before` is suspect stops
        // before any manifest is fetched. One round trip more for a verify,
        // in exchange for one order of reads the fault matrix can hold to.
        if reread {
            let rereads = self.read_all(&images, &promoted).await;
            let mut befores = Vec::with_capacity(rereads.len());
            for (i, read) in rereads.into_iter().enumerate() {
                match read {
                    Ok(before) => befores.push(before),
                    Err(e) => return move_failed(run, i, &e),
                }
            }
            // A `latest` that changed during the wait is confirmed by its
            // bytes before it becomes what a failed move restores: a HEAD
            // alone could be a registry (or proxy) announcing a wrong
            // digest, and compensation would then take the lie for "put
            // back" (found by the fault matrix once the reads ran together).
            let changed: Vec<Option<Digest>> = run
                .report
                .images
                .iter()
                .zip(&befores)
                .map(|(entry, now)| now.clone().filter(|d| entry.before.as_ref() != Some(d)))
                .collect();
            let confirmations = per_image(images.len(), |i| {
                let (image, promoted, changed) = (&images[i], &promoted, changed[i].clone());
                async move {
                    match changed {
                        Some(d) => self.confirmed(image, promoted, &d).await,
                        None => true,
                    }
                }
            })
            .await;
            for (i, ok) in confirmations.into_iter().enumerate() {
                if !ok {
                    let e = Error::new(
                        ErrorKind::Integrity,
                        format!(
                            "{}:{promoted} changed during the wait to {}, but its manifest does not hash to that digest",
                            images[i],
                            changed[i].as_ref().map_or_else(String::new, ToString::to_string)
                        ),
                    )
                    .with_hint("the registry (or a proxy in front of it) announces wrong digests; nothing was moved");
                    return move_failed(run, i, &e);
                }
            }
            for (entry, before) in run.report.images.iter_mut().zip(befores) {
                entry.after.clone_from(&before);
                entry.before = before;
                entry.before_read = true;
            }
        }
        let manifests = fetches.await;
        let mut written = Vec::with_capacity(manifests.len());
        for (i, manifest) in manifests.into_iter().enumerate() {
            match manifest {
                Ok(m) => written.push(m),
                Err(e) => return move_failed(run, i, &e),
            }
        }
        if let Err(e) = self.announce(run).await {
            return move_failed(run, 0, &e);
        }
        if self.interrupt.is_raised() {
            // Nothing moved yet: stop, and say so.
            run.story.interrupted = true;
            let e = Error::new(
                ErrorKind::Other,
                format!("interrupted by a signal before moving {}", images[0]),
            );
            return move_failed(run, 0, &e);
        }
        // Once one write fails (or a signal arrives) no further write
        // starts; every write that started is compensated.
        // An image whose promoted tag already holds the release (as read
        // right before the move) is not written again; the read-back below
        // still verifies it.
        let already: Vec<bool> = run
            .report
            .images
            .iter()
            .zip(&written)
            .map(|(entry, m)| entry.before.as_ref() == Some(m.digest()))
            .collect();
        let stop = AtomicBool::new(false);
        let puts = per_image(images.len(), |i| {
            let (image, promoted, manifest, stop) = (&images[i], &promoted, &written[i], &stop);
            let already = already[i];
            async move {
                if already {
                    return Some(Ok(()));
                }
                if stop.load(Ordering::SeqCst) || self.interrupt.is_raised() {
                    return None;
                }
                let put = self.put(image, promoted, manifest).await;
                if put.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                Some(put)
            }
        })
        .await;
        let mut failure = None;
        for (i, put) in puts.into_iter().enumerate() {
            match put {
                Some(put) => {
                    if !already[i] {
                        run.written[i] = Some(written[i].digest().clone());
                    }
                    if let Err(e) = put {
                        failure.get_or_insert((i, e));
                    }
                }
                None => {
                    if failure.is_none() && self.interrupt.is_raised() {
                        run.story.interrupted = true;
                        let e = Error::new(
                            ErrorKind::Other,
                            format!("interrupted by a signal before moving {}", images[i]),
                        );
                        failure = Some((i, e));
                    }
                }
            }
        }
        if let Some((i, e)) = failure {
            return move_failed(run, i, &e);
        }
        for round in 0..=REASSERT_ROUNDS {
            // Every image, every round: a rewrite of one must not hide
            // another writer's move of another since the last round.
            let reads = per_image(images.len(), |i| self.read_back(&images[i], &promoted)).await;
            let mut moved_by_other = Vec::new();
            for (i, read) in reads.into_iter().enumerate() {
                match read {
                    Ok(Some(d)) if &d == written[i].digest() => {
                        let entry = &mut run.report.images[i];
                        entry.after = Some(d);
                        entry.status = if run.written[i].is_some() {
                            ImageStatus::Moved
                        } else {
                            ImageStatus::Unchanged
                        };
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
                    // Someone else moved these images since we wrote them:
                    // write them again, then read every image back.
                    self.clock.sleep(pause).await;
                    let pending: Vec<usize> = moved_by_other.into_iter().map(|(i, _)| i).collect();
                    let puts = per_image(pending.len(), |k| {
                        let i = pending[k];
                        self.put(&images[i], &promoted, &written[i])
                    })
                    .await;
                    for (k, put) in puts.into_iter().enumerate() {
                        let i = pending[k];
                        run.written[i] = Some(written[i].digest().clone());
                        if let Err(e) = put {
                            return move_failed(run, i, &e);
                        }
                    }
                }
            }
        }
        unreachable!("the last round verifies or gives up")
    }

    /// HEAD `tag` of every image, together.
    pub(super) async fn read_all(
        &self,
        images: &[ImageRef],
        tag: &Tag,
    ) -> Vec<Result<Option<Digest>, Error>> {
        per_image(images.len(), |i| async move {
            self.registry
                .head_manifest(&images[i], &Reference::Tag(tag.clone()))
                .await
                .map_err(|e| e.context(format!("reading {}:{tag}", images[i])))
        })
        .await
    }

    /// Compensates a failed move: every image this run wrote is read, and
    /// put back, left alone or reported as [`decide`] says, the images
    /// together. When one of them fails, a last read of every image says
    /// where each one is.
    pub(super) async fn restore_images(&self, run: &mut Run, release: &Release) -> Event {
        let promoted = release.promoted_tag();
        let images: Vec<ImageRef> = run.report.images.iter().map(|e| e.image.clone()).collect();
        let befores: Vec<Option<Digest>> =
            run.report.images.iter().map(|i| i.before.clone()).collect();
        let written = &run.written;
        let fates = per_image(images.len(), |i| {
            let (image, promoted, before) = (&images[i], &promoted, befores[i].clone());
            let ours = written[i].clone();
            async move {
                match ours {
                    Some(ours) => self.compensate(image, promoted, before, ours).await,
                    None => Fate::Untouched,
                }
            }
        })
        .await;
        for (entry, fate) in run.report.images.iter_mut().zip(&fates) {
            if !matches!(fate, Fate::Untouched) {
                fate.record(entry, &promoted);
            }
        }
        let truths = if Compensation::needs_truth(&fates) {
            let promoted_ref = Reference::Tag(promoted.clone());
            let reads = per_image(images.len(), |i| {
                self.registry.head_manifest(&images[i], &promoted_ref)
            })
            .await;
            let mut truths = Vec::with_capacity(reads.len());
            for (entry, read) in run.report.images.iter_mut().zip(reads) {
                let truth = match read {
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
        // One line per image the run wrote, once where it is is known
        // (after the last read when a restore failed).
        for (entry, fate) in run.report.images.iter().zip(&fates) {
            if !matches!(fate, Fate::Untouched) {
                self.observer.image(entry);
            }
        }
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
