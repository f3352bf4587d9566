//! The release ledger: what canary writes to the registry before and after
//! every move of the promoted tag, and the pure decisions made from it.
//!
//! Every run that moves `latest` announces its move first (an **intent**
//! [`Record`]) and records how it ended (an **outcome** record). An adapter
//! (`canary-ledger`) stores each record as a signed in-toto attestation
//! attached to an image digest in the registry itself; here are only the
//! data, the [`Ledger`] trait, an in-memory [`MemoryLedger`], and pure
//! functions over what was read:
//!
//! - [`interrupted`]: an intent without its outcome, attached to a digest
//!   an image's promoted tag points at now: a run died mid-move.
//! - [`repair_plan`]: what `canary repair` writes to settle it.
//! - [`why`]: the record that put the promoted tag where it is.
//! - [`previous_verified`]: the release `rollback --previous` goes to.
//!
//! Where a record is attached: an intent to each image's **target** digest
//! (so a half-moved image points at it), an outcome to the digest each
//! image's promoted tag points at when the run ends (so `latest` always
//! carries the record that explains it). Each record names the newest
//! record the run found when it started ([`Record::previous`]): a hash
//! chain that `canary history` walks back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::compensation::{decide, Decision, Observed, Read};
use crate::error::{Error, ErrorKind};
use crate::machine::Outcome;
use crate::report::Command;
use crate::types::{Digest, GitSha, ImageRef};

/// The version of the record's JSON shape.
pub const RECORD_SCHEMA: u32 = 1;

/// Which half of a run a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Written before the first write of the promoted tag.
    Intent,
    /// Written when the run ended.
    Outcome,
}

impl RecordKind {
    /// The kind's one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Outcome => "outcome",
        }
    }
}

/// What the run knew of an image's promoted tag before its move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "digest", rename_all = "snake_case")]
pub enum Before {
    /// The run never read it (it ended before).
    NotRead,
    /// It was read and did not exist.
    Absent,
    /// It was read and pointed at this digest.
    At(Digest),
}

impl Before {
    /// The digest, when it was read and existed.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Self::At(d) => Some(d),
            Self::NotRead | Self::Absent => None,
        }
    }

    /// `Some(before)` when it was read (`Some(None)`: read, absent).
    pub fn read(&self) -> Option<Option<&Digest>> {
        match self {
            Self::NotRead => None,
            Self::Absent => Some(None),
            Self::At(d) => Some(Some(d)),
        }
    }
}

/// One image of a recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordImage {
    /// The repository.
    pub image: ImageRef,
    /// The promoted tag before the move.
    pub before: Before,
    /// The digest the run moves the promoted tag to (the staging digest).
    pub target: Digest,
    /// Outcome records: where the promoted tag pointed when the run ended
    /// (`None`: unknown or absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Digest>,
    /// A digest another writer had put on the promoted tag during the
    /// move, which this run then overwrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwritten: Option<Digest>,
}

/// The checks behind a verified record, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The suite's name (a built-in name or a file name).
    pub suite: String,
    /// The suite's digest (sha256 of its TOML), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_digest: Option<Digest>,
    /// Tenants checked.
    pub tenants: usize,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed or had no verdict.
    pub failed: usize,
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_SCHEMA`].
    pub schema: u32,
    /// Intent or outcome.
    pub kind: RecordKind,
    /// The run (an intent and its outcome share it).
    pub run_id: String,
    /// The command that moved (or meant to move) the promoted tag.
    pub command: Command,
    /// The release.
    pub sha: GitSha,
    /// The promoted tag (`latest`).
    pub promoted_tag: String,
    /// When the record was made, ms since the Unix epoch.
    pub time_ms: u64,
    /// Every image of the release.
    pub images: Vec<RecordImage>,
    /// Outcome records: how the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Outcome records: why.
    #[serde(default)]
    pub reason: String,
    /// A manual promotion's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_reason: Option<String>,
    /// Whether every check passed on the canary fleet (a verified release).
    #[serde(default)]
    pub verified: bool,
    /// The checks, for a verify run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckSummary>,
    /// Who ran it (e.g. `GITHUB_ACTOR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Where (e.g. the GitHub Actions run URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    /// The newest record the run found when it started: the hash chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
    /// The metric analysis behind the outcome (outcome records of runs
    /// that read metrics): every verdict and its numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::AnalysisReport>,
}

impl Record {
    /// Whether this outcome record put the promoted tag on its release:
    /// a promotion, a rollback, a forward repair.
    pub fn moved_latest(&self) -> bool {
        self.kind == RecordKind::Outcome
            && matches!(
                self.outcome,
                Some(Outcome::Promoted | Outcome::RolledBack | Outcome::Repaired)
            )
            && self
                .images
                .iter()
                .all(|i| i.after.as_ref() == Some(&i.target))
    }

    /// Whether this is the outcome of a promotion that passed the gate.
    pub fn verified_promotion(&self) -> bool {
        self.kind == RecordKind::Outcome && self.outcome == Some(Outcome::Promoted) && self.verified
    }

    /// The target digest of `image`, if it is an image of this record.
    pub fn target_of(&self, image: &ImageRef) -> Option<&Digest> {
        self.images
            .iter()
            .find(|i| &i.image == image)
            .map(|i| &i.target)
    }
}

/// A record as stored: its id (the digest of what holds it in the
/// registry), the record, and whether its envelope carried a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The record's id: the digest of its artifact manifest.
    pub id: Digest,
    /// The record.
    pub record: Record,
    /// Whether the envelope was signed (checked with a key only by
    /// `verify-record`).
    pub signed: bool,
}

/// What a listing says of a record without fetching it: enough to pair
/// an intent with its outcome and to find the newest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's id.
    pub id: Digest,
    /// Intent or outcome.
    pub kind: RecordKind,
    /// The run.
    pub run_id: String,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
}

impl From<&Stored> for Entry {
    fn from(s: &Stored) -> Self {
        Self {
            id: s.id.clone(),
            kind: s.record.kind,
            run_id: s.record.run_id.clone(),
            time_ms: s.record.time_ms,
        }
    }
}

/// Where canary keeps its records.
///
/// # Contract
///
/// - `append` stores `record` attached to `subject` (a manifest digest of
///   `image`'s repository) and returns the record's id; reading it back by
///   `get`, or among `attached(image, subject)`, returns an equal record.
/// - `attached` lists every record attached to `subject`, in any order; a
///   subject with none is an empty list.
/// - Errors are classified by [`ErrorKind`] and never contain a credential.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Stores a record attached to `subject`; returns its id.
    async fn append(
        &self,
        image: &ImageRef,
        subject: &Digest,
        record: &Record,
    ) -> Result<Digest, Error>;

    /// Every record attached to `subject`.
    async fn attached(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Stored>, Error>;

    /// One record by id.
    async fn get(&self, image: &ImageRef, id: &Digest) -> Result<Stored, Error>;

    /// What is attached to `subject`, without fetching the records (a
    /// registry's referrers listing carries this). Every move's precheck
    /// reads it, so it must not grow with the records' size.
    async fn list(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Entry>, Error> {
        Ok(self
            .attached(image, subject)
            .await?
            .iter()
            .map(Entry::from)
            .collect())
    }
}

#[async_trait]
impl<T: Ledger + ?Sized> Ledger for std::sync::Arc<T> {
    async fn append(
        &self,
        image: &ImageRef,
        subject: &Digest,
        record: &Record,
    ) -> Result<Digest, Error> {
        (**self).append(image, subject, record).await
    }
    async fn attached(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Stored>, Error> {
        (**self).attached(image, subject).await
    }
    async fn get(&self, image: &ImageRef, id: &Digest) -> Result<Stored, Error> {
        (**self).get(image, id).await
    }
    async fn list(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Entry>, Error> {
        (**self).list(image, subject).await
    }
}

/// An in-memory [`Ledger`], for tests and embedders.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    records: HashMap<(String, Digest), Record>,
    attached: BTreeMap<(String, Digest), Vec<Digest>>,
    appends: usize,
    fail_appends: bool,
}

impl MemoryInner {
    fn stored(&self, repo: &str, id: &Digest) -> Option<Stored> {
        self.records
            .get(&(repo.to_string(), id.clone()))
            .map(|r| Stored {
                id: id.clone(),
                record: r.clone(),
                signed: false,
            })
    }
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every later `append` fails (a registry refusing the write).
    pub fn fail_appends(&self, fail: bool) {
        self.lock().fail_appends = fail;
    }

    /// How many records were appended.
    pub fn appends(&self) -> usize {
        self.lock().appends
    }

    /// Every record stored, in no particular order.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn append(
        &self,
        image: &ImageRef,
        subject: &Digest,
        record: &Record,
    ) -> Result<Digest, Error> {
        let mut inner = self.lock();
        if inner.fail_appends {
            return Err(Error::new(
                ErrorKind::Transient,
                format!("{image}: the ledger refused the record (injected)"),
            ));
        }
        inner.appends += 1;
        let repo = image.to_string();
        // Ids must differ per record and per repository, as an artifact
        // manifest's digest would.
        let id = Digest::sha256_of(
            format!(
                "{repo}|{subject}|{}|{}|{}",
                record.run_id,
                record.kind.as_str(),
                inner.appends
            )
            .as_bytes(),
        );
        inner
            .records
            .insert((repo.clone(), id.clone()), record.clone());
        inner
            .attached
            .entry((repo, subject.clone()))
            .or_default()
            .push(id.clone());
        Ok(id)
    }

    async fn attached(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Stored>, Error> {
        let inner = self.lock();
        let repo = image.to_string();
        Ok(inner
            .attached
            .get(&(repo.clone(), subject.clone()))
            .into_iter()
            .flatten()
            .filter_map(|id| inner.stored(&repo, id))
            .collect())
    }

    async fn get(&self, image: &ImageRef, id: &Digest) -> Result<Stored, Error> {
        self.lock().stored(&image.to_string(), id).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("{image}: no ledger record {id}"),
            )
        })
    }
}

/// Records newest first (by time, then outcome after intent, then id).
pub fn newest_first(records: &mut [Stored]) {
    records.sort_by(|a, b| {
        b.record
            .time_ms
            .cmp(&a.record.time_ms)
            .then_with(|| {
                (b.record.kind == RecordKind::Outcome).cmp(&(a.record.kind == RecordKind::Outcome))
            })
            .then_with(|| b.id.to_string().cmp(&a.id.to_string()))
    });
}

/// Entries newest first (the order of [`newest_first`]).
pub fn newest_entries_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.time_ms
            .cmp(&a.time_ms)
            .then_with(|| (b.kind == RecordKind::Outcome).cmp(&(a.kind == RecordKind::Outcome)))
            .then_with(|| b.id.to_string().cmp(&a.id.to_string()))
    });
}

/// [`interrupted`] from listings: per image, the entries attached to its
/// current digest. Returns the image's index and the newest unpaired intent,
/// the one record worth fetching.
pub fn interrupted_entry(listed: &[Vec<Entry>]) -> Option<(usize, Entry)> {
    let ended: std::collections::HashSet<&str> = listed
        .iter()
        .flatten()
        .filter(|e| e.kind == RecordKind::Outcome)
        .map(|e| e.run_id.as_str())
        .collect();
    let mut open: Vec<(usize, Entry)> = listed
        .iter()
        .enumerate()
        .flat_map(|(i, entries)| {
            // A newer outcome on the same digest is a later run that found
            // (or put) the tag there and recorded its end: an older intent
            // there is superseded, not pending.
            let newest_outcome = entries
                .iter()
                .filter(|e| e.kind == RecordKind::Outcome)
                .map(|e| e.time_ms)
                .max();
            entries
                .iter()
                .filter(move |e| {
                    e.kind == RecordKind::Intent && newest_outcome.is_none_or(|t| e.time_ms > t)
                })
                .map(move |e| (i, e.clone()))
        })
        .filter(|(_, e)| !ended.contains(e.run_id.as_str()))
        .collect();
    open.sort_by(|(_, a), (_, b)| {
        b.time_ms
            .cmp(&a.time_ms)
            .then_with(|| b.id.to_string().cmp(&a.id.to_string()))
    });
    open.into_iter().next()
}

/// A run that announced a move and never recorded its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// The intent record.
    pub intent: Stored,
}

/// Finds an interrupted run: an intent attached to the digest some image's
/// promoted tag points at now, with no outcome of the same run among the
/// records attached there, and no newer outcome on that digest (a later run
/// that found the tag there and recorded its end supersedes it: a run
/// killed after its intent and before its first write must not make a
/// later, good promotion of the same build look interrupted). `attached`
/// holds, per image, the records attached to its current digest. The
/// newest such intent wins. Records are compared by their `time_ms`, so
/// runners' clocks are assumed to agree to within the time between runs.
pub fn interrupted(attached: &[Vec<Stored>]) -> Option<Interruption> {
    let listed: Vec<Vec<Entry>> = attached
        .iter()
        .map(|records| records.iter().map(Entry::from).collect())
        .collect();
    let (i, open) = interrupted_entry(&listed)?;
    attached[i]
        .iter()
        .find(|s| s.id == open.id)
        .map(|s| Interruption { intent: s.clone() })
}

/// Which way `canary repair` settles an interrupted run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RepairDirection {
    /// Put every image back where the intent says it was (the default).
    #[default]
    Undo,
    /// Finish the move: every image to its target. Only for an intent of
    /// a verified or manual promotion.
    Forward,
}

/// One image's part of a repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairStep {
    /// Already where the repair wants it.
    Settled,
    /// Write this digest to the promoted tag, then verify it.
    Write(Digest),
    /// Another writer's digest: left as it is.
    LeaveForeign(Digest),
    /// The promoted tag did not exist before; it cannot be removed.
    CannotUndo(Digest),
    /// The tag could not be read, or the intent never read its `before`.
    Unknown,
}

/// Why a repair cannot go the way asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairRefusal {
    /// `--forward` on an intent that was not a verified or manual promotion
    /// (a rollback's intent, or a verify whose checks had not passed).
    NotForwardable(Command),
}

/// What a repair writes, per image of the intent, given what each image's
/// promoted tag holds `now`. Pure: the promoter performs the writes.
///
/// Undo is compensation ([`decide`]) with the intent's `before` as before
/// and its target as ours; a foreign digest (another writer's) is never
/// overwritten (invariant 8). Forward writes the target over the intent's
/// `before` only, never over a foreign digest.
pub fn repair_plan(
    intent: &Record,
    now: &[Read],
    direction: RepairDirection,
) -> Result<Vec<RepairStep>, RepairRefusal> {
    if direction == RepairDirection::Forward
        && !matches!(intent.command, Command::Promote)
        && !(intent.command == Command::Verify && intent.verified)
    {
        return Err(RepairRefusal::NotForwardable(intent.command));
    }
    Ok(intent
        .images
        .iter()
        .zip(now)
        .map(|(image, now)| match direction {
            RepairDirection::Undo => {
                let Some(before) = image.before.read() else {
                    return RepairStep::Unknown;
                };
                let observed = Observed {
                    before: before.cloned(),
                    ours: image.target.clone(),
                    now: now.clone(),
                    // What the registry reads back now is taken as it is: a
                    // repair runs long after the move, so a digest that is
                    // neither ours nor before is another writer's.
                    confirmed: Some(true),
                };
                match decide(&observed) {
                    Decision::AlreadyBack => RepairStep::Settled,
                    Decision::Restore(d) => RepairStep::Write(d),
                    Decision::LeaveForeign(d) | Decision::Confirm(d) => RepairStep::LeaveForeign(d),
                    Decision::CannotRestore(d) => RepairStep::CannotUndo(d),
                    Decision::Unknown => RepairStep::Unknown,
                }
            }
            RepairDirection::Forward => match now {
                Read::Digest(d) if *d == image.target => RepairStep::Settled,
                Read::Unreadable => RepairStep::Unknown,
                r if r.is(image.before.digest()) && image.before.read().is_some() => {
                    RepairStep::Write(image.target.clone())
                }
                Read::Digest(d) => RepairStep::LeaveForeign(d.clone()),
                Read::NotFound => RepairStep::Unknown,
            },
        })
        .collect())
}

/// Why the promoted tag of an image is where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// This outcome record put it there.
    Record(Box<Stored>),
    /// No record explains it: moved outside canary (or before the ledger).
    Outside,
}

/// The newest outcome record among those attached to the image's current
/// digest that moved the promoted tag onto it.
pub fn why(image: &ImageRef, current: &Digest, attached: &[Stored]) -> Why {
    let mut moved: Vec<Stored> = attached
        .iter()
        .filter(|s| s.record.moved_latest() && s.record.target_of(image) == Some(current))
        .cloned()
        .collect();
    newest_first(&mut moved);
    moved
        .into_iter()
        .next()
        .map_or(Why::Outside, |s| Why::Record(Box::new(s)))
}

/// In a chain newest first, the last verified promotion before the record
/// that put the current release on the promoted tag, for a different
/// release: where `rollback --previous` goes.
pub fn previous_verified<'a>(chain: &'a [Stored], current: &GitSha) -> Option<&'a Stored> {
    chain
        .iter()
        .find(|s| s.record.verified_promotion() && &s.record.sha != current)
}

#[cfg(test)]
mod tests;
