//! Compensation, decided by pure functions: what to do with each image's
//! promoted tag when a release fails part-way through its moves, and when
//! another writer moves a tag this run just wrote.
//!
//! The [`crate::Promoter`] only reads and writes; it feeds what it read to
//! these functions and performs what they decide, the way it feeds events to
//! [`crate::machine::transition`]. Nothing here does I/O, so every decision
//! is tested on the function alone.
//!
//! Per image the inputs are:
//!
//! - **before**: the promoted tag's digest read at precheck (`None`: the tag
//!   did not exist);
//! - **ours**: the digest this run wrote;
//! - **now**: what a fresh read of the tag says ([`Read`]: a digest, not
//!   found, or unreadable);
//! - **foreign**: a `now` digest that is neither `before` nor `ours`. It is
//!   another writer's only once a GET of the tag confirms it: a registry (or
//!   a proxy) announcing a wrong digest in a HEAD must not be mistaken for
//!   another writer.
//!
//! | now | before | decision |
//! |---|---|---|
//! | equals `before` (or not found, with no `before`) | any | [`Decision::AlreadyBack`] |
//! | foreign, not yet confirmed | any | [`Decision::Confirm`] |
//! | foreign, confirmed | any | [`Decision::LeaveForeign`] |
//! | `ours`, not found, unreadable, or foreign but not confirmed | a digest | [`Decision::Restore`] |
//! | `ours`, or foreign but not confirmed | none | [`Decision::CannotRestore`] (tag deletion is not portable) |
//! | unreadable | none | [`Decision::Unknown`] |
//!
//! Each image then has a [`Fate`]; when one fate is a failure, a last read of
//! every image ([`Truth`]) says where each one is, and [`Compensation`]
//! settles the run and words its reason once, at the end.

use std::time::Duration;

use crate::machine::Event;
use crate::report::{ImageReport, ImageStatus};
use crate::types::{Digest, ImageRef, Tag};

/// How many times the promoter re-writes an image another writer moved
/// while it was promoting, before giving up (and restoring).
pub const REASSERT_ROUNDS: u32 = 4;

/// What a fresh read of an image's promoted tag said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The tag points at this digest.
    Digest(Digest),
    /// The tag does not exist.
    NotFound,
    /// The read failed; nothing is known.
    Unreadable,
}

impl Read {
    /// The read of a HEAD's answer.
    pub fn of<E>(answer: &Result<Option<Digest>, E>) -> Self {
        match answer {
            Ok(Some(d)) => Self::Digest(d.clone()),
            Ok(None) => Self::NotFound,
            Err(_) => Self::Unreadable,
        }
    }

    /// The digest read, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Self::Digest(d) => Some(d),
            Self::NotFound | Self::Unreadable => None,
        }
    }

    /// Whether the read says the tag is exactly as `before` says it was (an
    /// absent tag included); an unreadable tag is never known to be.
    pub fn is(&self, before: Option<&Digest>) -> bool {
        match self {
            Self::Digest(d) => before == Some(d),
            Self::NotFound => before.is_none(),
            Self::Unreadable => false,
        }
    }
}

/// What was read about one image this run wrote: the input of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The promoted tag before the run (`None`: it did not exist).
    pub before: Option<Digest>,
    /// The digest this run wrote.
    pub ours: Digest,
    /// What a fresh read says now.
    pub now: Read,
    /// Whether a GET of the tag confirmed the foreign digest `now` holds:
    /// `None` until [`Decision::Confirm`] asks for it.
    pub confirmed: Option<bool>,
}

impl Observed {
    /// An observation not yet confirmed.
    pub fn new(before: Option<Digest>, ours: Digest, now: Read) -> Self {
        Self {
            before,
            ours,
            now,
            confirmed: None,
        }
    }

    /// The digest `now` holds when it is neither `before` nor `ours`.
    pub fn foreign(&self) -> Option<&Digest> {
        self.now
            .digest()
            .filter(|d| **d != self.ours && Some(*d) != self.before.as_ref())
    }
}

/// What to do with the promoted tag of one image this run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The tag holds a foreign digest: GET the tag and check its body hashes
    /// to this digest, then decide again with [`Observed::confirmed`] set.
    Confirm(Digest),
    /// The tag is where it was before the run (a write that never landed,
    /// or one already undone): nothing to write.
    AlreadyBack,
    /// Another writer moved the tag to this digest: theirs, left as it is.
    LeaveForeign(Digest),
    /// Put this digest (the one read before the run) back, and verify it.
    Restore(Digest),
    /// The tag did not exist before the run and now points to this digest:
    /// it cannot be put back, since canary does not delete tags.
    CannotRestore(Digest),
    /// The tag cannot be read and there is no previous digest to write.
    Unknown,
}

/// The compensation decision for one image.
pub fn decide(o: &Observed) -> Decision {
    if o.now.is(o.before.as_ref()) {
        return Decision::AlreadyBack;
    }
    if let Some(d) = o.foreign() {
        match o.confirmed {
            None => return Decision::Confirm(d.clone()),
            Some(true) => return Decision::LeaveForeign(d.clone()),
            // A digest the tag's body does not hash to is a wrong answer,
            // not another writer: the tag is treated as ours.
            Some(false) => {}
        }
    }
    match (&o.before, &o.now) {
        (Some(before), _) => Decision::Restore(before.clone()),
        (None, Read::Digest(now)) => Decision::CannotRestore(now.clone()),
        // Equal to `before` and answered above; kept for totality.
        (None, Read::NotFound) => Decision::AlreadyBack,
        (None, Read::Unreadable) => Decision::Unknown,
    }
}

/// What became of one image when compensation ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// This run never wrote the image: nothing to undo.
    Untouched,
    /// The tag reads as it was before the run: nothing written.
    AlreadyBack,
    /// Another writer moved the tag to this digest: left as it is.
    LeftForeign(Digest),
    /// Put back; this digest read back after the write.
    Restored(Digest),
    /// Putting it back failed: the error, with its cause chain.
    RestoreFailed(String),
    /// The tag did not exist before and now points to this digest.
    CannotRestore(Digest),
    /// The tag could not be read and had no previous digest: the read's
    /// error, with its cause chain.
    Unknown(String),
}

impl Fate {
    /// Whether this image may not be where it was before the run.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            Self::RestoreFailed(_) | Self::CannotRestore(_) | Self::Unknown(_)
        )
    }

    /// Records the fate in the image's report entry; a failure leaves the
    /// entry as it is (the last read of every image, [`Truth`], settles it).
    pub fn record(&self, entry: &mut ImageReport, promoted: &Tag) {
        match self {
            Self::Untouched
            | Self::RestoreFailed(_)
            | Self::CannotRestore(_)
            | Self::Unknown(_) => {}
            Self::AlreadyBack => {
                entry.after.clone_from(&entry.before);
                entry.status = ImageStatus::Unchanged;
            }
            Self::LeftForeign(d) => {
                entry.error = Some(format!(
                    "{}:{promoted} was moved to {d} by another writer; left as it is",
                    entry.image
                ));
                entry.after = Some(d.clone());
                entry.status = ImageStatus::Unchanged;
            }
            Self::Restored(d) => {
                entry.after = Some(d.clone());
                entry.status = ImageStatus::Restored;
            }
        }
    }

    /// Why restoring `image` failed, in one clause of the run's reason.
    pub fn failure(&self, image: &ImageRef, promoted: &Tag) -> Option<String> {
        let why = match self {
            Self::RestoreFailed(chain) | Self::Unknown(chain) => chain.clone(),
            Self::CannotRestore(now) => format!(
                "{image}:{promoted} did not exist before and now points to {now}; canary does not delete tags"
            ),
            Self::Untouched | Self::AlreadyBack | Self::LeftForeign(_) | Self::Restored(_) => {
                return None
            }
        };
        Some(format!("restoring {image} failed: {why}"))
    }
}

/// Where a last read, taken after a restore failed, found an image's tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// The tag holds this digest (`None`: it does not exist).
    At(Option<Digest>),
    /// The read failed: the error, with its cause chain.
    Unknown(String),
}

impl Truth {
    /// Says truthfully in the image's report entry where the image is.
    pub fn record(&self, entry: &mut ImageReport) {
        match self {
            Self::At(now) => {
                entry.status = settle(entry.status, entry.before.as_ref(), now.as_ref());
                entry.after.clone_from(now);
            }
            Self::Unknown(chain) => {
                entry.status = ImageStatus::Mixed;
                entry.after = None;
                entry.error = Some(format!("state unknown: {chain}"));
            }
        }
    }

    /// Whether the tag is known to be where it was before the run.
    pub fn is_back(&self, before: Option<&Digest>) -> bool {
        matches!(self, Self::At(now) if now.as_ref() == before)
    }
}

/// The status of an image whose tag reads `now` after a failed restore.
pub fn settle(status: ImageStatus, before: Option<&Digest>, now: Option<&Digest>) -> ImageStatus {
    if now != before {
        ImageStatus::Mixed
    } else if status == ImageStatus::Moved {
        ImageStatus::Restored
    } else {
        status
    }
}

/// How compensation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Every image this run wrote is back (or another writer's), verified.
    PutBack,
    /// Some restore failed, but a last read finds every image where it was.
    ReadsBack,
    /// Some image is not where it was, or where it is is unknown.
    Mixed,
}

impl Settlement {
    /// The event for the state machine.
    pub fn event(self) -> Event {
        match self {
            Self::PutBack | Self::ReadsBack => Event::RestoreVerified,
            Self::Mixed => Event::RestoreFailed,
        }
    }
}

/// Everything compensation found, per image in release order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compensation {
    /// What became of each image.
    pub fates: Vec<Fate>,
    /// The last read of every image, taken only when some fate failed.
    pub truths: Option<Vec<Truth>>,
    /// How it ended.
    pub settlement: Settlement,
}

impl Compensation {
    /// Settles compensation: `befores` are the digests read before the run.
    pub fn new(fates: Vec<Fate>, truths: Option<Vec<Truth>>, befores: &[Option<Digest>]) -> Self {
        let settlement = if !Self::needs_truth(&fates) {
            Settlement::PutBack
        } else if truths.as_ref().is_some_and(|t| {
            t.len() == befores.len() && t.iter().zip(befores).all(|(t, b)| t.is_back(b.as_ref()))
        }) {
            Settlement::ReadsBack
        } else {
            Settlement::Mixed
        };
        Self {
            fates,
            truths,
            settlement,
        }
    }

    /// Whether a last read of every image is needed to settle.
    pub fn needs_truth(fates: &[Fate]) -> bool {
        fates.iter().any(Fate::failed)
    }

    /// What compensation adds to the reason of the run: `; ` and clauses.
    pub fn reason(&self, images: &[ImageRef], promoted: &Tag) -> String {
        let failures: Vec<String> = self
            .fates
            .iter()
            .zip(images)
            .filter_map(|(fate, image)| fate.failure(image, promoted))
            .collect();
        match self.settlement {
            Settlement::PutBack => "; every image touched was put back and verified".to_string(),
            Settlement::ReadsBack => format!(
                "; {}; every image reads back on its previous digest",
                failures.join("; ")
            ),
            Settlement::Mixed => format!("; {}", failures.join("; ")),
        }
    }
}

/// What to do after a round of reading back every image written, in which
/// `moved` of them were found moved by another writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassert {
    /// Every image holds what this run wrote.
    Verified,
    /// Pause this long, then write the moved images again.
    Rewrite(Duration),
    /// Rewritten [`REASSERT_ROUNDS`] times and still moved: give up (the
    /// move fails and compensation runs).
    GiveUp,
}

/// The re-assert decision after verification round `round` (from 0).
/// `first` is the digest written first: the pause is staggered by it so
/// two runs racing do not stay in step, and grows with each round.
pub fn reassert(round: u32, moved: usize, first: &Digest) -> Reassert {
    if moved == 0 {
        Reassert::Verified
    } else if round >= REASSERT_ROUNDS {
        Reassert::GiveUp
    } else {
        let jitter = u64::from(first.hex().as_bytes()[0] % 16) * 10;
        Reassert::Rewrite(Duration::from_millis((100 << round) + jitter))
    }
}

#[cfg(test)]
mod tests;
