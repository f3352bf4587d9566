//! A verify sharded across CI jobs: which tenants a shard owns, what its
//! partial report carries, and how `decide` merges the partial reports into
//! the evidence one unsharded run would have gathered.
//!
//! Ownership is by position in the fleet: shard `K/N` owns the tenants at
//! positions `K-1`, `K-1+N`, `K-1+2N`, … (round-robin, so every shard gets
//! an even share whatever the fleet's order). Every job reads the same
//! fleet; each partial report carries a digest of the fleet's URLs, and
//! `decide` refuses reports made from another fleet, another sha or another
//! suite, a missing or duplicated shard, and a shard reporting a tenant it
//! does not own or leaving out one it does.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::report::{PromotionReport, TenantReport};
use crate::suite::CheckResult;
use crate::types::{Digest, Release, Tenant};

/// Most shards a fleet can be cut into.
pub const MAX_SHARDS: u32 = 1000;

/// One shard of `count`: `index` is 1-based (`--shard 2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Parses `K/N`, `1 ≤ K ≤ N ≤` [`MAX_SHARDS`].
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("shard `{}`", input.escape_debug()),
                problem,
                "write K/N: this job's number K from 1 to N, and the number of shards N (e.g. 2/4; in a matrix, ${{ matrix.shard }}/4)",
            )
        };
        let (k, n) = input
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("is not K/N"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| bad("has no number before `/`"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| bad("has no number after `/`"))?;
        if n == 0 || n > MAX_SHARDS {
            return Err(bad(&format!("has N outside 1..={MAX_SHARDS}")));
        }
        if k == 0 || k > n {
            return Err(bad(&format!("has K outside 1..={n}")));
        }
        Ok(Self { index: k, count: n })
    }

    /// This shard's number, from 1.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the tenant at `position` (from 0, in fleet order) is this
    /// shard's.
    pub fn owns(self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }

    /// The items this shard owns, in order.
    pub fn select<T: Clone>(self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter(|(i, _)| self.owns(*i))
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard's partial report says of the run it belongs to; `decide`
/// checks every field against the other shards and its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReport {
    /// Which shard.
    pub shard: Shard,
    /// How many tenants the whole fleet has.
    pub fleet_size: usize,
    /// [`fleet_digest`] of the whole fleet.
    pub fleet_digest: Digest,
    /// The smoke suite's digest, when known.
    pub suite_digest: Option<Digest>,
}

/// The digest of a fleet: its tenants' URLs in order (never a token).
pub fn fleet_digest(tenants: &[Tenant]) -> Digest {
    let mut text = String::new();
    for t in tenants {
        text.push_str(t.url());
        text.push('\n');
    }
    Digest::sha256_of(text.as_bytes())
}

/// One partial report, with the name it was read under (a file name) for
/// the errors.
#[derive(Debug, Clone)]
pub struct Partial {
    /// Where it came from.
    pub name: String,
    /// The report.
    pub report: PromotionReport,
}

/// Merges the partial reports of a sharded verify into the evidence of one
/// run over `fleet`: every tenant's result, in fleet order. Refuses (before
/// any request, nothing moved) anything that would make the merged evidence
/// differ from what one unsharded run of `release` with this suite would
/// have gathered.
///
/// A shard that ended without checking its tenants (a failed precheck, a
/// rollout that did not converge, a signal) leaves them with one `error`
/// result naming the shard and its reason: the merged verdict is then
/// `inconclusive`, unless another tenant failed a check.
pub fn merge(
    release: &Release,
    fleet: &[Tenant],
    suite_digest: Option<&Digest>,
    partials: &[Partial],
) -> Result<Vec<TenantReport>, UsageError> {
    let refuse = |name: &str, problem: String, fix: &str| {
        UsageError::new(format!("partial report `{name}`"), problem, fix)
    };
    let first = partials.first().ok_or_else(|| {
        UsageError::new(
            "partial reports",
            "are none",
            "give the directory the shard jobs wrote their `--report` files to",
        )
    })?;
    let mut shards: Vec<(&Partial, &ShardReport)> = Vec::with_capacity(partials.len());
    for p in partials {
        let Some(s) = &p.report.shard else {
            return Err(refuse(
                &p.name,
                "is not a shard's report (it was written without --shard)".into(),
                "give only the reports of `canary verify --shard K/N --report FILE`",
            ));
        };
        shards.push((p, s));
    }
    let count = shards[0].1.shard.count();
    let mut by_index: HashMap<u32, &str> = HashMap::new();
    for (p, s) in &shards {
        if s.shard.count() != count {
            return Err(refuse(
                &p.name,
                format!(
                    "is shard {} but `{}` is shard {}: they come from different runs",
                    s.shard, first.name, shards[0].1.shard
                ),
                "give the reports of one sharded run only",
            ));
        }
        if let Some(other) = by_index.insert(s.shard.index(), &p.name) {
            return Err(refuse(
                &p.name,
                format!("is shard {} again (so is `{other}`)", s.shard),
                "give each shard's report once: remove the stale one",
            ));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(UsageError::new(
            "partial reports",
            format!(
                "lack shard {}: its tenants have no evidence",
                missing.join(", ")
            ),
            "wait for every shard job, or run the missing shard again (upload its report even when it fails)",
        ));
    }
    let digest = fleet_digest(fleet);
    for (p, s) in &shards {
        let r = &p.report;
        if r.sha.as_ref() != Some(release.sha()) {
            return Err(refuse(
                &p.name,
                format!(
                    "is for sha {}, not {}",
                    r.sha.as_ref().map_or("(none)", |s| s.as_str()),
                    release.sha()
                ),
                "give the reports of this release's shards only",
            ));
        }
        if s.suite_digest.as_ref() != suite_digest {
            return Err(refuse(
                &p.name,
                format!(
                    "ran suite {} but this run's suite is {}",
                    s.suite_digest
                        .as_ref()
                        .map_or_else(|| "(unknown)".to_string(), ToString::to_string),
                    suite_digest.map_or_else(|| "(unknown)".to_string(), ToString::to_string),
                ),
                "run every shard and `decide` with the same suite file",
            ));
        }
        if s.fleet_size != fleet.len() || s.fleet_digest != digest {
            return Err(refuse(
                &p.name,
                format!(
                    "was cut from another fleet ({} tenants, {}) than this one ({} tenants, {digest})",
                    s.fleet_size, s.fleet_digest, fleet.len()
                ),
                "run every shard and `decide` with the same fleet settings",
            ));
        }
        let images: Vec<_> = r.images.iter().map(|i| &i.image).collect();
        if images != release.images().iter().collect::<Vec<_>>() {
            return Err(refuse(
                &p.name,
                "names other images than this release".into(),
                "run every shard and `decide` with the same --image list",
            ));
        }
    }
    let mut owner: HashMap<&str, (usize, u32)> = HashMap::with_capacity(fleet.len());
    for (i, t) in fleet.iter().enumerate() {
        // `owns`: position `i` belongs to shard `i % count + 1`.
        let k = u32::try_from(i % count as usize).map_or(count, |r| r + 1);
        owner.insert(t.url(), (i, k));
    }
    let mut merged: Vec<Option<TenantReport>> = vec![None; fleet.len()];
    for (p, s) in &shards {
        for t in &p.report.tenants {
            match owner.get(t.url.as_str()) {
                None => {
                    return Err(refuse(
                        &p.name,
                        format!("reports tenant {}, which is not in the fleet", t.url),
                        "refused: a shard's evidence must come from the fleet's own tenants",
                    ))
                }
                Some((_, k)) if *k != s.shard.index() => {
                    return Err(refuse(
                        &p.name,
                        format!(
                            "(shard {}) reports tenant {}, which shard {k}/{count} owns",
                            s.shard, t.url
                        ),
                        "refused: each shard's evidence covers its own tenants only",
                    ))
                }
                Some((i, _)) => {
                    if merged[*i].is_some() {
                        return Err(refuse(
                            &p.name,
                            format!("reports tenant {} twice", t.url),
                            "refused: give each shard's report as it wrote it",
                        ));
                    }
                    let mut t = t.clone();
                    if t.checks.is_empty() {
                        t.checks.push(CheckResult::error(
                            "suite",
                            format!(
                                "shard {} did not check it: {}",
                                s.shard,
                                p.report
                                    .reason
                                    .strip_prefix(&format!("shard {}: ", s.shard))
                                    .unwrap_or(&p.report.reason)
                            ),
                        ));
                    }
                    merged[*i] = Some(t);
                }
            }
        }
    }
    let mut tenants = Vec::with_capacity(fleet.len());
    for (i, t) in merged.into_iter().enumerate() {
        let Some(t) = t else {
            let k = i % count as usize + 1;
            let (name, reason) = shards
                .iter()
                .find(|(_, s)| s.shard.index() as usize == k)
                .map(|(p, _)| (p.name.as_str(), p.report.reason.as_str()))
                .unwrap_or_default();
            return Err(refuse(
                name,
                format!(
                    "(shard {k}/{count}) has no result for its tenant {}{}",
                    fleet[i].url(),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" (it ended: {reason})")
                    }
                ),
                "run that shard again and give its new report",
            ));
        };
        tenants.push(t);
    }
    Ok(tenants)
}
