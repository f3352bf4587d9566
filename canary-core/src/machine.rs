//! The promotion state machine: a pure function
//! `(plan, state, event) → (state, actions)`.
//!
//! The [`crate::Promoter`] performs the actions through the traits and feeds
//! the results back as events. Nothing here does I/O, so every transition is
//! tested on the function alone.
//!
//! ```text
//! Planned ─PrecheckPassed─▶ Prechecked ─RolloutPending─▶ AwaitingRollout
//!    │                         │  └─RolloutConverged─┐        │
//!    └PrecheckFailed▶ Failed   │                     ▼        │
//!                              │                Verifying ◀───┘ RolloutConverged
//!                              │       ChecksFailed ▶ Rejected │ RolloutTimedOut ▶ Inconclusive
//!              (manual,rollback)     ChecksInconclusive ▶ Inconclusive
//!                              │         ChecksPassed (dry run ▶ Skipped)
//!                              └──MovesStarted──▶ Promoting ─MovesVerified─▶ Promoted | RolledBack
//!                                                   │ MoveFailed → RestoreImages
//!                                                   ├ RestoreVerified ▶ Failed
//!                                                   └ RestoreFailed   ▶ Inconsistent
//! ```
//!
//! What `RestoreImages` writes is decided by the pure functions of
//! [`crate::compensation`]; `canary smoke`, which moves nothing, has its own
//! small machine in [`smoke`].

use std::fmt;

pub mod smoke;

use serde::{Deserialize, Serialize};

/// What the run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Verify on the canary fleet, promote when green (`canary verify`).
    Verify {
        /// Do everything but the move.
        dry_run: bool,
    },
    /// Move without verification, with a reason (`canary promote --no-verify`).
    Manual,
    /// Move `latest` back to an earlier release (`canary rollback`).
    Rollback,
}

/// The states of a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Nothing checked yet.
    Planned,
    /// Every image's staging tag exists; every current `latest` is recorded.
    Prechecked,
    /// Waiting for the canary fleet to run the release.
    AwaitingRollout,
    /// Running the smoke suite on the fleet.
    Verifying,
    /// Moving `latest` (or restoring it after a failed move).
    Promoting,
    /// Terminal: every image moved and verified.
    Promoted,
    /// Terminal: a check failed; `latest` unchanged.
    Rejected,
    /// Terminal: no verdict; `latest` unchanged.
    Inconclusive,
    /// Terminal: nothing to do (empty fleet, dry run); `latest` unchanged.
    Skipped,
    /// Terminal: registry or transport error; `latest` unchanged or restored.
    Failed,
    /// Terminal: a rollback moved and verified every image.
    RolledBack,
    /// Terminal: a move failed and so did restoring; images are mixed.
    Inconsistent,
    /// Terminal: a signal stopped the run before any write; `latest`
    /// unchanged.
    Interrupted,
}

impl State {
    /// Whether no event leaves this state.
    pub fn is_terminal(self) -> bool {
        self.outcome().is_some()
    }

    /// The outcome of a terminal state.
    pub fn outcome(self) -> Option<Outcome> {
        Some(match self {
            Self::Promoted => Outcome::Promoted,
            Self::Rejected => Outcome::Rejected,
            Self::Inconclusive => Outcome::Inconclusive,
            Self::Skipped => Outcome::Skipped,
            Self::Failed => Outcome::Failed,
            Self::RolledBack => Outcome::RolledBack,
            Self::Inconsistent => Outcome::Inconsistent,
            Self::Interrupted => Outcome::Interrupted,
            Self::Planned
            | Self::Prechecked
            | Self::AwaitingRollout
            | Self::Verifying
            | Self::Promoting => return None,
        })
    }
}

impl State {
    /// The state's one spelling, the same as in the JSON report
    /// (`awaiting_rollout`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Prechecked => "prechecked",
            Self::AwaitingRollout => "awaiting_rollout",
            Self::Verifying => "verifying",
            Self::Promoting => "promoting",
            Self::Promoted => "promoted",
            Self::Rejected => "rejected",
            Self::Inconclusive => "inconclusive",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
            Self::Inconsistent => "inconsistent",
            Self::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended. CLI and Action share these and their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every tenant passed every check; every image moved and verified.
    Promoted,
    /// A rollback moved every image back and verified it.
    RolledBack,
    /// `canary smoke` only: every check passed on every tenant; nothing moved.
    Passed,
    /// Nothing to verify (empty fleet with `on_empty_fleet = "skip"`) or a
    /// dry run; `latest` unchanged.
    Skipped,
    /// At least one check failed on at least one tenant.
    Rejected,
    /// No verdict: unreachable tenants, rollout not converged, timeouts.
    Inconclusive,
    /// Bad input or config, found before any request.
    Usage,
    /// Registry or transport error; `latest` not moved or restored.
    Failed,
    /// A move failed and restoring failed too; images are mixed.
    Inconsistent,
    /// `canary repair` finished or undid an interrupted promotion; every
    /// image is on one release again.
    Repaired,
    /// A signal stopped the run; any image already moved was put back (or,
    /// if every image had moved, verified) before exit.
    Interrupted,
    /// `canary guard`: the promoted release failed in production; `latest`
    /// was moved back to the previous release and verified.
    Reverted,
}

impl Outcome {
    /// Every outcome, in the order the documentation lists them.
    pub const ALL: [Outcome; 12] = [
        Self::Promoted,
        Self::RolledBack,
        Self::Passed,
        Self::Skipped,
        Self::Rejected,
        Self::Inconclusive,
        Self::Usage,
        Self::Failed,
        Self::Inconsistent,
        Self::Repaired,
        Self::Interrupted,
        Self::Reverted,
    ];

    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Promoted | Self::RolledBack | Self::Passed | Self::Skipped | Self::Repaired => 0,
            Self::Rejected | Self::Inconclusive | Self::Reverted => 1,
            Self::Usage => 2,
            Self::Failed => 3,
            Self::Inconsistent => 4,
            Self::Interrupted => 5,
        }
    }

    /// Whether `latest` now points at the release (promoted or rolled back).
    pub fn moved(self) -> bool {
        matches!(self, Self::Promoted | Self::RolledBack)
    }
}

impl Outcome {
    /// The outcome's one spelling, the same as in the JSON report, the
    /// `outcome` step output and every rendering (`rolled_back`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promoted => "promoted",
            Self::RolledBack => "rolled_back",
            Self::Passed => "passed",
            Self::Skipped => "skipped",
            Self::Rejected => "rejected",
            Self::Inconclusive => "inconclusive",
            Self::Usage => "usage",
            Self::Failed => "failed",
            Self::Inconsistent => "inconsistent",
            Self::Repaired => "repaired",
            Self::Interrupted => "interrupted",
            Self::Reverted => "reverted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, fed to [`transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Begin.
    Start,
    /// Every staging tag exists; `tenants` canary tenants are configured.
    PrecheckPassed {
        /// The size of the canary fleet.
        tenants: usize,
    },
    /// A staging tag is missing or the registry failed.
    PrecheckFailed,
    /// Some tenants do not run the release yet (or a fixed wait began).
    RolloutPending,
    /// Every tenant runs the release (or the fixed wait is over, or no wait
    /// is configured).
    RolloutConverged,
    /// The rollout deadline passed before every tenant ran the release.
    RolloutTimedOut,
    /// Every check passed on every tenant.
    ChecksPassed,
    /// At least one check failed on at least one tenant.
    ChecksFailed,
    /// No failure, but at least one check had no verdict.
    ChecksInconclusive,
    /// The first move is about to be made.
    MovesStarted,
    /// Every image moved and its digest verified.
    MovesVerified,
    /// An image failed to move or verify.
    MoveFailed,
    /// Every image touched is back on its previous digest, verified.
    RestoreVerified,
    /// Restoring failed for at least one image.
    RestoreFailed,
    /// A signal asked the run to stop. Before the moves it ends the run
    /// (nothing was written); once moving, the promoter finishes what the
    /// machine says instead (restore, or verify when every image moved).
    Interrupted,
}

/// What the promoter must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Check every staging tag exists and record every `latest`.
    Precheck,
    /// Wait until the fleet runs the release (probe or fixed delay).
    AwaitRollout,
    /// Run the smoke suite on every tenant.
    RunChecks,
    /// Move `latest` of every image, verifying each.
    MoveImages,
    /// Put every image touched back on its previous digest, verifying each.
    RestoreImages,
}

/// A transition that the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} is not allowed in state {state}")]
pub struct InvalidTransition {
    /// The state.
    pub state: State,
    /// The event.
    pub event: Event,
}

/// The fixed inputs of one run that transitions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// What the run is for.
    pub mode: Mode,
}

/// The transition function.
pub fn transition(
    plan: Plan,
    state: State,
    event: Event,
) -> Result<(State, Vec<Action>), InvalidTransition> {
    use Action as A;
    use Event as E;
    use State as S;
    let verify = matches!(plan.mode, Mode::Verify { .. });
    let next = match (state, event) {
        (S::Planned, E::Start) => (S::Planned, vec![A::Precheck]),
        (S::Planned, E::PrecheckFailed) => (S::Failed, vec![]),
        (S::Planned, E::PrecheckPassed { tenants: 0 }) if verify => (S::Skipped, vec![]),
        (S::Planned, E::PrecheckPassed { .. }) if verify => (S::Prechecked, vec![A::AwaitRollout]),
        (S::Planned, E::PrecheckPassed { .. }) => (S::Prechecked, vec![A::MoveImages]),

        (S::Prechecked | S::AwaitingRollout, E::RolloutPending) if verify => {
            (S::AwaitingRollout, vec![])
        }
        (S::Prechecked | S::AwaitingRollout, E::RolloutConverged) if verify => {
            (S::Verifying, vec![A::RunChecks])
        }
        (S::Prechecked | S::AwaitingRollout, E::RolloutTimedOut) if verify => {
            (S::Inconclusive, vec![])
        }

        (S::Verifying, E::ChecksPassed) => match plan.mode {
            Mode::Verify { dry_run: true } => (S::Skipped, vec![]),
            _ => (S::Verifying, vec![A::MoveImages]),
        },
        (S::Verifying, E::ChecksFailed) => (S::Rejected, vec![]),
        (S::Verifying, E::ChecksInconclusive) => (S::Inconclusive, vec![]),

        (S::Verifying, E::MovesStarted) if verify => (S::Promoting, vec![]),
        (S::Prechecked, E::MovesStarted) if !verify => (S::Promoting, vec![]),
        (S::Promoting, E::MovesVerified) => match plan.mode {
            Mode::Rollback => (S::RolledBack, vec![]),
            _ => (S::Promoted, vec![]),
        },
        (S::Promoting, E::MoveFailed) => (S::Promoting, vec![A::RestoreImages]),
        (S::Promoting, E::RestoreVerified) => (S::Failed, vec![]),
        (S::Promoting, E::RestoreFailed) => (S::Inconsistent, vec![]),

        (S::Planned | S::Prechecked | S::AwaitingRollout | S::Verifying, E::Interrupted) => {
            (S::Interrupted, vec![])
        }

        (state, event) => return Err(InvalidTransition { state, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFY: Plan = Plan {
        mode: Mode::Verify { dry_run: false },
    };
    const DRY: Plan = Plan {
        mode: Mode::Verify { dry_run: true },
    };
    const MANUAL: Plan = Plan { mode: Mode::Manual };
    const ROLLBACK: Plan = Plan {
        mode: Mode::Rollback,
    };

    fn run(plan: Plan, events: &[Event]) -> (State, Vec<Action>) {
        let mut state = State::Planned;
        let mut last = vec![];
        for e in events {
            let (s, a) = transition(plan, state, *e).unwrap_or_else(|e| panic!("{e}"));
            state = s;
            last = a;
        }
        (state, last)
    }

    use Event::*;

    #[test]
    fn start_asks_for_precheck() {
        assert_eq!(
            run(VERIFY, &[Start]),
            (State::Planned, vec![Action::Precheck])
        );
    }

    #[test]
    fn green_verify_promotes() {
        let p = PrecheckPassed { tenants: 2 };
        assert_eq!(
            run(VERIFY, &[Start, p]),
            (State::Prechecked, vec![Action::AwaitRollout])
        );
        assert_eq!(
            run(VERIFY, &[Start, p, RolloutPending]).0,
            State::AwaitingRollout
        );
        assert_eq!(
            run(
                VERIFY,
                &[Start, p, RolloutPending, RolloutPending, RolloutConverged]
            ),
            (State::Verifying, vec![Action::RunChecks])
        );
        assert_eq!(
            run(VERIFY, &[Start, p, RolloutConverged, ChecksPassed]),
            (State::Verifying, vec![Action::MoveImages])
        );
        assert_eq!(
            run(
                VERIFY,
                &[Start, p, RolloutConverged, ChecksPassed, MovesStarted]
            )
            .0,
            State::Promoting
        );
        let (s, a) = run(
            VERIFY,
            &[
                Start,
                p,
                RolloutConverged,
                ChecksPassed,
                MovesStarted,
                MovesVerified,
            ],
        );
        assert_eq!((s, a), (State::Promoted, vec![]));
        assert_eq!(s.outcome(), Some(Outcome::Promoted));
    }

    #[test]
    fn every_terminal_outcome() {
        let p = PrecheckPassed { tenants: 1 };
        let cases: Vec<(Plan, Vec<Event>, State)> = vec![
            (VERIFY, vec![Start, PrecheckFailed], State::Failed),
            (
                VERIFY,
                vec![Start, PrecheckPassed { tenants: 0 }],
                State::Skipped,
            ),
            (
                VERIFY,
                vec![Start, p, RolloutPending, RolloutTimedOut],
                State::Inconclusive,
            ),
            (VERIFY, vec![Start, p, RolloutTimedOut], State::Inconclusive),
            (
                VERIFY,
                vec![Start, p, RolloutConverged, ChecksFailed],
                State::Rejected,
            ),
            (
                VERIFY,
                vec![Start, p, RolloutConverged, ChecksInconclusive],
                State::Inconclusive,
            ),
            (
                DRY,
                vec![Start, p, RolloutConverged, ChecksPassed],
                State::Skipped,
            ),
            (
                VERIFY,
                vec![
                    Start,
                    p,
                    RolloutConverged,
                    ChecksPassed,
                    MovesStarted,
                    MoveFailed,
                    RestoreVerified,
                ],
                State::Failed,
            ),
            (
                VERIFY,
                vec![
                    Start,
                    p,
                    RolloutConverged,
                    ChecksPassed,
                    MovesStarted,
                    MoveFailed,
                    RestoreFailed,
                ],
                State::Inconsistent,
            ),
            (
                MANUAL,
                vec![
                    Start,
                    PrecheckPassed { tenants: 0 },
                    MovesStarted,
                    MovesVerified,
                ],
                State::Promoted,
            ),
            (MANUAL, vec![Start, PrecheckFailed], State::Failed),
            (
                ROLLBACK,
                vec![Start, p, MovesStarted, MovesVerified],
                State::RolledBack,
            ),
            (
                ROLLBACK,
                vec![Start, p, MovesStarted, MoveFailed, RestoreVerified],
                State::Failed,
            ),
            (
                ROLLBACK,
                vec![Start, p, MovesStarted, MoveFailed, RestoreFailed],
                State::Inconsistent,
            ),
        ];
        for (plan, events, want) in cases {
            let (got, actions) = run(plan, &events);
            assert_eq!(got, want, "{plan:?} {events:?}");
            assert!(got.is_terminal());
            assert!(actions.is_empty());
        }
    }

    #[test]
    fn move_failure_asks_for_restore() {
        let (s, a) = run(
            MANUAL,
            &[
                Start,
                PrecheckPassed { tenants: 0 },
                MovesStarted,
                MoveFailed,
            ],
        );
        assert_eq!((s, a), (State::Promoting, vec![Action::RestoreImages]));
    }

    #[test]
    fn manual_and_rollback_skip_verification() {
        for plan in [MANUAL, ROLLBACK] {
            assert_eq!(
                run(plan, &[Start, PrecheckPassed { tenants: 3 }]),
                (State::Prechecked, vec![Action::MoveImages])
            );
            let err = transition(plan, State::Prechecked, RolloutConverged).unwrap_err();
            assert_eq!(err.state, State::Prechecked);
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        let all_events = [
            Start,
            PrecheckPassed { tenants: 1 },
            PrecheckFailed,
            RolloutPending,
            RolloutConverged,
            RolloutTimedOut,
            ChecksPassed,
            ChecksFailed,
            ChecksInconclusive,
            MovesStarted,
            MovesVerified,
            MoveFailed,
            RestoreVerified,
            RestoreFailed,
            Interrupted,
        ];
        let terminals = [
            State::Promoted,
            State::Rejected,
            State::Inconclusive,
            State::Skipped,
            State::Failed,
            State::RolledBack,
            State::Inconsistent,
            State::Interrupted,
        ];
        for plan in [VERIFY, DRY, MANUAL, ROLLBACK] {
            for s in terminals {
                for e in all_events {
                    assert!(transition(plan, s, e).is_err(), "{s:?} {e:?}");
                }
            }
        }
    }

    #[test]
    fn latest_moves_only_after_checks_passed_in_verify() {
        // Exhaustive: the only way to MoveImages in verify mode is ChecksPassed.
        let states = [
            State::Planned,
            State::Prechecked,
            State::AwaitingRollout,
            State::Verifying,
            State::Promoting,
        ];
        let events = [
            Start,
            PrecheckPassed { tenants: 1 },
            PrecheckPassed { tenants: 0 },
            PrecheckFailed,
            RolloutPending,
            RolloutConverged,
            RolloutTimedOut,
            ChecksPassed,
            ChecksFailed,
            ChecksInconclusive,
            MovesStarted,
            MovesVerified,
            MoveFailed,
            RestoreVerified,
            RestoreFailed,
        ];
        for s in states {
            for e in events {
                if let Ok((_, actions)) = transition(VERIFY, s, e) {
                    if actions.contains(&Action::MoveImages) {
                        assert_eq!((s, e), (State::Verifying, ChecksPassed));
                    }
                }
                if let Ok((_, actions)) = transition(DRY, s, e) {
                    assert!(
                        !actions.contains(&Action::MoveImages),
                        "dry run moved on {s:?} {e:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Promoted.exit_code(), 0);
        assert_eq!(Outcome::RolledBack.exit_code(), 0);
        assert_eq!(Outcome::Skipped.exit_code(), 0);
        assert_eq!(Outcome::Rejected.exit_code(), 1);
        assert_eq!(Outcome::Inconclusive.exit_code(), 1);
        assert_eq!(Outcome::Usage.exit_code(), 2);
        assert_eq!(Outcome::Failed.exit_code(), 3);
        assert_eq!(Outcome::Inconsistent.exit_code(), 4);
        assert_eq!(Outcome::RolledBack.to_string(), "rolled_back");
        assert_eq!(State::AwaitingRollout.to_string(), "awaiting_rollout");
    }
}

#[cfg(test)]
mod interrupt_tests {
    use super::*;

    /// A signal before the moves ends the run at once; during the moves it
    /// is not an event the machine takes (the promoter finishes the moves
    /// or restores them first).
    #[test]
    fn a_signal_stops_only_before_the_moves() {
        let plan = Plan {
            mode: Mode::Verify { dry_run: false },
        };
        for state in [
            State::Planned,
            State::Prechecked,
            State::AwaitingRollout,
            State::Verifying,
        ] {
            assert_eq!(
                transition(plan, state, Event::Interrupted),
                Ok((State::Interrupted, vec![]))
            );
        }
        assert!(transition(plan, State::Promoting, Event::Interrupted).is_err());
        assert_eq!(State::Interrupted.outcome(), Some(Outcome::Interrupted));
        assert_eq!(Outcome::Interrupted.exit_code(), 5);
    }
}
